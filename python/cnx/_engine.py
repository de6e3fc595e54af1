"""cnx.Engine: a ConvNeXt model on the CPU or a GPU."""
import copy
import os
from collections.abc import Mapping

import numpy as np

from . import _native
from ._inputs import as_pixels, is_path
from ._results import ClassifyResult, FileResult

_DEVICE_KINDS = {"auto": 0, "cpu": 1, "cuda": 2}
_PRECISIONS = {"fp32": 0, "tf32": 1, "fp16": 2, "bf16": 3}


def _parse_device(device):
    """"auto", "cpu", "cuda" or "cuda:N" -> (kind, ordinal)."""
    if not isinstance(device, str):
        raise TypeError(f"device must be a string, got {type(device).__name__}")
    kind, _, ordinal = device.partition(":")
    if kind not in _DEVICE_KINDS or (ordinal and (kind != "cuda" or not ordinal.isdigit())):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return _DEVICE_KINDS[kind], int(ordinal or 0)


def _positive_int(name, value, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return int(value)


def _engine_arguments(device, precision, max_batch, threads, input_size):
    kind, ordinal = _parse_device(device)
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(_PRECISIONS)}, got {precision!r}")
    return dict(device=kind, cuda_device=ordinal, precision=_PRECISIONS[precision],
                max_batch=_positive_int("max_batch", max_batch),
                threads=_positive_int("threads", threads, allow_zero=True),
                input_size=_positive_int("input_size", input_size, allow_zero=True))


def _check_preprocess(preprocess):
    """None, or a dict of overrides (see Engine.classify)."""
    if preprocess is None:
        return None
    if not isinstance(preprocess, Mapping):
        raise TypeError(f"preprocess must be a dict, got {type(preprocess).__name__}")
    return dict(preprocess)


def _framework(array):
    return type(array).__module__.split(".")[0]


def _is_cuda_array(x):
    """A DLPack array on a CUDA device (torch, CuPy)."""
    device = getattr(x, "__dlpack_device__", None)
    return device is not None and not isinstance(x, np.ndarray) and device()[0] == 2


class Engine:
    """A ConvNeXt model, loaded once, run many times.

    weights: a .safetensors file, or a timm / Hugging Face checkpoint folder.
    device: "auto" (the GPU when one is usable), "cpu", "cuda" or "cuda:N".
    precision: "fp32", "tf32", "fp16" or "bf16" (GPU; the CPU computes fp32).
    max_batch: images per forward planned for; larger calls are split.
    threads: CPU threads for the model; 0: every core.
    labels: class names, a list or a file of one name per line (as the CLI's
    --labels), instead of the model's own.
    Close it (or use it as a context manager) to free its memory at once.
    """

    def __init__(self, weights, device="auto", precision="fp32", max_batch=32, threads=0, *,
                 labels=None, input_size=0, use_test_size=False):
        arguments = _engine_arguments(device, precision, max_batch, threads, input_size)
        if not is_path(weights):
            raise TypeError(f"weights must be a path, got {type(weights).__name__}")
        self._open(_native.Engine.create(os.fspath(weights), use_test_size=bool(use_test_size),
                                         **arguments), arguments["max_batch"], labels)

    @classmethod
    def random(cls, arch, seed=0, device="auto", precision="fp32", max_batch=32, threads=0, *,
               input_size=0):
        """Seeded random weights of a named architecture ("convnext_tiny", ...),
        1000 classes and torchvision's preprocessing, for tests and benchmarks
        that must not download anything. Its predictions mean nothing."""
        arguments = _engine_arguments(device, precision, max_batch, threads, input_size)
        if not isinstance(arch, str):
            raise TypeError(f"arch must be a string, got {type(arch).__name__}")
        engine = cls.__new__(cls)
        engine._open(_native.Engine.create_random(arch, _positive_int("seed", seed, True),
                                                  **arguments), arguments["max_batch"])
        return engine

    def _open(self, native, max_batch, labels=None):
        self._native = native
        self._max_batch = max_batch
        self._info = native.info()
        self._labels = native.class_labels() if labels is None else self._read_labels(labels)

    def _read_labels(self, labels):
        source = "labels"
        if is_path(labels):
            source = os.fspath(labels)
            with open(source, encoding="utf-8", newline="") as f:
                labels = [line.rstrip("\r") for line in f.read().split("\n")]
            if labels[-1] == "":
                labels.pop()  # the text after the last newline: no line
            if labels and labels[-1] == "":
                labels.pop()  # as the CLI: a last blank line is no name
        labels = [str(name) for name in labels]
        if len(labels) != self._info["num_classes"]:
            self._native.close()
            raise ValueError(f"{source}: {len(labels)} labels, but the model has "
                             f"{self._info['num_classes']} classes")
        return labels
    @property
    def info(self):
        """architecture, num_classes, device ("cpu" or "cuda:N"), device_name,
        preprocess (resize, crop, mean, std, normalize, interpolation,
        crop_mode, crop_offset, rescale_factor) and more: a new dict each time."""
        return copy.deepcopy(self._info)

    @property
    def labels(self):
        """The class names, or None when the model has none."""
        return None if self._labels is None else list(self._labels)

    def close(self):
        """Frees the model (and its GPU memory). Later calls raise ValueError."""
        self._native.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"cnx.Engine({self._info['architecture']}, {self._info['num_classes']} classes, "
                f"{self._info['device']})")

    def _label_rows(self, indices):
        if self._labels is None:
            return None
        return [[self._labels[c] if c >= 0 else None for c in row] for row in indices.tolist()]

    def _check_k(self, k):
        k = _positive_int("k", k)
        if k > self._info["num_classes"]:
            raise ValueError(f"k is {k}, over the model's {self._info['num_classes']} classes")
        return k

    def _check_batch(self, batch):
        return self._max_batch if batch is None else _positive_int("batch", batch)

    def classify(self, inputs, k=5, batch=None, preprocess=None, decode_threads=0):
        """Top-k classes of each input: a list of paths (PNG or JPEG), uint8
        numpy arrays [H, W, 3] (RGB) or PIL images, which may be mixed.

        Files are decoded on `decode_threads` threads (0: one per core) while
        the model runs, `batch` images at a time (None: max_batch).
        preprocess: a dict of overrides of the weights file's preprocessing
        (resize, crop, mean, std, normalize, interpolation, ...).
        An input that fails costs only its own row: index -1, prob NaN, and
        its error. Wrong types or shapes raise TypeError or ValueError.
        """
        if is_path(inputs) or isinstance(inputs, np.ndarray) or not hasattr(inputs, "__iter__"):
            raise TypeError("classify takes a list of inputs; put a single one in a list")
        inputs = list(inputs)
        k, batch = self._check_k(k), self._check_batch(batch)
        preprocess = _check_preprocess(preprocess)
        decode_threads = _positive_int("decode_threads", decode_threads, allow_zero=True)
        n = len(inputs)
        indices = np.full((n, k), -1, dtype=np.int32)
        probs = np.full((n, k), np.nan, dtype=np.float32)
        errors = [None] * n

        file_rows = [i for i, item in enumerate(inputs) if is_path(item)]
        image_rows = [i for i, item in enumerate(inputs) if not is_path(item)]
        images = [as_pixels(inputs[i], f"inputs[{i}]") for i in image_rows]
        if file_rows:
            with self.classify_iter([inputs[i] for i in file_rows], k, batch, preprocess,
                                    decode_threads) as results:
                for result in results:
                    row = file_rows[result.index]
                    indices[row], probs[row], errors[row] = (result.indices, result.probs,
                                                             result.error)
        for start in range(0, len(images), batch):
            rows = image_rows[start:start + batch]
            got_indices, got_probs, got_errors = self._native.classify_images(
                images[start:start + batch], k, preprocess)
            indices[rows], probs[rows] = got_indices, got_probs
            for row, error in zip(rows, got_errors):
                if error:
                    errors[row] = f"inputs[{row}]: {error}"
        return ClassifyResult(indices, probs, errors, self._label_rows(indices))

    def classify_iter(self, paths, k=5, batch=None, preprocess=None, decode_threads=0):
        """Classifies image files, yielding a FileResult per file in input
        order as soon as its batch is done, while the next batches decode and
        run. len() gives the number of files (tqdm shows a total).

        The run holds the engine from the first next() until its last file
        (other calls wait for it) and does not wait for the reader: results
        not read yet wait in memory. close() (or leaving a `with` block)
        stops it after the batch in flight."""
        if is_path(paths) or not hasattr(paths, "__iter__"):
            raise TypeError("classify_iter takes a list of paths")
        paths = list(paths)
        for i, path in enumerate(paths):
            if not is_path(path):
                raise TypeError(f"paths[{i}]: expected a path, got {type(path).__name__}")
        return FileResults(self, [os.fspath(p) for p in paths], self._check_k(k),
                           self._check_batch(batch), _check_preprocess(preprocess),
                           _positive_int("decode_threads", decode_threads, allow_zero=True))

    def forward(self, x, stream=None):
        """Logits of preprocessed input float32 [N, 3, H, W].

        A numpy array (or anything numpy reads) gives a numpy array [N, classes].
        A CUDA array of torch or CuPy stays on the GPU: the model reads it and
        writes new logits of the same framework without a copy, queued on the
        framework's current stream, so the result follows the framework's own
        ordering. `stream` (a cudaStream_t as an int; 0: the engine's own)
        queues it elsewhere: then x, and the logits the framework allocates on
        its current stream, must stay alive until that stream has run it.
        """
        if _is_cuda_array(x):
            return self._forward_cuda(x, stream)
        x = np.asarray(x)
        if x.dtype != np.float32:
            raise TypeError(f"forward takes float32 input, got {x.dtype}")
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"forward takes [N, 3, H, W], got {list(x.shape)}")
        if len(x) == 0:
            return np.empty((0, self._info["num_classes"]), dtype=np.float32)
        return self._native.forward(np.ascontiguousarray(x))

    def _forward_cuda(self, x, stream):
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"forward takes [N, 3, H, W], got {list(x.shape)}")
        shape = (int(x.shape[0]), self._info["num_classes"])
        framework = _framework(x)
        if framework == "torch":
            import torch
            if x.dtype != torch.float32:
                raise TypeError(f"forward takes float32 input, got {x.dtype}")
            x = x.detach().contiguous()
            logits = torch.empty(shape, dtype=torch.float32, device=x.device)
            current = torch.cuda.current_stream(x.device).cuda_stream
        elif framework == "cupy":
            import cupy
            if x.dtype != cupy.float32:
                raise TypeError(f"forward takes float32 input, got {x.dtype}")
            with x.device:
                x = cupy.ascontiguousarray(x)
                logits = cupy.empty(shape, dtype=cupy.float32)
                current = cupy.cuda.get_current_stream().ptr
        else:
            raise TypeError(f"forward takes CUDA arrays of torch or CuPy, got {type(x).__name__}")
        if shape[0] > 0:
            self._native.forward_device(x, logits, current if stream is None else int(stream))
        return logits


class FileResults:
    """The iterator classify_iter returns. The run starts at the first
    next() and stops after the last file, at close(), or when the iterator
    is freed. Closing the engine makes the next step raise ValueError."""

    def __init__(self, engine, paths, k, batch, preprocess, decode_threads):
        self._engine = engine
        self._paths = paths
        self._arguments = (k, batch, decode_threads, preprocess)
        self._stream = None
        self._done = False

    def __len__(self):
        return len(self._paths)

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        if self._stream is None:
            k, batch, decode_threads, preprocess = self._arguments
            self._stream = self._engine._native.classify_files(self._paths, k, batch,
                                                               decode_threads, preprocess)
        try:
            row = self._stream.next()
        except BaseException:
            self.close()
            raise
        if row is None:
            self.close()
            raise StopIteration
        index, path, indices, probs, error = row
        indices, probs = indices[0], probs[0]
        labels = self._engine._label_rows(indices[None])
        return FileResult(index, path, indices, probs, labels[0] if labels else None,
                          error or None)

    def close(self):
        """Stops the run; the engine is free again."""
        self._done = True
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
