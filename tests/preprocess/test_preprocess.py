"""cnx preprocess against torchvision's PIL pipeline: zero differing pixels.

usage: test_preprocess.py CNX IMAGES_DIR WORK_DIR

For each (resize, crop) setting, one `cnx preprocess` run over every shared
test image and every generated edge case, three ways:
  --pixels        vs Resize(S, BILINEAR) -> CenterCrop(C), np.asarray -> CHW
  (default)       vs ... -> ToTensor -> Normalize(mean, std): max |diff| == 0
  --no-normalize  vs ... -> ToTensor
"""
import os
import shutil
import sys

import numpy as np

from common import Tally, fmt3, noise_png, reference, run

# (width, height) of the generated random-noise PNGs, and why each is there.
GENERATED = [
    (512, 384, "plain downscale"),
    (236, 237, "long side 237 at 236/224: crop top (237-224)/2 = 6.5 -> 6"),
    (236, 239, "long side 239: 7.5 -> 8"),
    (241, 236, "long side 241: 8.5 -> 8, horizontal"),
    (243, 236, "long side 243: 9.5 -> 10, horizontal"),
    (472, 478, "resized to 236x239: 7.5 -> 8 after a real resize"),
    (478, 472, "resized to 239x236, horizontal"),
    (2400, 160, "panorama"),
    (160, 2400, "tall"),
    (236, 300, "short side already 236: unchanged at 236 (a copy), resized at 256"),
    (300, 236, "the same, landscape"),
    (236, 236, "unchanged size at 236"),
    (224, 224, "upscale to 236, then crop"),
    (1, 1, "one pixel"),
    (50, 70, "upscaling"),
    (70, 50, "upscaling, landscape"),
    (600, 3, "extreme aspect 200:1"),
    (3, 600, "extreme aspect 1:200"),
    (37, 32, "odd sizes"),
    (451, 300, "chelsea's size"),
    (1013, 997, "primes"),
]

# (resize, crop, mean, std): None mean/std -> the defaults (ImageNet's).
SETTINGS = [
    (236, 224, None, None),
    (256, 224, None, None),
    (37, 32, [0.5, 0.25, 0.125], [0.3, 0.2, 0.1]),
    (237, 224, None, None),  # short side: (237-224)/2 = 6.5 -> 6
    (239, 224, None, None),  # short side: 7.5 -> 8
    (224, 236, None, None),  # crop larger than the short side: zero padding
    (31, 40, [0.1, 0.9, 0.45], [0.7, 0.05, 1.5]),  # padding split 4/5
]


def main():
    cnx, images_dir, work = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    tally = Tally()

    paths = sorted(
        os.path.join(images_dir, name)
        for name in os.listdir(images_dir)
        if name.lower().endswith((".png", ".jpg", ".jpeg"))
    )
    tally.check(len(paths) > 0, f"no test images in {images_dir}")
    for i, (w, h, _) in enumerate(GENERATED):
        paths.append(noise_png(os.path.join(work, f"noise_{w}x{h}.png"), w, h, seed=i))

    for resize, crop, mean, std in SETTINGS:
        flags = ["--resize", resize, "--crop", crop]
        if mean is not None:
            flags += ["--mean", fmt3(mean), "--std", fmt3(std)]
        ref_norm = {} if mean is None else {"mean": mean, "std": std}
        for mode, extra in (("pixels", ["--pixels"]), ("float", []), ("scaled", ["--no-normalize"])):
            out = os.path.join(work, f"out_{resize}_{crop}_{mode}.npy")
            status, _, err = run(cnx, "preprocess", *flags, *extra, *paths, "-o", out)
            if not tally.check(status == 0, f"cnx preprocess {resize}/{crop} {mode}: exit {status}: {err.strip()}"):
                continue
            got = np.load(out)
            expect_dtype = np.uint8 if mode == "pixels" else np.float32
            if not tally.check(got.shape == (len(paths), 3, crop, crop) and got.dtype == expect_dtype,
                               f"{mode}: shape {got.shape} dtype {got.dtype}"):
                continue
            for i, path in enumerate(paths):
                ref = reference(path, resize, crop, mode, **ref_norm)
                name = os.path.basename(path)
                if mode == "pixels":
                    diff = int(np.count_nonzero(got[i] != ref))
                    print(f"resize {resize} crop {crop} {mode:6s} {name:24s} differing pixels: {diff}")
                    tally.check(diff == 0, f"{name} resize {resize} crop {crop} {mode}: {diff} pixels differ")
                else:
                    diff = float(np.max(np.abs(got[i].astype(np.float64) - ref))) if ref.size else 0.0
                    count = int(np.count_nonzero(got[i] != ref))
                    print(f"resize {resize} crop {crop} {mode:6s} {name:24s} max |diff| {diff:g} ({count} values)")
                    tally.check(count == 0, f"{name} resize {resize} crop {crop} {mode}: "
                                            f"{count} values differ, max |diff| {diff:g}")

    # The defaults (no flags) are torchvision's ConvNeXt transforms: 236/224, ImageNet.
    out = os.path.join(work, "out_defaults.npy")
    status, _, err = run(cnx, "preprocess", *paths[:3], "-o", out)
    if tally.check(status == 0, f"cnx preprocess with defaults: exit {status}: {err.strip()}"):
        got = np.load(out)
        for i, path in enumerate(paths[:3]):
            ref = reference(path, 236, 224, "float")
            tally.check(np.array_equal(got[i], ref), f"{os.path.basename(path)}: defaults differ")

    tally.finish()


if __name__ == "__main__":
    main()
