"""Fixtures of the package tests. ctest runs them with the venv of
tools/python_venv.sh after tests/python/install_package.py put the package
there, and says where the rest is: CNX_CLI (the cnx command built from the
same tree), CNX_SOURCE (the repository) and CNX_REFERENCE_PYTHON (Debian's
python3 with torchvision)."""
import json
import os
import subprocess

import numpy as np
import pytest

import cnx

SOURCE = os.environ.get("CNX_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
DIGITS = os.path.join(SOURCE, "examples", "digits")
DIGITS_WEIGHTS = os.path.join(DIGITS, "convnext_digits.safetensors")
DIGITS_LABELS = os.path.join(DIGITS, "labels.txt")
DIGITS_TEST = os.path.join(DIGITS, "test")
PHOTOS = os.path.join(SOURCE, "tests", "data", "images")


@pytest.fixture(scope="session")
def cli():
    path = os.environ.get("CNX_CLI", os.path.join(SOURCE, "build", "cnx"))
    if not os.path.isfile(path):
        pytest.fail(f"no cnx command at {path}: set CNX_CLI")
    return path


def run_cli(cli, *args):
    """The CLI's --json lines as dicts (exit 1, some inputs failed, is fine)."""
    proc = subprocess.run([cli, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.fixture(scope="session")
def digits_files():
    return cnx.find_images(DIGITS_TEST)


@pytest.fixture(scope="session")
def digits_engine():
    with cnx.Engine(DIGITS_WEIGHTS, device="cpu", threads=2) as engine:
        yield engine


@pytest.fixture
def corrupt_png(tmp_path, digits_files):
    """A digit PNG cut in half: cnx reports it truncated."""
    data = open(digits_files[0], "rb").read()
    path = tmp_path / "corrupt.png"
    path.write_bytes(data[: len(data) // 2])
    return str(path)


def assert_rows_equal_cli(result_indices, result_probs, result_errors, cli_rows):
    """Rows of a classify result against `cnx classify --json` rows: the same
    classes, and probabilities equal as float32 (the CLI prints 9 digits)."""
    assert len(cli_rows) == len(result_errors)
    for row, (indices, probs, error) in enumerate(zip(result_indices, result_probs,
                                                      result_errors)):
        expected = cli_rows[row]
        if "error" in expected:
            assert error == expected["error"], row
            assert (indices == -1).all() and np.isnan(probs).all(), row
            continue
        assert error is None, (row, error)
        assert indices.tolist() == [t["class"] for t in expected["top"]], row
        assert probs.tolist() == [float(np.float32(t["prob"])) for t in expected["top"]], row
