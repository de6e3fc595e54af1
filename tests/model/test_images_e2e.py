#!/usr/bin/python3
"""Image files in, logits out: `cnx classify` on real PNG/JPEG files against
torchvision's own pipeline (PIL decode -> Resize -> CenterCrop -> ToTensor ->
Normalize -> model). Requires max|ours - torch| <= 1e-4 * max|torch| for the
preprocessing carried in the file, for a 37-class model converted with its own
resize/crop/mean/std, with --no-normalize, and with flag overrides."""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")
sys.path.insert(0, TOOLS)
import make_reference  # noqa: E402

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
results = {"passed": 0, "failed": 0}


def torch_logits(model, images, resize, crop, mean, std, normalize=True):
    steps = [transforms.Resize(resize, interpolation=transforms.InterpolationMode.BILINEAR),
             transforms.CenterCrop(crop), transforms.ToTensor()]
    if normalize:
        steps.append(transforms.Normalize(mean, std))
    pipeline = transforms.Compose(steps)
    batch = torch.stack([pipeline(Image.open(p).convert("RGB")) for p in images])
    with torch.no_grad():
        return model(batch).numpy()


def cnx_logits(cnx, weights, images, tmp, *flags):
    out = os.path.join(tmp, "logits.npy")
    cmd = [cnx, "classify", "--device", "cpu", "-w", weights, "-k", "1", "--dump-logits", out, *flags, *images]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"exit {done.returncode}: {done.stderr.strip()}")
    return np.load(out)


def compare(name, ours, ref):
    error = float(np.abs(ours - ref).max())
    bound = 1e-4 * float(np.abs(ref).max())
    ok = ours.shape == ref.shape and error <= bound and (ours.argmax(1) == ref.argmax(1)).all()
    results["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'} {name}: max|ours-torch| = {error:.3g} (bound {bound:.3g})")


def load_model(reference, config):
    model = make_reference.build_model(config)
    model.load_state_dict(torch.load(os.path.join(reference, config, "model.pth")))
    return model.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cnx", required=True)
    parser.add_argument("--reference", required=True, help="folder holding make_reference.py's small/ and classes37/")
    parser.add_argument("--images", required=True, help="folder of test images")
    args = parser.parse_args()
    images = sorted(glob.glob(os.path.join(args.images, "*")))
    assert images, f"no images in {args.images}"

    with tempfile.TemporaryDirectory() as tmp:
        def run(name, *call):
            try:
                call[0](*call[1:])
            except AssertionError as e:
                results["failed"] += 1
                print(f"FAIL {name}: {e}")

        small = load_model(args.reference, "small")
        small_weights = os.path.join(args.reference, "small", "model_torchvision.safetensors")
        # make_reference.py records resize round(64*236/224) = 67 and crop 64 for small models.
        run("defaults", lambda: compare(
            "small model, preprocessing from the file (Resize 67, CenterCrop 64, ImageNet mean/std)",
            cnx_logits(args.cnx, small_weights, images, tmp),
            torch_logits(small, images, 67, 64, IMAGENET_MEAN, IMAGENET_STD)))
        run("no-normalize", lambda: compare(
            "small model, --no-normalize (ToTensor only)",
            cnx_logits(args.cnx, small_weights, images, tmp, "--no-normalize"),
            torch_logits(small, images, 67, 64, None, None, normalize=False)))
        run("overrides", lambda: compare(
            "small model, --resize 256 --crop 224 --mean/--std overrides",
            cnx_logits(args.cnx, small_weights, images, tmp, "--resize", "256", "--crop", "224",
                       "--mean", "0.5,0.4,0.3", "--std", "0.2,0.3,0.25"),
            torch_logits(small, images, 256, 224, (0.5, 0.4, 0.3), (0.2, 0.3, 0.25))))

        # A fine-tuned head with its own preprocessing, carried by the file.
        custom = os.path.join(tmp, "classes37.safetensors")
        mean, std = (0.52, 0.47, 0.41), (0.27, 0.26, 0.28)
        convert = subprocess.run(
            [sys.executable, os.path.join(TOOLS, "convert_weights.py"),
             os.path.join(args.reference, "classes37", "model.pth"), custom, "--resize", "40", "--crop", "32",
             "--mean", ",".join(map(str, mean)), "--std", ",".join(map(str, std))],
            capture_output=True, text=True)
        if convert.returncode != 0:
            print(f"FAIL converting the 37-class model: {convert.stderr}")
            results["failed"] += 1
        else:
            classes37 = load_model(args.reference, "classes37")
            run("classes37", lambda: compare(
                "37-class model converted with Resize 40, CenterCrop 32 and its own mean/std",
                cnx_logits(args.cnx, custom, images, tmp),
                torch_logits(classes37, images, 40, 32, mean, std)))

    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
