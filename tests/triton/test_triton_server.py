"""The cnx backend in a real tritonserver: the example repository's models
serve the digits test set as `cnx classify` classifies it, concurrent and
batched; a bad image or tensor fails only its own request; the statistics
and metrics count; broken models fail to load with a message that names the
cause; the server stops cleanly.

ctest runs this with the venv of tools/python_venv.sh build/venv-triton
tests/triton/requirements.txt and says where the rest is: CNX_CLI (the cnx
command of this build), CNX_SOURCE (the repository) and CNX_TRITON_BACKENDS
(the build's backends/ folder, holding cnx/libtriton_cnx.so)."""
import glob
import json
import os
import re
import struct
import subprocess
import zlib

import numpy as np
import pytest
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from triton_server import TritonServer, copy_model

SOURCE = os.environ.get("CNX_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(SOURCE, "examples", "triton")
DIGITS = os.path.join(SOURCE, "examples", "digits")
WEIGHTS = os.path.join(DIGITS, "convnext_digits.safetensors")
LABELS = os.path.join(DIGITS, "labels.txt")
IMAGES = sorted(glob.glob(os.path.join(DIGITS, "test", "*", "*.png")))
CORRUPT = b"\x89PNG\r\n\x1a\n" + b"\0" * 30  # a PNG signature, then nothing usable
TIMEOUT = 300  # seconds for any one wait
# A batch window long enough that requests sent together run as one batch.
SLOW_BATCHING = ("max_queue_delay_microseconds: 2000", "max_queue_delay_microseconds: 300000")


def with_slow_batching(text):
    assert SLOW_BATCHING[0] in text
    return text.replace(*SLOW_BATCHING)


def with_parameters(text, **values):
    """config.pbtxt with more string parameters."""
    entries = "".join(f'  {{\n    key: "{key}"\n    value: {{ string_value: "{value}" }}\n  }},\n'
                      for key, value in values.items())
    assert "parameters [\n" in text
    return text.replace("parameters [\n", "parameters [\n" + entries, 1)


def gray_png(width, height):
    """A mid-gray 8-bit grayscale PNG."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    rows = b"".join(b"\0" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def build_repository(root):
    """The example models as shipped, slow-batching copies of them, and
    models that must fail to load."""
    for name in ("digits", "digits_tensor"):
        copy_model(os.path.join(EXAMPLES, name), root / name, name)
        copy_model(os.path.join(EXAMPLES, name), root / f"{name}_batching", f"{name}_batching",
                   with_slow_batching)
    # Engine calls of about 5 images, and images of at most 8x8 pixels (the
    # digits' size).
    copy_model(os.path.join(EXAMPLES, "digits"), root / "digits_chunks", "digits_chunks",
               lambda text: with_parameters(with_slow_batching(text).replace(
                   'string_value: "32"', 'string_value: "5"'), max_pixels=64))
    copy_model(os.path.join(EXAMPLES, "digits"), root / "broken_weights", "broken_weights")
    (root / "broken_weights" / "1" / "model.safetensors").write_bytes(b"\x10\0\0\0\0\0\0\0{oops")
    copy_model(os.path.join(EXAMPLES, "digits"), root / "missing_weights", "missing_weights")
    os.remove(root / "missing_weights" / "1" / "model.safetensors")
    copy_model(os.path.join(EXAMPLES, "digits"), root / "bad_parameter", "bad_parameter",
               lambda text: text.replace('key: "precision"', 'key: "precison"'))
    copy_model(os.path.join(EXAMPLES, "digits"), root / "bad_precision", "bad_precision",
               lambda text: text.replace('string_value: "fp32"', 'string_value: "fp8"'))
    copy_model(os.path.join(EXAMPLES, "digits"), root / "signed_count", "signed_count",
               lambda text: text.replace('string_value: "32"', 'string_value: "+8"'))
    copy_model(os.path.join(EXAMPLES, "digits"), root / "wrong_classes", "wrong_classes",
               lambda text: text.replace("dims: [ 10 ]", "dims: [ 1000 ]"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("repository")
    build_repository(root)
    backends = os.environ.get("CNX_TRITON_BACKENDS",
                              os.path.join(SOURCE, "build", "triton", "backends"))
    log = tmp_path_factory.mktemp("log") / "tritonserver.log"
    server = TritonServer(root, backends, log, load=["digits", "digits_tensor", "digits_batching",
                                                     "digits_tensor_batching", "digits_chunks"])
    yield server
    server.kill()
    print(server.log_text()[-6000:])


@pytest.fixture(scope="module")
def client(server):
    with triton_http.InferenceServerClient(server.url, concurrency=8,
                                           network_timeout=TIMEOUT) as client:
        yield client


def run_cli(*args):
    proc = subprocess.run([os.environ.get("CNX_CLI", os.path.join(SOURCE, "build", "cnx")),
                           *map(str, args)], capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def expected():
    """path -> (the 10 probabilities in class order, top-3 labels) from
    `cnx classify --json`."""
    rows = [json.loads(line) for line in run_cli(
        "classify", "--json", "-k", 10, "-w", WEIGHTS, "--labels", LABELS, "--device", "cpu",
        *IMAGES).splitlines()]
    table = {}
    for row in rows:
        probs = np.zeros(10, np.float32)
        for entry in row["top"]:
            probs[entry["class"]] = entry["prob"]
        table[row["image"]] = (probs, [entry["label"] for entry in row["top"][:3]])
    assert len(table) == len(IMAGES) == 450
    return table


def image_input(encoded):
    data = np.array([[blob] for blob in encoded], dtype=np.object_)
    tensor = triton_http.InferInput("IMAGE", list(data.shape), "BYTES")
    tensor.set_data_from_numpy(data)
    return tensor


def tensor_input(array):
    tensor = triton_http.InferInput("INPUT", list(array.shape), "FP32")
    tensor.set_data_from_numpy(array)
    return tensor


def send_all(client, model, inputs, outputs=None):
    """Sends every request at once (the client keeps 8 in flight, so that
    up to 8 meet in a slow-batching model's window) and returns each one's
    PROBS or its InferenceServerException."""
    pending = [client.async_infer(model, [tensor], outputs=outputs) for tensor in inputs]
    results = []
    for request in pending:
        try:
            results.append(request.get_result(timeout=TIMEOUT).as_numpy("PROBS"))
        except InferenceServerException as e:
            results.append(e)
    return results


def read(path):
    with open(path, "rb") as f:
        return f.read()


def assert_matches_cli(probs, paths, expected):
    """Probabilities within 1e-5 (a CPU forward's last bit depends on its
    batch, which Triton's dynamic batcher chooses) and the same top 3."""
    assert not isinstance(probs, Exception), probs
    assert probs.shape == (len(paths), 10)
    for row, path in zip(probs, paths):
        want = expected[path][0]
        np.testing.assert_allclose(row, want, rtol=1e-5, atol=1e-7, err_msg=path)
        assert list(np.argsort(-row, kind="stable")[:3]) == \
            list(np.argsort(-want, kind="stable")[:3]), path


def test_models_load_and_log(server):
    log = server.log_text()
    assert re.search(r"cnx: backend 'cnx' \d+\.\d+\.\d+, server backend API 1\.\d+", log)
    assert re.search(r"cnx: instance digits_0: convnext \(10 classes\) from .*model\.safetensors "
                     r"on CPU", log)
    assert "successfully loaded 'digits'" in log
    assert "successfully loaded 'digits_tensor'" in log


def test_concurrent_single_image_requests_match_cli(client, expected):
    results = send_all(client, "digits", [image_input([read(p)]) for p in IMAGES])
    for probs, path in zip(results, IMAGES):
        assert_matches_cli(probs, [path], expected)


def test_batched_requests_match_cli(client, expected):
    groups = [IMAGES[i:i + 16] for i in range(0, len(IMAGES), 16)]
    results = send_all(client, "digits", [image_input([read(p) for p in g]) for g in groups])
    for probs, paths in zip(results, groups):
        assert_matches_cli(probs, paths, expected)


def test_classification_extension_gives_labels(client, expected):
    paths = IMAGES[::90]
    output = triton_http.InferRequestedOutput("PROBS", class_count=3)
    result = client.infer("digits", [image_input([read(p) for p in paths])], outputs=[output],
                          timeout=TIMEOUT)
    for row, path in zip(result.as_numpy("PROBS"), paths):
        # Each entry is "probability:class:label", most probable first.
        entries = [entry.decode().split(":") for entry in row]
        assert [label for _, _, label in entries] == expected[path][1]
        for probability, index, _ in entries:
            assert abs(float(probability) - expected[path][0][int(index)]) < 1e-6


def test_preprocessed_input_matches_cli(client, expected, tmp_path):
    paths = IMAGES[:64]
    inputs = tmp_path / "inputs.npy"
    run_cli("preprocess", "-w", WEIGHTS, *paths, "-o", inputs)
    array = np.load(inputs)
    assert array.shape == (64, 3, 32, 32)
    groups = range(0, 64, 8)
    results = send_all(client, "digits_tensor", [tensor_input(array[i:i + 8]) for i in groups])
    for probs, i in zip(results, groups):
        assert_matches_cli(probs, paths[i:i + 8], expected)


def model_stats(server, model):
    stats = json.loads(server.get(f"/v2/models/{model}/stats"))["model_stats"][0]
    return stats["inference_stats"], stats["inference_count"], stats["execution_count"]


def metric(server, name, model, labels=""):
    """A counter of /metrics; labels: more of its labels, e.g. 'reason="BACKEND",'."""
    text = server.get("/metrics", port=server.metrics_port)
    found = re.search(rf'^{name}{{model="{model}",{labels}version="1"}} (\S+)$', text, re.M)
    assert found, f"no {name}{{{labels}}} for {model} in the metrics"
    return float(found.group(1))


def test_bad_image_fails_alone_and_stats_count(client, server, expected):
    good = IMAGES[200:206]
    inputs = [image_input([read(p)]) for p in good]
    inputs.append(image_input([CORRUPT]))                          # a corrupt image alone
    inputs.append(image_input([read(good[0]), b"", read(good[1])]))  # one bad image of three
    inputs.append(image_input([b"just some text"]))              # not an image at all
    results = send_all(client, "digits_batching", inputs)

    for probs, path in zip(results[:6], good):
        assert_matches_cli(probs, [path], expected)
    assert isinstance(results[6], InferenceServerException)
    assert "IMAGE[0]: corrupt PNG" in results[6].message(), results[6].message()
    assert isinstance(results[7], InferenceServerException)
    assert "IMAGE[1]: empty (0 bytes)" in results[7].message(), results[7].message()
    assert isinstance(results[8], InferenceServerException)
    assert "IMAGE[0]: not a PNG or JPEG" in results[8].message(), results[8].message()
    assert all(r.status() == "400" for r in results[6:]), [r.status() for r in results[6:]]

    stats, inferences, executions = model_stats(server, "digits_batching")
    assert int(stats["success"]["count"]) == 6
    assert int(stats["fail"]["count"]) == 3
    assert int(inferences) == 6
    assert 1 <= int(executions) < 6  # the good requests ran together with the bad ones
    assert metric(server, "nv_inference_request_success", "digits_batching") == 6
    assert metric(server, "nv_inference_request_failure", "digits_batching",
                  'reason="BACKEND",') == 3
    assert metric(server, "nv_inference_count", "digits_batching") == 6
    assert metric(server, "nv_inference_exec_count", "digits_batching") == int(executions)


def test_bad_tensor_fails_alone(client, server, expected, tmp_path):
    paths = IMAGES[300:304]
    inputs = tmp_path / "inputs.npy"
    run_cli("preprocess", "-w", WEIGHTS, *paths, "-o", inputs)
    array = np.load(inputs)
    poisoned = array[:1].copy()
    poisoned[0, 1, 5, 5] = np.nan
    results = send_all(client, "digits_tensor_batching",
                            [tensor_input(array[i:i + 1]) for i in range(4)] +
                            [tensor_input(poisoned)])
    for i, path in enumerate(paths):
        assert_matches_cli(results[i], [path], expected)
    assert isinstance(results[4], InferenceServerException)
    assert "INPUT: input image 0 has a non-finite value" in results[4].message(), \
        results[4].message()
    _, _, executions = model_stats(server, "digits_tensor_batching")
    assert int(executions) < 5


def test_engine_calls_of_max_batch_and_max_pixels(client, server, expected):
    """Requests that meet in one batch run as engine calls of about
    max_batch (5) images; an image over max_pixels fails its request alone,
    also when the request's first image has gone to an engine call already
    and other requests follow it."""
    groups = [IMAGES[i:i + 3] for i in range(100, 118, 3)]
    inputs = [image_input([read(p) for p in g]) for g in groups]
    inputs.insert(3, image_input([read(IMAGES[0]), gray_png(9, 8), read(IMAGES[1])]))
    results = send_all(client, "digits_chunks", inputs)
    bad = results.pop(3)
    for probs, paths in zip(results, groups):
        assert_matches_cli(probs, paths, expected)
    assert isinstance(bad, InferenceServerException)
    assert re.search(r"IMAGE\[1\]: .*72", bad.message()), bad.message()
    _, _, executions = model_stats(server, "digits_chunks")
    assert int(executions) < 6


@pytest.mark.parametrize("model, cause", [
    ("broken_weights", r"broken_weights/1/model\.safetensors: .*header"),
    ("missing_weights", r"missing_weights/1/model\.safetensors: .*No such file"),
    ("bad_parameter", r"unknown parameter 'precison'"),
    ("bad_precision", r"parameter precision: expected fp32, tf32, fp16 or bf16, got 'fp8'"),
    ("signed_count", r"parameter max_batch: expected an integer in 1\.\.4096, got '\+8'"),
    ("wrong_classes", r"PROBS has dims \[ 1000 \], but .*model\.safetensors has 10 classes"),
])
def test_broken_model_fails_to_load_naming_the_cause(server, model, cause):
    status, body = server.post(f"/v2/repository/models/{model}/load")
    assert status == 400, body
    message = json.loads(body)["error"]
    assert re.search(cause, message), message
    assert f"'{model}'" in message, message
    _, index = server.post("/v2/repository/index")
    entry = next(e for e in json.loads(index) if e["name"] == model)
    assert entry["state"] == "UNAVAILABLE" and re.search(cause, entry["reason"]), entry


def test_server_stops_cleanly(server, client):
    client.close()  # an open connection holds the server until its exit timeout
    assert server.stop() == 0
    log = server.log_text()
    for model in ("digits", "digits_tensor", "digits_batching", "digits_tensor_batching",
                  "digits_chunks"):
        assert f"successfully unloaded '{model}'" in log
    # Nothing the backend logged as an error (its own files' lines; the
    # broken models' load failures are the server's).
    ours = re.compile(r"^E.* (backend|execute|model_config|request_inputs|triton_error)\.cpp:\d+\]")
    errors = [line for line in log.splitlines() if ours.match(line)]
    assert not errors, errors
