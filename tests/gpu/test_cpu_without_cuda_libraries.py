#!/usr/bin/python3
"""A CUDA build of cnx on the CPU, where the CUDA libraries cannot be found.

libcnx must not need cuBLASLt (or any CUDA library) to load: it opens
cuBLASLt when the first CUDA engine is made. Checks:
  - `readelf -d` of libcnx and of cnx lists no cuBLAS or cuDNN library, and
    libcnx (shared or static) neither wants nor offers a symbol of
    cuBLASLt's (cnx calls its own forwarding functions, cnx_cublasLt*, which
    must not stand in for an application's cuBLASLt);
  - in a user and mount namespace where empty folders hide the one cuBLASLt
    loads from (or, in a folder the system's own libraries share, /dev/null
    covers each CUDA library), so that test_cublaslt_library cannot open it
    there either,
    `cnx classify --device cpu` and `--device auto` exit 0 and print what
    `--device cpu` prints outside;
  - where a GPU is usable, --device auto says on stderr, in one line naming
    the library, why it runs on the CPU, and --device cuda fails naming it;
    where none is, --device auto stays quiet.
Exits 77 (skipped) where this machine does not permit the namespace.

    test_cpu_without_cuda_libraries.py --cnx CNX --libcnx LIBCNX --static LIBCNX_INTERNAL_A
        --probe TEST_CUBLASLT_LIBRARY
        --weights W --labels L IMAGE...
"""
import argparse
import os
import re
import subprocess
import sys

results = {"passed": 0, "failed": 0}
FALLBACK_LINE = "cnx: --device auto: running on the CPU: "


def check(name, condition, detail=""):
    results["passed" if condition else "failed"] += 1
    detail = detail if len(detail) < 400 else detail[:400] + "..."
    print(f"{'PASS' if condition else 'FAIL'} {name}{'' if condition else ': ' + detail}")


def run(argv, mounts=()):
    """argv run outside, or in a namespace after the mount commands."""
    if mounts:
        argv = ["unshare", "-rm", "sh", "-c", f'{" && ".join(mounts)} && exec "$@"', "sh", *argv]
    return subprocess.run(argv, capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


def hiding(library):
    """Mount commands that put the library at this path out of reach."""
    folders = sorted({os.path.dirname(os.path.abspath(library)),
                      os.path.dirname(os.path.realpath(library))},
                     key=len, reverse=True)  # inner folders first: an outer mount would hide them
    mounts = []
    for folder in folders:
        if not os.path.exists(os.path.join(folder, "libc.so.6")):
            mounts.append(f"mount -t tmpfs none '{folder}'")
            continue
        for name in sorted(os.listdir(folder)):
            if re.match(r"lib(cublas|cudnn)", name):
                mounts.append(f"mount --bind /dev/null '{os.path.realpath(os.path.join(folder, name))}'")
    return mounts


def needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def cublaslt_symbols(path, *options):
    out = subprocess.run(["nm", *options, path], capture_output=True, text=True, check=True).stdout
    return [line.split()[-1] for line in out.splitlines() if re.search(r"\scublasLt\w*$", line)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cnx", required=True)
    parser.add_argument("--libcnx", required=True)
    parser.add_argument("--static", required=True, help="libcnx_internal.a")
    parser.add_argument("--probe", required=True, help="the test_cublaslt_library executable")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("images", nargs="+")
    args = parser.parse_args()

    for path in (args.libcnx, args.cnx):
        cuda = [lib for lib in needed(path) if re.search(r"cublas|cudnn", lib, re.I)]
        check(f"{os.path.basename(path)} needs no cuBLAS or cuDNN library", not cuda, f"NEEDED {cuda}")
    for options, what in ((("-D", "--undefined-only"), "libcnx wants"),
                          (("-D", "--defined-only"), "libcnx offers")):
        names = cublaslt_symbols(args.libcnx, *options)
        check(f"{what} no cuBLASLt symbol", not names, " ".join(names))
    # Linked statically, even a hidden definition of a cuBLASLt name would
    # take an application's own cuBLASLt calls.
    names = cublaslt_symbols(args.static, "--defined-only")
    check("the static library defines no cuBLASLt name", not names, " ".join(names))

    if run(["unshare", "-rm", "true"]).returncode != 0:
        print("SKIP: this machine does not permit user and mount namespaces (unshare -rm)")
        return 77

    # Where cuBLASLt loads from here: its folder, and the folder its links lead to.
    loaded = run([args.probe, "loads"])
    found = re.search(r"loaded (\S+) from (\S+)", loaded.stdout)
    if not found:
        check("cuBLASLt loads outside the namespace", False, loaded.stdout + loaded.stderr)
        return 1
    soname, path = found.groups()
    hidden = hiding(path)
    print(f"{soname} loads from {path}; in the namespace: {'; '.join(hidden)}")
    refused = run([args.probe, "fails", soname], hidden)
    check(f"{soname} cannot be opened in the namespace", refused.returncode == 0,
          refused.stdout + refused.stderr)

    classify = [args.cnx, "classify", "-w", args.weights, "--labels", args.labels, "--json", "-k", "3"]
    want = run([*classify, "--device", "cpu", *args.images])
    check("outside, --device cpu classifies", want.returncode == 0 and want.stdout, want.stderr)
    outside_auto = run([*classify, "--device", "auto", *args.images])
    gpu = outside_auto.returncode == 0 and " on CPU" not in outside_auto.stderr
    for device in ("cpu", "auto"):
        got = run([*classify, "--device", device, *args.images], hidden)
        check(f"inside, --device {device} exits 0", got.returncode == 0,
              f"exit {got.returncode}: {got.stderr}")
        check(f"inside, --device {device} prints what --device cpu prints outside",
              got.stdout == want.stdout, f"{got.stdout!r} != {want.stdout!r}")
        fallback = [line for line in got.stderr.splitlines() if line.startswith(FALLBACK_LINE)]
        if device == "cpu":
            check("inside, --device cpu says nothing of a GPU", not fallback, got.stderr)
        elif gpu:
            check("inside, --device auto says once why it leaves the GPU, naming the library",
                  len(fallback) == 1 and soname in fallback[0], got.stderr)
        else:
            check("inside, --device auto on a machine without a GPU stays quiet", not fallback,
                  got.stderr)
    if gpu:
        got = run([*classify, "--device", "cuda", *args.images], hidden)
        check("inside, --device cuda fails naming the library",
              got.returncode == 2 and soname in got.stderr, f"exit {got.returncode}: {got.stderr}")
    else:
        print("note: no usable GPU here, so the fallback message is checked where there is one")
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
