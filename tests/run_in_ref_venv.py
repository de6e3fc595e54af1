"""Runs a test script with the reference venv's Python (timm, transformers;
made by tools/ref_venv.sh), named by $CNX_REF_PYTHON.

Without that venv the test reports SKIP (exit 77), unless
CNX_REQUIRE_REF_VENV=1 (tools/run_tests.sh, and so CI, set it): then a
missing venv is a failure, so the comparisons never pass by not running.

usage: run_in_ref_venv.py SCRIPT ARGS...
"""
import os
import sys

SKIP = 77


def main():
    python = os.environ.get("CNX_REF_PYTHON", "")
    if not os.path.isfile(python):
        venv = os.path.dirname(os.path.dirname(python)) or "build/venv-ref"
        message = (f"no reference venv at {venv}: make it with tools/ref_venv.sh {venv} "
                   f"(needs PyPI once)")
        if os.environ.get("CNX_REQUIRE_REF_VENV") == "1":
            print(f"FAIL: {message}", flush=True)
            sys.exit(1)
        print(f"SKIP: {message}", flush=True)
        sys.exit(SKIP)
    os.execv(python, [python, *sys.argv[1:]])


if __name__ == "__main__":
    main()
