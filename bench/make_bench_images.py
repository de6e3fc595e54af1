#!/usr/bin/python3
"""Writes a folder of seeded synthetic JPEGs for cnx-bench's preprocess and
end-to-end modes: by default 512 images of 500x375 (a typical ImageNet
source), quality 90, 4:2:0.

Each image is smooth multi-scale noise (random fields at 1/64, 1/16 and 1/4
of the size, upsampled bicubically, plus a little pixel noise), so that the
JPEGs have the size and entropy of photographs (roughly 60-120 KB at 500x375)
rather than of flat test patterns. The same --seed gives the same files. A
folder already holding the same set (bench_images.json) is left as it is.

    bench/make_bench_images.py --out DIR [--count 512] [--size 500x375]
                               [--seed 0] [--quality 90]
"""

import argparse
import json
import multiprocessing
import os
import sys
import time

import numpy as np
from PIL import Image

PROG = "make_bench_images.py"
MANIFEST = "bench_images.json"


def size_arg(text):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WxH, e.g. 500x375")
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be positive")
    return w, h


def make_image(rng, w, h):
    """uint8 [h, w, 3]: smooth colour fields at three scales plus grain."""
    acc = np.zeros((h, w, 3), np.float32)
    for div, amp in ((64, 70.0), (16, 40.0), (4, 20.0)):
        sw, sh = max(2, w // div), max(2, h // div)
        small = rng.standard_normal((sh, sw, 3)).astype(np.float32)
        for c in range(3):
            layer = Image.fromarray(small[:, :, c], mode="F").resize((w, h), Image.BICUBIC)
            acc[:, :, c] += amp * np.asarray(layer)
    acc += 6.0 * rng.standard_normal((h, w, 3)).astype(np.float32)
    acc += rng.uniform(60, 190, size=(1, 1, 3)).astype(np.float32)
    return np.clip(acc, 0, 255).astype(np.uint8)


def write_one(job):
    """Writes one image; returns its size in bytes. Each image has its own
    seed (seed, index), so the set does not depend on the worker count."""
    path, seed, w, h, quality = job
    rng = np.random.default_rng(seed)
    Image.fromarray(make_image(rng, w, h), "RGB").save(path, "JPEG", quality=quality,
                                                       subsampling=2)
    return os.path.getsize(path)


def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder to write (created if missing)")
    p.add_argument("--count", type=int, default=512, help="number of images (default 512)")
    p.add_argument("--size", type=size_arg, default=(500, 375), help="WxH (default 500x375)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    args = p.parse_args(argv)
    if args.count <= 0:
        p.error("--count must be positive")
    w, h = args.size
    want = {"count": args.count, "size": [w, h], "seed": args.seed, "quality": args.quality,
            "generator": "smooth noise v2"}
    os.makedirs(args.out, exist_ok=True)
    manifest = os.path.join(args.out, MANIFEST)
    names = [f"img_{i:05d}.jpg" for i in range(args.count)]
    try:
        with open(manifest) as f:
            have = json.load(f)
        if {k: have.get(k) for k in want} == want and \
                all(os.path.isfile(os.path.join(args.out, n)) for n in names):
            print(f"{args.out}: already holds {args.count} {w}x{h} images (seed {args.seed})")
            return 0
    except (OSError, ValueError):
        pass
    t0 = time.perf_counter()
    jobs = [(os.path.join(args.out, n), (args.seed, i), w, h, args.quality)
            for i, n in enumerate(names)]
    workers = min(len(jobs), os.cpu_count() or 1, 16)
    if workers > 1:
        with multiprocessing.Pool(workers) as pool:
            total = sum(pool.map(write_one, jobs, chunksize=8))
    else:
        total = sum(map(write_one, jobs))
    with open(manifest, "w") as f:
        json.dump(dict(want, bytes=total), f)
    print(f"{args.out}: wrote {args.count} {w}x{h} JPEGs, quality {args.quality}, "
          f"{total / args.count / 1024:.1f} KiB each on average, in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
