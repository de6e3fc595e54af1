#!/usr/bin/python3
"""A tiny, dependency-free safetensors writer and reader.

The format: an unsigned 64-bit little-endian header length N, then N bytes of
JSON header, then the raw little-endian tensor bytes. The header maps each
tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
relative to the start of the data) and may hold "__metadata__": {str: str}.
The header is padded with spaces so that the data starts on an 8-byte boundary.

Only the standard library is imported at module level. write() accepts torch
tensors (float32, float16, bfloat16, and the integer and bool dtypes) or numpy
arrays; read() returns torch tensors (framework="torch", the default) or numpy
arrays (framework="numpy"; BF16 then comes back widened to float32, as numpy
has no bfloat16).

Run as a script, it prints a file's header: safetensors_io.py FILE
"""

import json
import struct
import sys

__all__ = ["SafetensorsError", "write", "read", "read_header", "DTYPE_SIZES"]

# Bytes per element of each safetensors dtype this module handles.
DTYPE_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}

# numpy dtype strings (little-endian) for each safetensors dtype; BF16 is
# carried as raw uint16 bits.
_NUMPY_TYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?",
}

# The longest header we accept when reading (the reference implementation's limit).
MAX_HEADER_BYTES = 100 * 1000 * 1000


class SafetensorsError(ValueError):
    """A malformed safetensors file, or a tensor this module cannot store."""


def _torch_dtype_name(tensor):
    """The safetensors dtype of a torch tensor, or None if it is not one."""
    module = type(tensor).__module__
    if not module.startswith("torch"):
        return None
    import torch

    table = {
        torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
        torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32",
        torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
    }
    if tensor.dtype not in table:
        raise SafetensorsError(f"unsupported torch dtype {tensor.dtype}")
    return table[tensor.dtype]


def _to_bytes(name, value):
    """(dtype, shape, bytes) of one tensor, row-major, little-endian."""
    dtype = _torch_dtype_name(value)
    if dtype is not None:
        import torch

        t = value.detach().to("cpu").contiguous()
        shape = list(t.shape)
        if dtype == "BF16":
            t = t.view(torch.int16)
        elif dtype == "BOOL":
            t = t.to(torch.uint8)
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        return dtype, shape, data
    # numpy arrays (or anything that converts to one)
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        raise SafetensorsError(f"{name}: not a torch tensor, and numpy is not available")
    a = np.asarray(value)
    kinds = {
        ("f", 8): "F64", ("f", 4): "F32", ("f", 2): "F16", ("i", 8): "I64",
        ("i", 4): "I32", ("i", 2): "I16", ("i", 1): "I8", ("u", 1): "U8", ("b", 1): "BOOL",
    }
    key = (a.dtype.kind, a.dtype.itemsize)
    if key not in kinds:
        raise SafetensorsError(f"{name}: unsupported numpy dtype {a.dtype}")
    dtype = kinds[key]
    a = np.ascontiguousarray(a, dtype=np.dtype(_NUMPY_TYPES[dtype]))
    return dtype, list(a.shape), a.tobytes()


def write(path, tensors, metadata=None):
    """Writes tensors (a dict name -> tensor, in the order given) to path.

    metadata: a dict of str -> str for "__metadata__", or None. The output is
    a function of the inputs alone: the same tensors and metadata give the
    same bytes.
    """
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise SafetensorsError(f"metadata must map str to str, got {k!r}: {v!r}")
        header["__metadata__"] = dict(metadata)
    chunks = []
    offset = 0
    for name, value in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise SafetensorsError(f"bad tensor name {name!r}")
        dtype, shape, data = _to_bytes(name, value)
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for chunk in chunks:
            f.write(chunk)


def _parse_header(path, f, file_size):
    raw = f.read(8)
    if len(raw) < 8:
        raise SafetensorsError(f"{path}: too short for a safetensors file ({file_size} bytes)")
    (n,) = struct.unpack("<Q", raw)
    if n > MAX_HEADER_BYTES:
        raise SafetensorsError(f"{path}: header length {n} is over the {MAX_HEADER_BYTES}-byte limit")
    if 8 + n > file_size:
        raise SafetensorsError(f"{path}: header length {n} runs past the end of the file ({file_size} bytes)")
    text = f.read(n)
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError(f"{path}: header is not valid JSON ({e})")
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise SafetensorsError(f"{path}: __metadata__ must map strings to strings")
    data_size = file_size - 8 - n
    spans = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError(f"{path}: tensor {name!r}: entry must have dtype, shape, data_offsets")
        dtype, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in DTYPE_SIZES:
            raise SafetensorsError(f"{path}: tensor {name!r}: unsupported dtype {dtype!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise SafetensorsError(f"{path}: tensor {name!r}: bad shape {shape!r}")
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)
                or not 0 <= offs[0] <= offs[1] <= data_size):
            raise SafetensorsError(f"{path}: tensor {name!r}: data_offsets {offs!r} outside the "
                                   f"{data_size} data bytes")
        count = 1
        for d in shape:
            count *= d
        if count * DTYPE_SIZES[dtype] != offs[1] - offs[0]:
            raise SafetensorsError(f"{path}: tensor {name!r}: shape {shape} of {dtype} needs "
                                   f"{count * DTYPE_SIZES[dtype]} bytes, data_offsets give "
                                   f"{offs[1] - offs[0]}")
        spans.append((offs[0], offs[1], name))
    spans.sort()
    end = 0
    for b, e, name in spans:
        if b != end:
            what = "overlaps another tensor" if b < end else "leaves a gap before it"
            raise SafetensorsError(f"{path}: tensor {name!r}: data {what}")
        end = e
    if end != data_size:
        raise SafetensorsError(f"{path}: {data_size - end} bytes after the last tensor")
    return header, metadata, 8 + n


def read_header(path):
    """(header, metadata) of a file: header maps each tensor name to its
    {"dtype", "shape", "data_offsets"}, in file order; metadata is a dict."""
    import os

    with open(path, "rb") as f:
        header, metadata, _ = _parse_header(path, f, os.fstat(f.fileno()).st_size)
    return header, metadata


def read(path, framework="torch"):
    """(tensors, metadata) of a file. tensors: dict name -> tensor in the
    header's order; torch tensors, or numpy arrays with framework="numpy"."""
    import os

    import numpy as np

    if framework not in ("torch", "numpy"):
        raise ValueError(f"framework must be 'torch' or 'numpy', not {framework!r}")
    with open(path, "rb") as f:
        header, metadata, start = _parse_header(path, f, os.fstat(f.fileno()).st_size)
        f.seek(start)
        blob = f.read()
    tensors = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        dtype = info["dtype"]
        npdtype = np.dtype(_NUMPY_TYPES[dtype])
        if e == b:
            a = np.zeros(info["shape"], dtype=npdtype)
        else:
            a = np.frombuffer(blob, dtype=npdtype, count=(e - b) // DTYPE_SIZES[dtype],
                              offset=b).reshape(info["shape"])
        a = a.astype(npdtype.newbyteorder("="))  # a native-order, writable copy
        if framework == "torch":
            import torch

            if dtype == "BF16":
                tensors[name] = torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
            else:
                tensors[name] = torch.from_numpy(a)
        else:
            if dtype == "BF16":
                a = (a.astype(np.uint32) << 16).view(np.float32)
            tensors[name] = a
    return tensors, metadata


def _main(argv):
    import argparse
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet under `| head`
    parser = argparse.ArgumentParser(
        description="Print the header of a safetensors file: metadata, then one line per tensor "
                    "(name, dtype, shape).")
    parser.add_argument("file", help="a .safetensors file")
    args = parser.parse_args(argv)
    try:
        header, metadata = read_header(args.file)
    except (OSError, SafetensorsError) as e:
        print(f"safetensors_io.py: {e}", file=sys.stderr)
        return 2
    for k, v in metadata.items():
        print(f"# {k}: {v}")
    for name, info in header.items():
        print(f"{name}\t{info['dtype']}\t{info['shape']}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
