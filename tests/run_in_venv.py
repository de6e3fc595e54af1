"""Runs a test script with a venv's Python: the reference venv (timm,
transformers; tools/ref_venv.sh) or the package's (tools/python_venv.sh).

Without that venv the test reports SKIP (exit 77), unless
CNX_REQUIRE_VENVS=1 (tools/run_tests.sh, and so CI, set it): then a missing
venv is a failure, so the tests never pass by not running.

usage: run_in_venv.py VENV_PYTHON MAKER SCRIPT ARGS...
(MAKER: the command that makes the venv, named in the message, with VENV
standing for the venv's folder, else followed by it)
"""
import os
import sys

SKIP = 77


def main():
    python, maker, *command = sys.argv[1:]
    if not os.path.isfile(python):
        venv = os.path.dirname(os.path.dirname(python))
        command = maker.replace("VENV", venv) if "VENV" in maker else f"{maker} {venv}"
        message = f"no venv at {venv}: make it with {command} (needs PyPI once)"
        if os.environ.get("CNX_REQUIRE_VENVS") == "1":
            print(f"FAIL: {message}", flush=True)
            sys.exit(1)
        print(f"SKIP: {message}", flush=True)
        sys.exit(SKIP)
    os.execv(python, [python, *command])


if __name__ == "__main__":
    main()
