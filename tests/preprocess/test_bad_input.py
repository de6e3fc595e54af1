"""Bad input for cnx preprocess and cnx stats: one-line errors naming the bad
files, exit status 1, and the good image's result still there. Usage errors
exit 2.

usage: test_bad_input.py CNX WORK_DIR
"""
import os
import shutil
import sys

import numpy as np

from common import Tally, noise_png, reference, run


def error_lines_ok(err, bad_names):
    """One line per bad file, each naming it, nothing else."""
    lines = [l for l in err.splitlines() if l.strip()]
    return len(lines) == len(bad_names) and all(
        any(name in line for line in lines) and line.startswith("cnx: ")
        for name, line in zip(bad_names, lines))


def main():
    cnx, work = sys.argv[1:3]
    shutil.rmtree(work, ignore_errors=True)
    folder = os.path.join(work, "mixed")
    os.makedirs(folder)
    tally = Tally()

    good = noise_png(os.path.join(folder, "b_good.png"), 40, 30, seed=3)
    open(os.path.join(folder, "a_empty.png"), "wb").close()
    with open(os.path.join(folder, "c_text.jpg"), "w") as f:
        f.write("this is not a JPEG\n")
    bad_names = ["a_empty.png", "c_text.jpg"]  # input order: sorted by name
    missing = os.path.join(work, "no_such_file.png")
    flags = ["--resize", 24, "--crop", 20]

    # preprocess, float: bad slots are NaN, the good one is exact.
    out = os.path.join(work, "out.npy")
    status, _, err = run(cnx, "preprocess", *flags, folder, "-o", out)
    print(f"preprocess: exit {status}\n{err}", end="")
    tally.check(status == 1, f"preprocess: exit {status}, expected 1")
    tally.check(error_lines_ok(err, bad_names), f"preprocess: stderr should be one line per bad file:\n{err}")
    if tally.check(os.path.exists(out), "preprocess: no output written"):
        got = np.load(out)
        tally.check(got.shape == (3, 3, 20, 20), f"preprocess: shape {got.shape}")
        if got.shape == (3, 3, 20, 20):
            tally.check(np.isnan(got[0]).all() and np.isnan(got[2]).all(), "preprocess: bad slots not NaN")
            tally.check(np.array_equal(got[1], reference(good, 24, 20, "float")),
                        "preprocess: the good image's result differs")

    # preprocess --pixels: bad slots are 0.
    status, _, err = run(cnx, "preprocess", "--pixels", *flags, folder, missing, "-o", out)
    tally.check(status == 1, f"preprocess --pixels: exit {status}, expected 1")
    tally.check(error_lines_ok(err, bad_names + ["no_such_file.png"]),
                f"preprocess --pixels: stderr:\n{err}")
    if os.path.exists(out):
        got = np.load(out)
        tally.check(got.shape == (4, 3, 20, 20) and got.dtype == np.uint8, f"--pixels: {got.shape} {got.dtype}")
        if got.shape == (4, 3, 20, 20):
            tally.check(not got[0].any() and not got[2].any() and not got[3].any(), "--pixels: bad slots not 0")
            tally.check(np.array_equal(got[1], reference(good, 24, 20, "pixels")),
                        "--pixels: the good image's result differs")

    # stats: the good image's statistics, the bad ones left out.
    status, out_text, err = run(cnx, "stats", "--json", folder)
    print(f"stats: exit {status}\n{out_text}{err}", end="")
    tally.check(status == 1, f"stats: exit {status}, expected 1")
    tally.check(error_lines_ok(err, bad_names), f"stats: stderr should be one line per bad file:\n{err}")
    status_good, good_text, _ = run(cnx, "stats", "--json", good)
    import json
    try:
        a, b = json.loads(out_text), json.loads(good_text)
        tally.check(a["images"] == 1 and a["failed"] == 2 and a["mean"] == b["mean"] and a["std"] == b["std"],
                    f"stats over the folder {a} != stats of the good image {b}")
    except (ValueError, KeyError) as e:
        tally.check(False, f"stats --json output: {e}: {out_text!r} {good_text!r}")
    tally.check(status_good == 0, f"stats on the good image alone: exit {status_good}")

    # Nothing readable at all: still exit 1, with a message.
    status, _, err = run(cnx, "stats", os.path.join(folder, "a_empty.png"))
    tally.check(status == 1 and "a_empty.png" in err, f"stats on only a bad file: exit {status}: {err}")

    # Usage errors exit 2 with a message; --help exits 0.
    usage_cases = [
        ("preprocess", good),                                  # no -o
        ("preprocess", "-o", out),                             # no images
        ("preprocess", "--crop", "0", good, "-o", out),
        ("preprocess", "--resize", "-3", good, "-o", out),
        ("preprocess", "--std", "0.2,0,0.2", good, "-o", out),
        ("preprocess", "--mean", "0.1,0.2", good, "-o", out),
        ("preprocess", "--bogus", good, "-o", out),
        ("preprocess", "-w", os.path.join(work, "missing.safetensors"), good, "-o", out),
        ("preprocess", good, "-o"),
        ("stats",),
        ("stats", "--crop", "x", good),
        ("stats", "--mean", "0.1,0.2,0.3", good),
        ("stats", "-w", os.path.join(work, "missing.safetensors"), good),
    ]
    for args in usage_cases:
        status, _, err = run(cnx, *args)
        tally.check(status == 2 and err.strip() and "cnx" in err,
                    f"cnx {' '.join(map(str, args))}: exit {status}, expected 2 with a message: {err!r}")
    for command in ("preprocess", "stats"):
        status, text, _ = run(cnx, command, "--help")
        tally.check(status == 0 and "usage: cnx " + command in text, f"cnx {command} --help: exit {status}")

    tally.finish()


if __name__ == "__main__":
    main()
