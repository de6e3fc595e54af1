#!/usr/bin/python3
"""The command-line contract of docs/design.md section 5 for `cnx classify` and
`cnx info`: output formats, input order, exit codes, and that one bad input
never costs the others their results."""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

results = {"passed": 0, "failed": 0}


def check(name, condition, detail=""):
    results["passed" if condition else "failed"] += 1
    print(f"{'PASS' if condition else 'FAIL'} {name}{'' if condition else ': ' + detail}")


def cnx(*args):
    return subprocess.run([CNX, *args], capture_output=True, text=True)


def main():
    global CNX
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cnx", required=True)
    parser.add_argument("--reference", required=True, help="make_reference.py output (small)")
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    CNX = args.cnx
    os.makedirs(args.work, exist_ok=True)
    weights = os.path.join(args.reference, "model_torchvision.safetensors")
    inputs = os.path.join(args.reference, "input.npy")
    batch = np.load(inputs)
    classes = np.load(os.path.join(args.reference, "logits.npy")).shape[1]

    # Usage errors exit 2 with a message.
    for argv, what in (([], "no arguments"), (["classify"], "no weights"),
                       (["classify", "-w", weights], "no inputs"),
                       (["classify", "-w", weights, "--bogus", inputs], "unknown flag"),
                       (["classify", "-w", weights, "-k", "0", inputs], "k = 0"),
                       (["classify", "-w", weights, "-k", str(classes + 1), inputs], "k > classes"),
                       (["classify", "-w", weights, "--device", "tpu", inputs], "bad device"),
                       (["classify", "-w", weights, "--precision", "fp8", inputs], "bad precision"),
                       (["classify", "-w", weights, "--mean", "1,2", inputs], "bad mean"),
                       (["classify", "-w", weights, "--decode-threads", "0", inputs], "0 decode threads"),
                       (["frobnicate"], "unknown command")):
        done = cnx(*argv)
        check(f"usage error exits 2: {what}", done.returncode == 2 and done.stderr.strip(),
              f"exit {done.returncode}, stderr {done.stderr!r}")
    missing = os.path.join(args.work, "missing.safetensors")
    done = cnx("classify", "-w", missing, inputs)
    check("missing weights: exit 2, one line naming the file",
          done.returncode == 2 and missing in done.stderr and len(done.stderr.strip().splitlines()) == 1,
          repr(done.stderr))
    done = cnx("classify", "--help")
    check("--help exits 0 and documents the flags",
          done.returncode == 0 and all(f in done.stdout for f in ("--dump-logits", "--json", "--labels", "--no-normalize",
                                                                  "--decode-threads")),
          done.stdout[:200])

    # A [3,H,W] tensor and a batch of them; a corrupt .npy; a missing file.
    single = os.path.join(args.work, "single.npy")
    np.save(single, batch[1])
    corrupt = os.path.join(args.work, "corrupt.npy")
    with open(corrupt, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00garbage")
    nan_input = os.path.join(args.work, "nan.npy")
    bad = batch[:1].copy()
    bad[0, 0, 0, 0] = np.nan
    np.save(nan_input, bad)
    missing_image = os.path.join(args.work, "no_such_image.png")
    dump = os.path.join(args.work, "logits.npy")
    order = [inputs, corrupt, single, missing_image, nan_input]
    done = cnx("classify", "-w", weights, "--json", "-k", "3", "--batch", "2", "--dump-logits", dump, *order)
    check("some inputs bad: exit 1", done.returncode == 1, f"exit {done.returncode}: {done.stderr}")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    names = [line["image"] for line in lines]
    expected = [f"{inputs}[{i}]" for i in range(len(batch))] + [corrupt, single, missing_image, f"{nan_input}[0]"]
    check("one JSON object per input, in input order", names == expected, f"{names} vs {expected}")
    errors = [line["image"] for line in lines if "error" in line]
    check("bad inputs get error objects", errors == [corrupt, missing_image, f"{nan_input}[0]"], str(errors))
    error_lines = [l for l in done.stderr.splitlines() if l.startswith("cnx: ") and "on CPU" not in l]
    check("one stderr line per bad input, naming it",
          len(error_lines) == 3 and corrupt in error_lines[0] and missing_image in error_lines[1]
          and nan_input in error_lines[2], str(error_lines))
    ok = [line for line in lines if "top" in line]
    check("good inputs keep k results with probabilities",
          len(ok) == len(batch) + 1 and all(len(l["top"]) == 3 and 0 < l["top"][0]["prob"] <= 1 for l in ok),
          str(ok[:1]))
    logits = np.load(dump)
    check("--dump-logits: one row per input, NaN rows for failures",
          logits.shape == (len(expected), classes) and np.isnan(logits[len(batch)]).all()
          and np.isnan(logits[-1]).all() and np.isnan(logits[len(batch) + 2]).all()
          and np.isfinite(logits[:len(batch)]).all(), str(logits.shape))
    clean = os.path.join(args.work, "clean.npy")
    cnx("classify", "-w", weights, "--dump-logits", clean, inputs)
    # Batch composition may change the GEMM blocking, so allow rounding only.
    reference = np.load(clean)
    scale = 1e-6 * np.abs(reference).max()
    check("bad neighbours do not change good results",
          np.allclose(reference, logits[:len(batch)], rtol=0, atol=scale)
          and np.allclose(logits[len(batch) + 1], reference[1], rtol=0, atol=scale))
    probs = [l["top"][0]["prob"] for l in ok]
    ref = np.exp(logits[:len(batch)] - logits[:len(batch)].max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    check("probabilities are the softmax of the logits",
          np.allclose(probs[:len(batch)], ref.max(1), rtol=1e-5), f"{probs} vs {ref.max(1)}")

    # Inputs that could hang or flood: a .npy header promising far more data
    # than the file holds, a FIFO with no writer, a folder linking to itself.
    liar = os.path.join(args.work, "liar.npy")
    np.save(liar, batch[:1])
    with open(liar, "r+b") as f:
        header = f.read(128)
        f.seek(0)
        f.write(header.replace(b"(1, 3,", b"(9, 3,"))
    done = subprocess.run([CNX, "classify", "-w", weights, liar], capture_output=True, text=True, timeout=60)
    check("a .npy header promising more than the file holds: one error, exit 1",
          done.returncode == 1 and len(done.stderr.strip().splitlines()) == 2 and "truncated" in done.stderr,
          done.stderr[-300:])
    fifo = os.path.join(args.work, "fifo.npy")
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    try:
        done = subprocess.run([CNX, "classify", "-w", weights, fifo], capture_output=True, text=True, timeout=30)
        check("a FIFO with no writer fails at once, naming it", done.returncode == 1 and fifo in done.stderr,
              done.stderr)
    except subprocess.TimeoutExpired:
        check("a FIFO with no writer fails at once, naming it", False, "hung")
    loop = os.path.join(args.work, "loop")
    os.makedirs(os.path.join(loop, "a"), exist_ok=True)
    np.save(os.path.join(loop, "a", "x.npy"), batch[0])
    if not os.path.islink(os.path.join(loop, "a", "up")):
        os.symlink("..", os.path.join(loop, "a", "up"))
    try:
        done = subprocess.run([CNX, "classify", "-w", weights, "--json", loop], capture_output=True, text=True,
                              timeout=60)
        check("a folder linking to itself is walked once", done.returncode == 0 and len(done.stdout.splitlines()) == 1,
              done.stdout[-300:])
    except subprocess.TimeoutExpired:
        check("a folder linking to itself is walked once", False, "hung")

    # A path that is not UTF-8 (a byte 0xff, a lone continuation byte, a
    # truncated sequence): --json stays valid UTF-8 JSON, the bytes as U+FFFD.
    odd = os.path.join(os.fsencode(args.work), b"odd-\xff-\x80-\xe2\x82.npy")
    with open(odd, "wb") as f:
        np.save(f, batch[0])
    done = subprocess.run([os.fsencode(CNX), b"classify", b"-w", os.fsencode(weights), b"--json", odd],
                          capture_output=True)
    try:
        parsed = json.loads(done.stdout.decode("utf-8", errors="strict"))
    except ValueError as e:
        parsed = {"error": str(e)}
    check("--json with a non-UTF-8 path is valid JSON, the bad bytes as U+FFFD",
          done.returncode == 0 and parsed.get("image", "").endswith("odd-\ufffd-\ufffd-\ufffd\ufffd.npy"),
          f"exit {done.returncode}: {parsed}")

    # Labels: a file with the right count names the classes; a wrong count is a usage error.
    labels = os.path.join(args.work, "labels.txt")
    with open(labels, "w") as f:
        f.write("".join(f"thing number {i}\n" for i in range(classes)))
    done = cnx("classify", "-w", weights, "--labels", labels, "-k", "1", inputs)
    check("--labels names the classes in text output", done.returncode == 0 and "thing number" in done.stdout,
          done.stdout[:200])
    with open(labels, "a") as f:
        f.write("one too many\n")
    done = cnx("classify", "-w", weights, "--labels", labels, inputs)
    check("--labels with the wrong count exits 2", done.returncode == 2 and "labels" in done.stderr, done.stderr)

    # info: text and JSON.
    done = cnx("info", weights)
    check("info prints the architecture", done.returncode == 0 and "depths" in done.stdout, done.stderr)
    done = cnx("info", "--json", weights)
    info = json.loads(done.stdout) if done.returncode == 0 else {}
    check("info --json parses and carries the preprocessing",
          info.get("classes") == classes and "resize" in info.get("preprocess", {}), done.stdout)
    done = cnx("info", corrupt)
    check("info on a non-safetensors file exits 2 naming it", done.returncode == 2 and corrupt in done.stderr,
          done.stderr)

    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
