#!/usr/bin/python3
"""Decode + preprocess on the CPU: `cnx preprocess` against Pillow +
torchvision (Image.open().convert("RGB") -> Resize(236) -> CenterCrop(224) ->
ToTensor -> Normalize, stacked), on the same images, one thread each,
alternating A B A B and reporting medians. cnx's figure includes its process
start and the .npy write; PyTorch's is the loop alone.

    bench/preprocess_vs_pillow.py --cnx build/cnx --images tests/data/images
"""
import argparse
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from PIL import Image
from torchvision import transforms


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cnx", required=True)
    parser.add_argument("--images", required=True, help="folder of PNG/JPEG files")
    parser.add_argument("--repeat", type=int, default=30, help="times each image is processed per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    images = sorted(glob.glob(os.path.join(args.images, "*")))
    if not images:
        sys.exit(f"no images in {args.images}")
    paths = images * args.repeat
    torch.set_num_threads(1)
    pipeline = transforms.Compose([
        transforms.Resize(236, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    times = {"cnx": [], "pillow": []}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.npy")
        for _ in range(args.rounds):
            start = time.perf_counter()
            subprocess.run([args.cnx, "preprocess", *paths, "-o", out], check=True, env=env)
            times["cnx"].append(time.perf_counter() - start)
            start = time.perf_counter()
            torch.stack([pipeline(Image.open(p).convert("RGB")) for p in paths])
            times["pillow"].append(time.perf_counter() - start)
    cnx_rate = len(paths) / statistics.median(times["cnx"])
    pillow_rate = len(paths) / statistics.median(times["pillow"])
    print(f"{len(images)} images x {args.repeat}, {args.rounds} rounds, one thread each, median")
    print(f"  cnx preprocess:          {cnx_rate:7.1f} images/s")
    print(f"  Pillow + torchvision:    {pillow_rate:7.1f} images/s")
    print(f"  ratio cnx/Pillow: {cnx_rate / pillow_rate:.2f}x")


if __name__ == "__main__":
    main()
