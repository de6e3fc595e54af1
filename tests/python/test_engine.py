"""cnx.Engine against the cnx command built from the same tree."""
import gc
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

import cnx
from conftest import (DIGITS_LABELS, DIGITS_WEIGHTS, assert_rows_equal_cli, run_cli)


def test_classify_paths_equal_cli(cli, digits_engine, digits_files):
    result = digits_engine.classify(digits_files, k=3)
    expected = run_cli(cli, "classify", "-w", DIGITS_WEIGHTS, "--device", "cpu", "-k", 3,
                       "--json", *digits_files)
    assert_rows_equal_cli(result.indices, result.probs, result.errors, expected)
    assert result.indices.dtype == np.int32 and result.probs.dtype == np.float32
    assert result.indices.shape == (len(digits_files), 3)


def test_arrays_and_pil_images_equal_paths(digits_engine, digits_files):
    files = digits_files[::15]
    by_path = digits_engine.classify(files, k=5, batch=8)
    arrays = [cnx.read_image(f) for f in files]
    pil = [Image.open(f) for f in files]
    for inputs in (arrays, pil):  # the same batches: the same bits
        got = digits_engine.classify(inputs, k=5, batch=8)
        assert np.array_equal(got.indices, by_path.indices)
        assert np.array_equal(got.probs, by_path.probs)
        assert got.errors == [None] * len(files)
    # Mixed, the paths and the pixels go in batches of their own; a forward
    # of another batch size may round differently in the last bit.
    mixed = [files[i] if i % 3 == 0 else arrays[i] if i % 3 == 1 else pil[i]
             for i in range(len(files))]
    got = digits_engine.classify(mixed, k=5, batch=8)
    assert np.array_equal(got.indices, by_path.indices)
    assert np.allclose(got.probs, by_path.probs, rtol=1e-5, atol=0)


def test_corrupt_file_fails_alone(cli, digits_engine, digits_files, corrupt_png):
    files = [digits_files[1], corrupt_png, digits_files[2]]
    result = digits_engine.classify(files, k=3)
    expected = run_cli(cli, "classify", "-w", DIGITS_WEIGHTS, "--device", "cpu", "-k", 3,
                       "--json", *files)
    assert "error" in expected[1]
    assert_rows_equal_cli(result.indices, result.probs, result.errors, expected)
    assert corrupt_png in result.errors[1]
    assert result.labels is None  # the digits file names no classes


def test_bad_array_image_fails_alone(digits_engine, digits_files):
    good = cnx.read_image(digits_files[3])
    empty = np.zeros((0, 5, 3), dtype=np.uint8)
    result = digits_engine.classify([good, empty, good], k=2)
    assert result.errors[0] is None and result.errors[2] is None
    assert result.errors[1].startswith("inputs[1]: ")
    assert (result.indices[1] == -1).all() and np.isnan(result.probs[1]).all()
    assert np.array_equal(result.indices[0], result.indices[2])


def test_labels_from_a_file_or_a_list(digits_files):
    names = open(DIGITS_LABELS).read().split()
    for labels in (DIGITS_LABELS, names):
        with cnx.Engine(DIGITS_WEIGHTS, device="cpu", labels=labels) as engine:
            result = engine.classify(digits_files[:4], k=2)
            assert result.labels == [[names[c] for c in row] for row in result.indices]
            assert engine.labels == names


def test_classify_iter_in_order(digits_engine, digits_files):
    files = digits_files[:70]
    whole = digits_engine.classify(files, k=2)
    results = digits_engine.classify_iter(files, k=2, batch=8, decode_threads=2)
    assert len(results) == len(files)
    for i, r in enumerate(results):
        assert (r.index, r.path, r.ok) == (i, files[i], True)
        assert np.array_equal(r.indices, whole.indices[i])
        assert np.array_equal(r.probs, whole.probs[i])


def run_in_thread(function, *args, timeout=120):
    """function(*args) on a daemon thread; fails the test (instead of hanging
    it) when that does not finish in time. Returns its result."""
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(function(*args)), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{function} still runs after {timeout} s"
    assert outcome, f"{function} raised (see the thread's traceback above)"
    return outcome[0]


def test_calls_inside_an_open_iteration_wait_for_its_run(digits_engine, digits_files):
    x = np.zeros((1, 3, 32, 32), dtype=np.float32)
    one = cnx.read_image(digits_files[0])
    pool = ThreadPoolExecutor(1)

    def loop():
        rows = 0
        with digits_engine.classify_iter(digits_files[:40], k=1, batch=2) as results:
            for r in results:
                rows += 1
                if r.index == 0:
                    digits_engine.forward(x)
                    digits_engine.classify([one])
                    pool.submit(digits_engine.classify, [one]).result()
                    assert len(list(digits_engine.classify_iter(digits_files[:2]))) == 2
        return rows

    assert run_in_thread(loop) == 40
    pool.shutdown()


def test_threads_take_turns(digits_engine, digits_files):
    files = digits_files[:64]
    arrays = [cnx.read_image(f) for f in files]
    expected = digits_engine.classify(files, k=2, batch=16)

    def same(got):
        return np.array_equal(got.indices, expected.indices) and \
            np.array_equal(got.probs, expected.probs)

    def work():
        return [same(digits_engine.classify(inputs, k=2, batch=16))
                for inputs in (files, arrays, files)]

    def iterate():
        rows = list(digits_engine.classify_iter(files, k=2, batch=16))
        return [np.array_equal(np.stack([r.indices for r in rows]), expected.indices)]

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(work), pool.submit(work), pool.submit(iterate),
                   pool.submit(iterate)]
        assert [ok for f in futures for ok in f.result(timeout=120)] == [True] * 8


def test_closing_from_another_thread(digits_files):
    engine = cnx.Engine(DIGITS_WEIGHTS, device="cpu")
    # The reader's iterator closed by another thread: the reader stops.
    results = engine.classify_iter(digits_files, k=1, batch=2)
    next(results)
    run_in_thread(results.close)
    with pytest.raises(StopIteration):
        next(results)
    # A stream that has not started (another one holds the engine), closed.
    first = engine.classify_iter(digits_files, k=1, batch=2)
    next(first)
    second = engine.classify_iter(digits_files[:4], k=1, batch=2)
    run_in_thread(lambda: [next(second, None), second.close()])
    first.close()
    # The engine closed under a reader: its next step raises.
    results = engine.classify_iter(digits_files, k=1, batch=2)
    next(results)
    run_in_thread(engine.close)
    with pytest.raises(ValueError, match="closed"):
        next(results)


def test_an_abandoned_iterator_frees_the_engine(digits_files):
    engine = cnx.Engine(DIGITS_WEIGHTS, device="cpu")
    results = engine.classify_iter(digits_files, k=1, batch=2)
    next(results)
    del results
    gc.collect()
    assert run_in_thread(engine.classify, digits_files[:1]).errors == [None]
    engine.close()


def test_forward_equals_cli_logits(cli, digits_engine, digits_files, tmp_path):
    x = np.stack([cnx.preprocess(f, **{key: digits_engine.info["preprocess"][key]
                                      for key in ("resize", "crop", "mean", "std")})
                  for f in digits_files[:16]])
    tensor, logits_file = tmp_path / "x.npy", tmp_path / "logits.npy"
    np.save(tensor, x)
    run_cli(cli, "classify", "-w", DIGITS_WEIGHTS, "--device", "cpu", "--threads", 2,
            "--json", "--dump-logits", logits_file, tensor)
    logits = digits_engine.forward(x)
    assert logits.dtype == np.float32 and logits.shape == (16, 10)
    assert np.array_equal(logits, np.load(logits_file))


def test_random_engine_and_info():
    with cnx.Engine.random("convnext_tiny", seed=3, device="cpu", max_batch=2,
                           threads=1, input_size=32) as engine:
        info = engine.info
        assert info["architecture"] == "convnext_tiny" and info["num_classes"] == 1000
        assert info["device"] == "cpu" and info["device_name"]
        assert info["preprocess"]["resize"] == 236 and info["preprocess"]["crop"] == 224
        assert len(engine.labels) == 1000  # ImageNet's names for 1000 classes
        x = np.random.default_rng(0).standard_normal((3, 3, 32, 32), dtype=np.float32)
        logits = engine.forward(x)
        assert logits.shape == (3, 1000) and np.isfinite(logits).all()
        assert np.allclose(engine.forward(x[1:2]), logits[1:2], rtol=0, atol=1e-5)
        assert engine.forward(x[:0]).shape == (0, 1000)


def test_the_gil_is_released(digits_engine):
    x = np.zeros((256, 3, 32, 32), dtype=np.float32)
    worker = threading.Thread(target=digits_engine.forward, args=(x,))
    spins = 0
    worker.start()
    while worker.is_alive():
        spins += 1
    worker.join()
    # Holding the GIL through the forward would leave this loop a few turns.
    assert spins > 10000


def test_bad_arguments_raise(digits_engine, digits_files, tmp_path):
    e = digits_engine
    with pytest.raises(TypeError):
        e.classify(digits_files[0])  # one path, not a list
    with pytest.raises(TypeError):
        e.classify([3.5])
    with pytest.raises(ValueError):
        e.classify([np.zeros((4, 4), dtype=np.uint8)])
    with pytest.raises(ValueError):
        e.classify([np.zeros((4, 4, 3), dtype=np.float32)])
    with pytest.raises(ValueError):
        e.classify(digits_files[:1], k=0)
    with pytest.raises(ValueError):
        e.classify(digits_files[:1], k=11)
    with pytest.raises(ValueError):
        e.classify(digits_files[:1], preprocess={"resise": 40})
    with pytest.raises(TypeError):
        e.classify(digits_files[:1], preprocess={"crop": "32"})
    with pytest.raises(TypeError):
        e.classify(digits_files[:1], preprocess=[("crop", 32)])
    with pytest.raises(ValueError, match="crop must be in 1..16384"):
        e.classify([np.zeros((8, 8, 3), dtype=np.uint8)], preprocess={"crop": 100000})
    with pytest.raises(TypeError):
        cnx.Engine.random(None)
    with pytest.raises(ValueError):
        e.forward(np.zeros((1, 4, 32, 32), dtype=np.float32))
    with pytest.raises(TypeError):
        e.forward(np.zeros((1, 3, 32, 32), dtype=np.float64))
    with pytest.raises(cnx.InvalidArgumentError):  # NaN input, refused by cnx itself
        e.forward(np.full((1, 3, 32, 32), np.nan, dtype=np.float32))
    with pytest.raises(ValueError):
        cnx.Engine(DIGITS_WEIGHTS, device="gpu")
    with pytest.raises(ValueError):
        cnx.Engine(DIGITS_WEIGHTS, precision="fp64")
    with pytest.raises(ValueError):
        cnx.Engine(DIGITS_WEIGHTS, max_batch=0)
    with pytest.raises(cnx.FileError, match="missing.safetensors"):
        cnx.Engine(str(tmp_path / "missing.safetensors"), device="cpu")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(cnx.WeightsError, match="bad.safetensors"):
        cnx.Engine(bad, device="cpu")
    with pytest.raises(cnx.Error):
        cnx.Engine.random("convnext_gigantic", device="cpu")


def test_closed_engine_raises(digits_files):
    engine = cnx.Engine(DIGITS_WEIGHTS, device="cpu")
    engine.close()
    with pytest.raises(ValueError, match="closed"):
        engine.classify(digits_files[:1])
    engine.close()  # twice is fine
