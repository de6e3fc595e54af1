"""torchvision's outputs for the package's preprocess test, computed with
Debian's python3-torchvision (the package's venv has no torch), through the
preprocess tests' reference pipeline (tests/preprocess/common.py).

usage: torchvision_reference.py JOBS.json OUT.npz
JOBS.json: a list of [path, resize, crop, mode, mean, std]; mode as
common.reference takes it ("pixels", "float" or "scaled"). OUT.npz holds
the outputs as job0, job1, ..."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "preprocess"))
from common import reference  # noqa: E402


def main():
    jobs_file, out = sys.argv[1:]
    with open(jobs_file) as f:
        jobs = json.load(f)
    outputs = {f"job{i}": reference(path, resize, crop, mode, mean, std)
               for i, (path, resize, crop, mode, mean, std) in enumerate(jobs)}
    np.savez(out, **outputs)


if __name__ == "__main__":
    main()
