"""Builds and installs the package into the running venv, as a user's
`pip install .` does (CUDA included when nvcc is found), but without build
isolation (the venv holds the pinned build tools, so no download) and with
a kept build folder, so a rebuild is incremental.

usage: install_package.py SOURCE BUILD_DIR"""
import os
import subprocess
import sys
import tomllib


def check_build_pins(source):
    """pyproject.toml's build requirements are what a user's pip downloads;
    the venv must hold the same versions, or this test builds with others."""
    with open(os.path.join(source, "pyproject.toml"), "rb") as f:
        wanted = tomllib.load(f)["build-system"]["requires"]
    with open(os.path.join(source, "tests", "python", "requirements.txt")) as f:
        pinned = {line.strip().lower().replace("_", "-") for line in f
                  if "==" in line and not line.startswith("#")}
    missing = [r for r in wanted if r.lower().replace("_", "-") not in pinned]
    if missing:
        sys.exit(f"tests/python/requirements.txt lacks pyproject.toml's {', '.join(missing)}")


def main():
    source, build_dir = sys.argv[1:]
    check_build_pins(source)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation",
                    "--no-deps", "--disable-pip-version-check", "--force-reinstall",
                    f"--config-settings=build-dir={build_dir}", source],
                   check=True, timeout=840)
    subprocess.run([sys.executable, "-c", "import cnx; print('installed cnx', cnx.__version__, "
                    "'from', cnx.__file__)"], check=True, cwd="/")


if __name__ == "__main__":
    main()
