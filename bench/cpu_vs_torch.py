#!/usr/bin/python3
"""CPU throughput of cnx's CPU backend against PyTorch CPU, same model, same
machine, same run. Both are timed in this process around the forward pass
alone (cnx through libcnx's C API via ctypes), alternating A B A B so that
machine drift hits both, and the median of each is reported.

    bench/cpu_vs_torch.py --lib build/libcnx.so [--config tiny] [--batch 8]
"""
import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))


class Options(ctypes.Structure):
    """cnx_options from include/cnx.h."""
    _fields_ = [("device", ctypes.c_int), ("precision", ctypes.c_int), ("max_batch", ctypes.c_int),
                ("input_size", ctypes.c_int), ("num_threads", ctypes.c_int), ("cuda_device", ctypes.c_int),
                ("cuda_stream", ctypes.c_void_p)]


def load_cnx(lib_path, weights, batch, threads):
    lib = ctypes.CDLL(lib_path)
    lib.cnx_default_options.restype = Options
    lib.cnx_last_error.restype = ctypes.c_char_p
    options = lib.cnx_default_options()
    options.device = 1  # CNX_DEVICE_CPU
    options.max_batch = batch
    options.num_threads = threads
    engine = ctypes.c_void_p()
    if lib.cnx_engine_create(weights.encode(), ctypes.byref(options), ctypes.byref(engine)) != 0:
        sys.exit(f"cnx: {lib.cnx_last_error().decode()}")
    return lib, engine


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lib", required=True, help="path to libcnx.so")
    parser.add_argument("--config", default="tiny", help="make_reference.py config (default tiny)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="timed forwards of each engine")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, os.path.join(HERE, "..", "tools", "make_reference.py"),
                        "--config", args.config, "--seed", "1", "--batch", "1", "--out", tmp],
                       check=True, capture_output=True)
        weights = os.path.join(tmp, "model_torchvision.safetensors")
        lib, engine = load_cnx(args.lib, weights, args.batch, args.threads)
        state = torch.load(os.path.join(tmp, "model.pth"))

    torch.set_num_threads(args.threads)
    model = torchvision.models.convnext_tiny() if args.config == "tiny" else None
    if model is None:
        sys.exit("only --config tiny is benchmarked against torchvision here")
    model.load_state_dict(state)
    model.eval()
    size = 224
    x = torch.randn(args.batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    x_np = np.ascontiguousarray(x.numpy())
    logits = np.empty((args.batch, 1000), dtype=np.float32)
    pointer = ctypes.POINTER(ctypes.c_float)

    def run_cnx():
        status = lib.cnx_engine_forward(engine, x_np.ctypes.data_as(pointer), args.batch, size, size,
                                        logits.ctypes.data_as(pointer))
        if status != 0:
            sys.exit(f"cnx: {lib.cnx_last_error().decode()}")

    def run_torch():
        with torch.inference_mode():
            return model(x)

    run_cnx()
    reference = run_torch().numpy()  # warm-up for both, and a correctness check
    error = np.abs(logits - reference).max() / np.abs(reference).max()
    times = {"cnx": [], "torch": []}
    for _ in range(args.rounds):
        for name, fn in (("cnx", run_cnx), ("torch", run_torch)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    cnx_rate = args.batch / statistics.median(times["cnx"])
    torch_rate = args.batch / statistics.median(times["torch"])
    print(f"convnext_tiny 224x224, batch {args.batch}, {args.threads} threads, {args.rounds} rounds, median")
    print(f"  cnx CPU (fp32, OpenBLAS):        {cnx_rate:7.2f} images/s")
    print(f"  PyTorch {torch.__version__} CPU (fp32, eager): {torch_rate:7.2f} images/s")
    print(f"  ratio cnx/PyTorch: {cnx_rate / torch_rate:.2f}x   (max relative logit difference {error:.2e})")
    lib.cnx_engine_destroy(engine)


if __name__ == "__main__":
    main()
