#!/usr/bin/env python3
"""Load on a running tritonserver's cnx model: sends a folder's images as
IMAGE requests of `--batch` images, `--in-flight` at a time, and prints the
images/s the client saw (best of `--runs`) and the server's own split of a
request's time (queue, compute) from /v2/models/<m>/stats.

    bench/triton_load.py --url 127.0.0.1:8000 --model digits --batch 32 examples/digits/test

Needs tritonclient[http] (tests/triton/requirements.txt). The client is
Python: at small batches it, not the server, may bound images/s; the
server's compute time per batch says what cnx took."""
import argparse
import glob
import json
import os
import sys
import time
import urllib.request

import numpy as np
import tritonclient.http as triton_http

TIMEOUT = 300


def find_images(folder):
    return sorted(p for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
                  if p.lower().endswith((".png", ".jpg", ".jpeg")))


def requests_of(blobs, batch):
    for i in range(0, len(blobs), batch):
        data = np.array([[blob] for blob in blobs[i:i + batch]], dtype=np.object_)
        tensor = triton_http.InferInput("IMAGE", list(data.shape), "BYTES")
        tensor.set_data_from_numpy(data)
        yield tensor


def one_run(client, model, tensors):
    start = time.perf_counter()
    pending = [client.async_infer(model, [tensor]) for tensor in tensors]
    for request in pending:
        request.get_result(timeout=TIMEOUT)
    return time.perf_counter() - start


def server_split(url, model):
    """Mean ms per request of queue and compute, and the images per execution."""
    with urllib.request.urlopen(f"http://{url}/v2/models/{model}/stats", timeout=30) as r:
        stats = json.load(r)["model_stats"][0]
    inference = stats["inference_stats"]
    per_request = {key: inference[key]["ns"] / max(1, inference[key]["count"]) / 1e6
                   for key in ("queue", "compute_input", "compute_infer", "compute_output")}
    per_execution = int(stats["inference_count"]) / max(1, int(stats["execution_count"]))
    return per_request, per_execution


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--url", default="127.0.0.1:8000")
    parser.add_argument("--model", default="digits")
    parser.add_argument("--batch", type=int, default=1, help="images per request")
    parser.add_argument("--in-flight", type=int, default=4, help="requests in flight")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    paths = find_images(args.folder)
    if not paths:
        sys.exit(f"triton_load.py: no .png or .jpg files under {args.folder}")
    blobs = []
    for path in paths:
        with open(path, "rb") as f:
            blobs.append(f.read())
    tensors = list(requests_of(blobs, args.batch))
    with triton_http.InferenceServerClient(args.url, concurrency=args.in_flight,
                                           network_timeout=TIMEOUT) as client:
        best = min(one_run(client, args.model, tensors) for _ in range(args.runs))
    per_request, per_execution = server_split(args.url, args.model)
    print(f"{args.model}: {len(blobs)} images, batch {args.batch}, {args.in_flight} in flight: "
          f"{len(blobs) / best:.0f} images/s (best of {args.runs})")
    print("server, mean ms per request: " +
          ", ".join(f"{key} {value:.3f}" for key, value in per_request.items()) +
          f"; {per_execution:.1f} images per execution")


if __name__ == "__main__":
    main()
