"""examples/ray/classify.py on a local Ray cluster (2 CPUs, 127.0.0.1) over
the digits test set and a corrupt file, against `cnx classify --json`."""
import json
import os
import subprocess
import sys

import numpy as np

from conftest import DIGITS_LABELS, DIGITS_TEST, DIGITS_WEIGHTS, SOURCE, run_cli

EXAMPLE = os.path.join(SOURCE, "examples", "ray", "classify.py")


def run_example(out, *inputs):
    """The example on a local cluster of 2 CPUs: one engine with one CPU,
    so that Ray's read tasks keep the other. Returns its stderr."""
    proc = subprocess.run(
        [sys.executable, EXAMPLE, "-w", DIGITS_WEIGHTS, "--labels", DIGITS_LABELS, "-k", "3",
         "--batch", "32", "--actors", "1", "--cpus-per-actor", "1", "--num-cpus", "2",
         "--out", str(out), *inputs],
        capture_output=True, text=True, timeout=300)
    print(proc.stderr[-3000:])
    assert proc.returncode == 0
    return proc.stderr


def test_ray_example_equals_cli(cli, corrupt_png, tmp_path):
    out = tmp_path / "results.jsonl"
    assert "451 images, 1 failed" in run_example(out, DIGITS_TEST, corrupt_png)

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected = run_cli(cli, "classify", "-w", DIGITS_WEIGHTS, "--labels", DIGITS_LABELS,
                       "--device", "cpu", "--threads", 1, "--batch", 32, "-k", 3, "--json",
                       DIGITS_TEST, corrupt_png)
    assert len(rows) == len(expected) == 451
    correct = 0
    for row, want in zip(rows, expected):
        assert row["path"] == want["image"]
        if "error" in want:
            assert row == {"path": corrupt_png, "error": want["error"]}
            continue
        assert row["classes"] == [t["class"] for t in want["top"]], row["path"]
        assert row["labels"] == [t["label"] for t in want["top"]], row["path"]
        assert [np.float32(p) for p in row["probs"]] == \
            [np.float32(t["prob"]) for t in want["top"]], row["path"]
        correct += row["labels"][0] == os.path.basename(os.path.dirname(row["path"]))
    assert correct == 448


def test_ray_example_writes_parquet(corrupt_png, tmp_path):
    import pyarrow.parquet as pq
    folder = os.path.join(DIGITS_TEST, "7")
    run_example(tmp_path / "lines.jsonl", folder, corrupt_png)
    run_example(tmp_path / "table.parquet", folder, corrupt_png)
    lines = [json.loads(line) for line in (tmp_path / "lines.jsonl").read_text().splitlines()]
    table = pq.read_table(tmp_path / "table.parquet").to_pylist()
    assert [row["path"] for row in table] == [row["path"] for row in lines]
    for row, line in zip(table, lines):
        if "error" in line:
            assert row["error"] == line["error"] and row["classes"] is None
        else:
            assert (row["classes"], row["labels"], row["error"]) == \
                (line["classes"], line["labels"], None)
            assert row["probs"] == line["probs"]
