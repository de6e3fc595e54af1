"""cnx stats against torch: per-channel mean and unbiased std of stacked
ToTensor() images, to 1e-6; the printed --mean/--std lines parse and are
accepted by cnx preprocess.

usage: test_stats.py CNX WORK_DIR
"""
import json
import os
import re
import shutil
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

from common import Tally, load_rgb, run

TOLERANCE = 1e-6


def torch_stats(paths, steps):
    """The lecture's way: stack the tensors, reduce over all but channels."""
    x = torch.stack([T.Compose(steps + [T.ToTensor()])(load_rgb(p)) for p in paths])
    return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).tolist()


def exact_stats(paths, steps):
    """The same in float64 from the uint8 values (what cnx promises)."""
    u = np.stack([np.asarray(T.Compose(steps)(load_rgb(p)) if steps else load_rgb(p))
                  for p in paths]).astype(np.float64) / 255.0
    u = u.reshape(-1, 3)
    return u.mean(axis=0).tolist(), u.std(axis=0, ddof=1).tolist()


def parse_text(out):
    """The printed lines: counts, and '--mean R,G,B' / '--std R,G,B'."""
    images = re.search(r"^images: (\d+)", out, re.M)
    pixels = re.search(r"^pixels: (\d+) per channel", out, re.M)
    mean = re.search(r"^--mean (\S+)$", out, re.M)
    std = re.search(r"^--std (\S+)$", out, re.M)
    if not (images and pixels and mean and std):
        return None
    return (int(images.group(1)), int(pixels.group(1)), mean.group(1), std.group(1))


def triple(text):
    parts = text.split(",")
    assert len(parts) == 3 and all(re.fullmatch(r"-?\d+\.\d{6,}", p) for p in parts), text
    return [float(p) for p in parts]


def close(a, b, tol=TOLERANCE):
    return max(abs(x - y) for x, y in zip(a, b)) <= tol


def main():
    cnx, work = sys.argv[1:3]
    shutil.rmtree(work, ignore_errors=True)
    tally = Tally()
    rng = np.random.default_rng(11)

    # Equal-size images with per-channel bias, so the channels differ.
    same = os.path.join(work, "same")
    os.makedirs(same)
    for i in range(6):
        base = rng.integers(0, 256, (48, 64, 3)).astype(np.float64)
        pixels = np.clip(base * [0.5, 0.8, 1.0] + [100, 20, 0], 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "RGB").save(os.path.join(same, f"img{i}.png"))
    same_paths = sorted(os.path.join(same, n) for n in os.listdir(same))

    # Mixed sizes: stackable only after Resize + CenterCrop.
    mixed = os.path.join(work, "mixed")
    os.makedirs(mixed)
    for i, (w, h) in enumerate([(90, 60), (50, 75), (33, 33), (20, 28)]):
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels, "RGB").save(os.path.join(mixed, f"img{i}.png"))
    mixed_paths = sorted(os.path.join(mixed, n) for n in os.listdir(mixed))

    cases = [
        ("full size", same, [], []),
        ("resize 40 crop 32", mixed, ["--resize", 40, "--crop", 32],
         [T.Resize(40, interpolation=T.InterpolationMode.BILINEAR), T.CenterCrop(32)]),
        ("resize 30 crop 36 (padding)", mixed, ["--resize", 30, "--crop", 36],
         [T.Resize(30, interpolation=T.InterpolationMode.BILINEAR), T.CenterCrop(36)]),
        ("resize only", same, ["--resize", 37],
         [T.Resize(37, interpolation=T.InterpolationMode.BILINEAR)]),
        ("bicubic, crop_pct 0.8 (resize 40) crop 32", mixed,
         ["--interpolation", "bicubic", "--crop-pct", 0.8, "--crop", 32],
         [T.Resize(40, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(32)]),
        ("squash 40 lanczos, crop 32", mixed,
         ["--crop-mode", "squash", "--interpolation", "lanczos", "--resize", 40, "--crop", 32],
         [T.Resize((40, 40), interpolation=T.InterpolationMode.LANCZOS), T.CenterCrop(32)]),
        ("squash 37 only", mixed, ["--crop-mode", "squash", "--resize", 37],
         [T.Resize((37, 37), interpolation=T.InterpolationMode.BILINEAR)]),
        ("crop only", same, ["--crop", 40], [T.CenterCrop(40)]),
        ("crop only, padding", same, ["--crop", 52], [T.CenterCrop(52)]),
    ]
    for name, folder, flags, steps in cases:
        paths = same_paths if folder == same else mixed_paths
        status, out, err = run(cnx, "stats", *flags, folder)
        if not tally.check(status == 0, f"{name}: exit {status}: {err.strip()}"):
            continue
        print(f"--- {name}\n{out}", end="")
        parsed = parse_text(out)
        if not tally.check(parsed is not None, f"{name}: unexpected output:\n{out}"):
            continue
        images, pixels, mean_text, std_text = parsed
        try:
            mean, std = triple(mean_text), triple(std_text)
        except AssertionError:
            tally.check(False, f"{name}: --mean/--std values do not parse: {mean_text} {std_text}")
            continue
        ref_mean, ref_std = torch_stats(paths, steps)
        x_mean, x_std = exact_stats(paths, steps)
        print(f"torch  mean {ref_mean} std {ref_std}")
        tally.check(images == len(paths), f"{name}: {images} images, expected {len(paths)}")
        tally.check(close(mean, ref_mean) and close(std, ref_std),
                    f"{name}: cnx {mean} {std} vs torch {ref_mean} {ref_std}")
        tally.check(close(mean, x_mean, 1e-8) and close(std, x_std, 1e-8),
                    f"{name}: cnx {mean} {std} vs float64 {x_mean} {x_std}")

        status, out, err = run(cnx, "stats", "--json", *flags, folder)
        try:
            obj = json.loads(out)
            ok = (status == 0 and obj["images"] == len(paths) and obj["pixels_per_channel"] == pixels
                  and close(obj["mean"], x_mean, 1e-8) and close(obj["std"], x_std, 1e-8))
        except (ValueError, KeyError, TypeError) as e:
            ok = False
            out += f" ({e})"
        tally.check(ok, f"{name} --json: exit {status}: {out.strip()} {err.strip()}")

        # The printed lines are flags cnx accepts as they are.
        status, _, err = run(cnx, "preprocess", "--mean", mean_text, "--std", std_text,
                             paths[0], "-o", os.path.join(work, "check.npy"))
        tally.check(status == 0, f"{name}: cnx preprocess rejects --mean {mean_text} --std {std_text}: {err.strip()}")

    tally.finish()


if __name__ == "__main__":
    main()
