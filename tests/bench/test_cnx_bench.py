#!/usr/bin/python3
"""cnx-bench on the CPU: the JSON schema shared with bench/torch_baseline.py
and bench/compare.py, figures that agree with each other, every mode, the
trtexec-style text, and the exit codes of bad input. A small model at a small
input keeps the whole test to seconds.

    test_cnx_bench.py CNX_BENCH IMAGES_DIR WORK_DIR
"""
import json
import os
import re
import subprocess
import sys

results = {"passed": 0, "failed": 0}

SMALL = ["--device", "cpu", "--arch", "convnext_atto", "--input-size", "64",
         "--warmup", "1"]
TOP_KEYS = {"tool", "date", "device", "model", "weights", "input_size", "mode", "command",
            "warnings", "results"}
ROW_KEYS = {"name", "engine", "precision", "variant", "batch", "warmup", "iterations",
            "throughput", "latency_ms", "gpu_ms", "h2d_ms", "host_ms", "error"}
LATENCY_KEYS = {"min", "mean", "median", "p90", "p95", "p99"}


def check(name, condition, detail=""):
    results["passed" if condition else "failed"] += 1
    print(f"{'PASS' if condition else 'FAIL'} {name}{'' if condition else ': ' + str(detail)}")
    return condition


def bench(*args):
    return subprocess.run([BENCH, *args], capture_output=True, text=True, timeout=120)


def run_json(name, *args):
    """Runs with --json; the parsed object when stdout is exactly one JSON object."""
    done = bench(*args, "--json")
    if not check(f"{name}: exit 0", done.returncode == 0, f"exit {done.returncode}: {done.stderr}"):
        return None
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as e:
        check(f"{name}: stdout is one JSON object", False, f"{e}: {done.stdout[:300]!r}")
        return None


def check_schema(name, obj, mode, batches, variant):
    check(f"{name}: top-level keys", set(obj) == TOP_KEYS, sorted(obj))
    check(f"{name}: tool, model, weights, input size, mode",
          obj["tool"] == "cnx-bench" and obj["model"] == "convnext_atto"
          and obj["weights"] == "random (seed 0)" and obj["mode"] == mode, obj)
    check(f"{name}: date is ISO 8601 UTC",
          re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", obj["date"]), obj["date"])
    check(f"{name}: device from cnx_engine_info", obj["device"].startswith("CPU"), obj["device"])
    check(f"{name}: command is argv", obj["command"].startswith(BENCH) and "--json" in obj["command"],
          obj["command"])
    check(f"{name}: warnings are strings",
          isinstance(obj["warnings"], list) and all(isinstance(w, str) for w in obj["warnings"]))
    rows = obj["results"]
    check(f"{name}: one row per batch", [r["batch"] for r in rows] == batches,
          [r["batch"] for r in rows])
    for r in rows:
        what = f"{name}: batch {r['batch']}"
        check(f"{what}: row keys", set(r) == ROW_KEYS, sorted(r))
        check(f"{what}: engine, variant, precision, no error",
              r["engine"] == "cnx" and r["variant"] == variant and r["precision"] == "fp32"
              and r["name"] == f"cnx fp32 {variant}" and r["error"] is None, r)
        lat = r["latency_ms"]
        if not check(f"{what}: latency keys", isinstance(lat, dict) and set(lat) == LATENCY_KEYS, lat):
            continue
        check(f"{what}: percentiles ordered",
              0 < lat["min"] <= lat["median"] <= lat["p90"] <= lat["p95"] <= lat["p99"]
              and lat["min"] <= lat["mean"] <= lat["p99"], lat)
        check(f"{what}: CPU rows have no GPU or H2D time",
              r["gpu_ms"] is None and r["h2d_ms"] is None, r)
        check(f"{what}: host time", set(r["host_ms"] or {}) == {"mean", "median"}
              and r["host_ms"]["mean"] > 0, r["host_ms"])
        check(f"{what}: throughput > 0", r["throughput"] > 0, r["throughput"])
    return rows


def consistent(name, row, images_per_iteration):
    """Throughput against images per iteration over the mean latency: the
    wall time of the loop is the summed latencies and a little more."""
    expected = images_per_iteration / (row["latency_ms"]["mean"] / 1e3)
    ratio = row["throughput"] / expected
    check(f"{name}: batch {row['batch']}: throughput {row['throughput']:.1f} agrees with "
          f"the latencies ({expected:.1f})", 0.5 < ratio < 1.5, f"ratio {ratio:.3f}")


def main():
    global BENCH
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    BENCH, images, work = sys.argv[1:]
    os.makedirs(work, exist_ok=True)

    done = bench("--help")
    check("--help exits 0 with the usage",
          done.returncode == 0 and all(f in done.stdout for f in (
              "--arch", "--seed", "--mode", "--device", "--precision", "--batch", "--input-size",
              "--warmup", "--iterations", "--duration", "--no-graphs", "--images", "--image-size",
              "--threads", "-k N", "--json")), done.stdout[:300])

    # Model mode.
    obj = run_json("model", *SMALL, "--batch", "1,2", "--iterations", "2")
    if obj:
        check("model: input size", obj["input_size"] == 64, obj["input_size"])
        for r in check_schema("model", obj, "model", [1, 2], "cpu"):
            check(f"model: batch {r['batch']}: warmup and iterations",
                  r["warmup"] == 1 and r["iterations"] == 2, r)
            if r["latency_ms"]:
                consistent("model", r, r["batch"])

    obj = run_json("--duration", *SMALL, "--batch", "1", "--duration", "0.3")
    if obj:
        rows = check_schema("--duration", obj, "model", [1], "cpu")
        if rows and rows[0]["latency_ms"]:
            r = rows[0]
            timed = r["iterations"] * r["latency_ms"]["mean"] / 1e3  # seconds
            check("--duration: iterations until 0.3 s had passed, and no more",
                  r["iterations"] >= 1 and 0.25 <= timed < 0.3 + r["latency_ms"]["p99"] / 1e3 + 0.05,
                  f"{r['iterations']} iterations, {timed:.3f} s")

    # The text output: a header, then trtexec's lines per row.
    done = bench(*SMALL, "--batch", "2", "--iterations", "2")
    check("text: exit 0", done.returncode == 0, done.stderr)
    for pattern in (r"^Device: CPU", r"^Model: convnext_atto", r"^Input: 64x64, mode model",
                    r"^Date: \d{4}-", r"^Throughput: [0-9.]+ images/s$",
                    r"^Latency \(per batch of 2\): min [0-9.]+ ms, mean [0-9.]+, median [0-9.]+, "
                    r"p90 [0-9.]+, p95 [0-9.]+, p99 [0-9.]+",
                    r"^GPU compute: ", r"^H2D: ", r"^Host: mean [0-9.]+ ms, median [0-9.]+ ms$"):
        check(f"text: a line matching {pattern!r}", re.search(pattern, done.stdout, re.M),
              done.stdout)

    # Preprocess mode.
    obj = run_json("preprocess", *SMALL, "--mode", "preprocess", "--image-size", "64x48",
                   "--batch", "1,3", "--iterations", "2")
    if obj:
        for r in check_schema("preprocess", obj, "preprocess", [1, 3], "preprocess"):
            if r["latency_ms"]:
                consistent("preprocess", r, r["batch"])
    done = bench(*SMALL, "--mode", "preprocess", "--image-size", "64x48", "--batch", "2",
                 "--iterations", "1")
    check("preprocess text: the images/s against the 50k goal",
          done.returncode == 0 and re.search(r"50000 images/s.*: [0-9]+ images/s", done.stdout),
          done.stdout + done.stderr)

    # End to end over the test images.
    files = sorted(f for f in os.listdir(images) if f.lower().endswith((".jpg", ".jpeg", ".png")))
    obj = run_json("end-to-end", *SMALL, "--mode", "end-to-end", "--images", images,
                   "--batch", "1,4", "--iterations", "2", "--threads", "1", "-k", "3")
    if obj:
        for r in check_schema("end-to-end", obj, "end-to-end", [1, 4], "end-to-end"):
            if r["latency_ms"]:
                consistent("end-to-end", r, len(files))
    done = bench(*SMALL, "--mode", "end-to-end", "--images", images, "--batch", "4",
                 "--iterations", "1")
    check("end-to-end text: the files' stats and a verdict",
          done.returncode == 0 and f"Files: {len(files)} images (0 failed), " in done.stdout
          and "Verdict: " in done.stdout
          and f"Latency (per iteration of {len(files)} images)" in done.stdout,
          done.stdout + done.stderr)
    broken = os.path.join(work, "broken")
    os.makedirs(broken, exist_ok=True)
    with open(os.path.join(broken, "a_bad.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\nnot really")
    with open(os.path.join(images, files[0]), "rb") as src, \
            open(os.path.join(broken, "b_good" + os.path.splitext(files[0])[1]), "wb") as dst:
        dst.write(src.read())
    obj = run_json("end-to-end with a bad file", *SMALL, "--mode", "end-to-end", "--images",
                   broken, "--batch", "2", "--iterations", "1")
    if obj:
        check("end-to-end with a bad file: a warning counts it",
              any("1 of 2 files failed" in w and "a_bad.png" in w for w in obj["warnings"]),
              obj["warnings"])

    # Usage errors: exit 2, one line naming the flag.
    for argv, flag in ((["--batch", "x"], "--batch"), (["--batch", "0"], "--batch"),
                       (["--precision", "fp8"], "--precision"), (["--mode", "fast"], "--mode"),
                       (["--device", "tpu"], "--device"), (["--bogus"], "--bogus"),
                       (["--warmup"], "--warmup"), (["--iterations", "-1"], "--iterations"),
                       (["--duration", "0"], "--duration"), (["--image-size", "64"], "--image-size"),
                       (["--iterations", "2", "--duration", "1"], "--iterations"),
                       (["-w", "x.safetensors", "--arch", "convnext_tiny"], "-w"),
                       (["--mode", "end-to-end"], "--images"), (["-k", "0"], "-k"),
                       (["--seed", "abc"], "--seed"), (["--threads", "-2"], "--threads")):
        done = bench(*argv)
        lines = done.stderr.strip().splitlines()
        check(f"usage error {' '.join(argv)}: exit 2, one line naming {flag}",
              done.returncode == 2 and len(lines) == 1 and flag in lines[0] and not done.stdout,
              f"exit {done.returncode}, stderr {done.stderr!r}")

    missing = os.path.join(work, "missing.safetensors")
    done = bench("--device", "cpu", "-w", missing, "--batch", "1", "--iterations", "1")
    check("-w of a missing file: exit 2, one line naming it",
          done.returncode == 2 and missing in done.stderr
          and len(done.stderr.strip().splitlines()) == 1, done.stderr)
    done = bench("--device", "cpu", "--arch", "convnext_gigantic")
    check("--arch unknown: exit 2, the known names listed",
          done.returncode == 2 and "convnext_gigantic" in done.stderr
          and "convnext_tiny" in done.stderr, done.stderr)
    empty = os.path.join(work, "no_images")
    os.makedirs(empty, exist_ok=True)
    done = bench(*SMALL, "--mode", "end-to-end", "--images", empty)
    check("--images of a folder without images: exit 2 naming it",
          done.returncode == 2 and empty in done.stderr, done.stderr)
    done = bench("--device", "cuda", "--arch", "convnext_atto", "--input-size", "64",
                 "--batch", "1", "--warmup", "0", "--iterations", "1")
    if done.returncode == 0:
        print("SKIP --device cuda without a GPU: this machine has one")
    else:
        check("--device cuda without a GPU: exit 2 with the reason",
              done.returncode == 2 and "cuda" in done.stderr.lower() and not done.stdout,
              f"exit {done.returncode}: {done.stderr!r}")

    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
