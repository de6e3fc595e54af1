"""A real tritonserver (nvidia-pytriton's build of Triton 2.51) for the
tests: a model repository made from examples/triton plus the test's own
models, a server on 127.0.0.1 with --backend-directory at this build's
backend, and a clean stop. Every wait is bounded."""
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

START_SECONDS = 120
STOP_SECONDS = 60


def tritonserver_binary():
    """The tritonserver inside the pytriton wheel (found without importing
    pytriton, whose own dependencies the venv leaves out)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("nvidia-pytriton is not installed in this venv")
    path = os.path.join(list(spec.submodule_search_locations)[0], "tritonserver", "bin",
                        "tritonserver")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"no tritonserver at {path}")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_model(source, destination, name, edit=None):
    """Copies a model folder with its symbolic links resolved, renamed to
    `name`, its config.pbtxt passed through `edit`."""
    shutil.copytree(source, destination, symlinks=False)
    config = os.path.join(destination, "config.pbtxt")
    with open(config) as f:
        text = f.read()
    text = re.sub(r'^name: ".*"$', f'name: "{name}"', text, count=1, flags=re.M)
    if edit:
        text = edit(text)
    with open(config, "w") as f:
        f.write(text)


class TritonServer:
    """tritonserver over `repository`, HTTP and metrics on free ports,
    models loaded explicitly (those in `load`, then by the tests)."""

    def __init__(self, repository, backend_directory, log_path, load):
        self.http_port, self.metrics_port = free_port(), free_port()
        self.url = f"127.0.0.1:{self.http_port}"
        self.log_path = log_path
        command = [tritonserver_binary(), f"--model-repository={repository}",
                   f"--backend-directory={backend_directory}",
                   "--http-address=127.0.0.1", f"--http-port={self.http_port}",
                   "--allow-grpc=false", "--metrics-address=127.0.0.1",
                   f"--metrics-port={self.metrics_port}", "--model-control-mode=explicit",
                   "--exit-timeout-secs=30"]
        command += [f"--load-model={name}" for name in load]
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_ready()

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def get(self, path, port=None):
        url = f"http://127.0.0.1:{port or self.http_port}{path}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.read().decode()

    def post(self, path):
        """(status, body) of a POST without a body."""
        request = urllib.request.Request(f"http://{self.url}{path}", data=b"", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def wait_ready(self):
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tritonserver exited ({self.process.returncode}):\n"
                                   + self.log_text()[-4000:])
            try:
                self.get("/v2/health/ready")
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        self.kill()
        raise RuntimeError("tritonserver was not ready in time:\n" + self.log_text()[-4000:])

    def stop(self):
        """SIGTERM, as a container runtime sends it; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        self.log.close()
        return self.process.returncode

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_SECONDS)
