"""Shared helpers for the preprocess tests: running cnx, the torchvision
reference pipeline, generated images, and the pass/fail tally."""
import os
import subprocess
import sys

import numpy as np
from PIL import Image
from torchvision import transforms as T

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, message):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {message}", flush=True)
        return ok

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)


def run(cnx, *args):
    """Runs cnx; returns (exit status, stdout, stderr)."""
    proc = subprocess.run([cnx, *map(str, args)], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def noise_png(path, width, height, seed):
    """A random-noise RGB PNG: the hardest input for rounding."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(path)
    return path


def load_rgb(path):
    with Image.open(path) as img:
        return img.convert("RGB")


def reference(path, resize, crop, mode, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """torchvision's PIL pipeline. mode: "pixels" -> uint8 [3, crop, crop];
    "float" -> ToTensor + Normalize; "scaled" -> ToTensor only."""
    steps = [T.Resize(resize, interpolation=T.InterpolationMode.BILINEAR), T.CenterCrop(crop)]
    img = load_rgb(path)
    if mode == "pixels":
        return np.asarray(T.Compose(steps)(img)).transpose(2, 0, 1)
    steps.append(T.ToTensor())
    if mode == "float":
        steps.append(T.Normalize(mean, std))
    return T.Compose(steps)(img).numpy()


def fmt3(values):
    return ",".join(repr(float(v)) for v in values)
