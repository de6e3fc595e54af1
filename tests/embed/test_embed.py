#!/usr/bin/python3
"""Install cnx into a temporary prefix, build a C++ consumer against it with
find_package(cnx) and with pkg-config, and check its logits against torch."""
import argparse
import os
import shutil
import subprocess
import sys

import numpy as np

results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}")


def run(cmd, **kwargs):
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        print(f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}")
    return done


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--build", required=True, help="the cnx build folder to install from")
    parser.add_argument("--reference", required=True, help="make_reference.py output (small)")
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    prefix = os.path.join(args.work, "prefix")
    here = os.path.dirname(os.path.abspath(__file__))

    done = run(["cmake", "--install", args.build, "--prefix", prefix])
    check("cmake --install", done.returncode == 0)
    check("installed header, library, CMake package and pkg-config file",
          all(os.path.exists(os.path.join(prefix, p)) for p in
              ("include/cnx.h", "lib/libcnx.so", "lib/cmake/cnx/cnxConfig.cmake", "lib/pkgconfig/cnx.pc")))

    consumer_build = os.path.join(args.work, "consumer")
    done = run(["cmake", "-S", os.path.join(here, "consumer"), "-B", consumer_build,
                f"-DCMAKE_PREFIX_PATH={prefix}"])
    done = done.returncode == 0 and run(["cmake", "--build", consumer_build])
    check("C++ consumer builds with find_package(cnx)", bool(done) and done.returncode == 0)

    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
    flags = run(["pkg-config", "--cflags", "--libs", "cnx"], env=env).stdout.split()
    pkg_binary = os.path.join(args.work, "classify_pkgconfig")
    done = run(["g++", "-std=c++11", "-Wall", "-Werror", os.path.join(here, "consumer", "classify.cpp"),
                "-o", pkg_binary, *flags, f"-Wl,-rpath,{prefix}/lib"])
    check("C++ consumer builds with pkg-config as C++11 with -Wall -Werror", done.returncode == 0)
    done = run(["gcc", "-std=c99", "-Wall", "-Werror", "-pedantic", "-fsyntax-only", "-x", "c",
                os.path.join(prefix, "include", "cnx.h")])
    check("the header compiles as C99 -pedantic", done.returncode == 0)

    inputs = np.load(os.path.join(args.reference, "input.npy"))
    reference = np.load(os.path.join(args.reference, "logits.npy"))
    raw_input = os.path.join(args.work, "input.raw")
    inputs.astype(np.float32).tofile(raw_input)
    weights = os.path.join(args.reference, "model_torchvision.safetensors")
    for binary in (os.path.join(consumer_build, "classify"), pkg_binary):
        out = os.path.join(args.work, "logits.raw")
        if not os.path.exists(binary):
            check(f"{os.path.basename(binary)} classifies like torch", False, "not built")
            continue
        done = run([binary, weights, raw_input, str(inputs.shape[0]), str(inputs.shape[2]), out])
        ok = done.returncode == 0 and os.path.exists(out)
        if ok:
            logits = np.fromfile(out, dtype=np.float32).reshape(reference.shape)
            error = float(np.abs(logits - reference).max())
            ok = error <= 1e-4 * np.abs(reference).max()
            top1 = [int(line.split()[3]) for line in done.stdout.splitlines()]
            ok = ok and top1 == list(reference.argmax(1))
        check(f"{os.path.basename(binary)} classifies like torch", ok, done.stderr)

    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
