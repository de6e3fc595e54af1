#!/usr/bin/python3
"""Writes a small seed corpus for fuzz_image_decode: one folder of PNGs and
one of JPEGs, each a few KB, covering the modes and layouts the decoders
branch on. Also empties the folders the fuzzer writes its finds into."""
import argparse
import io
import os
import shutil
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "image"))
from test_decode import make_png  # noqa: E402  (the test's PNG writer: 16-bit, interlaced, tRNS)


def encoded(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--testdata", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    for folder in ("png", "jpeg", "found_png", "found_jpeg", "found_safetensors"):
        os.makedirs(os.path.join(args.out, folder))

    rng = np.random.default_rng(5)
    photo_path = os.path.join(args.testdata, "chelsea.png")
    if os.path.exists(photo_path):
        photo = Image.open(photo_path).convert("RGB").resize((24, 16))
    else:
        photo = Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))
    pixels = np.asarray(photo)
    seeds = {
        "png/rgb.png": encoded(photo, "PNG"),
        "png/rgba.png": encoded(photo.convert("RGBA"), "PNG"),
        "png/gray.png": encoded(photo.convert("L"), "PNG"),
        "png/gray_alpha.png": encoded(photo.convert("LA"), "PNG"),
        "png/bilevel.png": encoded(photo.convert("1"), "PNG"),
        "png/palette.png": encoded(photo.quantize(16), "PNG", bits=4),
        "png/palette_transparency.png": encoded(photo.quantize(64), "PNG", transparency=0),
        "png/gray16.png": make_png(rng.integers(0, 65536, (7, 9), dtype=np.uint16), 16, 0),
        "png/rgba16_interlaced.png": make_png(rng.integers(0, 65536, (7, 9, 4), dtype=np.uint16), 16, 6,
                                              interlace=True),
        "png/rgb_interlaced.png": make_png(pixels, 8, 2, interlace=True),
        "png/palette2_trns.png": make_png(rng.integers(0, 4, (5, 7), dtype=np.uint8), 2, 3,
                                          palette=rng.integers(0, 256, (4, 3)), trns=b"\x00\x80"),
        "jpeg/baseline_420.jpg": encoded(photo, "JPEG", quality=80),
        "jpeg/baseline_422.jpg": encoded(photo, "JPEG", subsampling=1),
        "jpeg/baseline_444.jpg": encoded(photo, "JPEG", subsampling=0),
        "jpeg/progressive.jpg": encoded(photo, "JPEG", progressive=True),
        "jpeg/optimized.jpg": encoded(photo, "JPEG", optimize=True),
        "jpeg/gray.jpg": encoded(photo.convert("L"), "JPEG"),
        "jpeg/cmyk.jpg": encoded(photo.convert("CMYK"), "JPEG"),
    }
    for name, data in seeds.items():
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes, in {args.out}")


if __name__ == "__main__":
    main()
