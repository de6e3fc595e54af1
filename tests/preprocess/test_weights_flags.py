"""-w: cnx preprocess and cnx stats take resize, crop, mean and std from a
weights file's metadata, and the flags override them. The metadata is written
by tools/convert_weights.py from the --mean/--std lines `cnx stats` prints, so
this also checks that those lines are what convert_weights.py accepts.

usage: test_weights_flags.py CNX CONVERT_WEIGHTS_PY WORK_DIR
"""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import torch
from torchvision.models.convnext import CNBlockConfig, ConvNeXt

from common import Tally, noise_png, reference, run


def main():
    cnx, convert, work = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    tally = Tally()

    images = [noise_png(os.path.join(work, f"img{i}.png"), w, h, seed=20 + i)
              for i, (w, h) in enumerate([(70, 50), (41, 60), (48, 48)])]

    # The statistics of these images become the file's mean and std.
    status, out, err = run(cnx, "stats", *images)
    mean_line = re.search(r"^--mean (\S+)$", out, re.M)
    std_line = re.search(r"^--std (\S+)$", out, re.M)
    if not tally.check(status == 0 and mean_line and std_line, f"cnx stats: exit {status}: {out} {err}"):
        tally.finish()
    mean_text, std_text = mean_line.group(1), std_line.group(1)

    # A small random ConvNeXt, converted with that preprocessing.
    torch.manual_seed(0)
    setting = [CNBlockConfig(16, 32, 1), CNBlockConfig(32, 64, 1), CNBlockConfig(64, 128, 1),
               CNBlockConfig(128, None, 1)]
    pth = os.path.join(work, "model.pth")
    torch.save(ConvNeXt(setting, num_classes=5).state_dict(), pth)
    weights = os.path.join(work, "model.safetensors")
    proc = subprocess.run([sys.executable, convert, pth, weights, "--resize", "40", "--crop", "36",
                           "--mean", mean_text, "--std", std_text], capture_output=True, text=True)
    if not tally.check(proc.returncode == 0,
                       f"convert_weights.py --mean {mean_text} --std {std_text}: {proc.stderr}"):
        tally.finish()
    mean = [float(v) for v in mean_text.split(",")]
    std = [float(v) for v in std_text.split(",")]

    def compare(name, extra, resize, crop, mode, ref_mean, ref_std):
        out = os.path.join(work, "out.npy")
        status, _, err = run(cnx, "preprocess", "-w", weights, *extra, *images, "-o", out)
        if not tally.check(status == 0, f"{name}: exit {status}: {err.strip()}"):
            return
        got = np.load(out)
        for i, path in enumerate(images):
            ref = reference(path, resize, crop, mode, mean=ref_mean, std=ref_std)
            count = int(np.count_nonzero(got[i] != ref)) if got[i].shape == ref.shape else -1
            print(f"{name:28s} {os.path.basename(path)}: {count} values differ")
            tally.check(count == 0, f"{name}: {os.path.basename(path)}: {count} values differ")

    compare("-w", [], 40, 36, "float", mean, std)
    compare("-w --pixels", ["--pixels"], 40, 36, "pixels", mean, std)
    compare("-w --crop 30", ["--crop", "30"], 40, 30, "float", mean, std)
    compare("-w --resize 33 --mean --std", ["--resize", "33", "--mean", "0.5,0.5,0.5", "--std", "0.25,0.5,1"],
            33, 36, "float", [0.5, 0.5, 0.5], [0.25, 0.5, 1.0])
    compare("-w --no-normalize", ["--no-normalize"], 40, 36, "scaled", mean, std)

    # stats -w: after the file's Resize(40) + CenterCrop(36).
    status, out, err = run(cnx, "stats", "--json", "-w", weights, *images)
    try:
        obj = json.loads(out)
        ok = status == 0 and obj["resize"] == 40 and obj["crop"] == 36 and obj["pixels_per_channel"] == 3 * 36 * 36
    except (ValueError, KeyError):
        ok = False
    tally.check(ok, f"stats -w: exit {status}: {out} {err}")
    status, out, err = run(cnx, "stats", "--json", "-w", weights, "--crop", "20", *images)
    try:
        obj = json.loads(out)
        ok = status == 0 and obj["resize"] == 40 and obj["crop"] == 20 and obj["pixels_per_channel"] == 3 * 20 * 20
    except (ValueError, KeyError):
        ok = False
    tally.check(ok, f"stats -w --crop 20: exit {status}: {out} {err}")

    # A file that is not a weights file: a weights error, exit 2.
    status, _, err = run(cnx, "preprocess", "-w", images[0], images[0], "-o", os.path.join(work, "x.npy"))
    tally.check(status == 2 and "img0.png" in err, f"-w with a PNG: exit {status}: {err}")

    tally.finish()


if __name__ == "__main__":
    main()
