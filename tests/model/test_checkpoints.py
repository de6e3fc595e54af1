"""Checkpoint folders as timm and Hugging Face write them, read by cnx with no
flags, against the libraries' own pipelines.

The models are random but every parameter is perturbed (layer scales
log-uniform over 1e-6..1 per channel, GRN weights nonzero), and they are
saved with the libraries' own savers: timm's save_for_hf(safe_serialization=
True) and transformers' save_pretrained. For each folder `cnx classify -w
FOLDER --device cpu` must give the library's logits (timm: create_transform(
**resolve_data_config({}, model=m)); transformers: ConvNextImageProcessor
.from_pretrained) within 1e-4 of the largest, the same top-5, and the
checkpoint's class names; `cnx info --json` must name the config file each
preprocessing value came from. Folders holding pytorch_model.bin go through
tools/convert_weights.py first. Then the bad folders: each gets exit 2 and
one line naming the file. Runs in the reference venv (tools/ref_venv.sh).

usage: test_checkpoints.py CNX IMAGES_DIR WORK_DIR
"""
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config
from timm.models._hub import save_for_hf
from transformers import (ConvNextConfig, ConvNextForImageClassification, ConvNextImageProcessor,
                          ConvNextV2Config, ConvNextV2ForImageClassification)

ATOL = 1e-4  # relative to the largest reference logit
CONVERT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                       "convert_weights.py")
failures = []


def check(ok, message):
    print(("PASS " if ok else "FAIL ") + message, flush=True)
    if not ok:
        failures.append(message)
    return ok


def perturb(model, seed):
    """Every parameter random, scaled so activations stay O(1); layer scales
    log-uniform over 1e-6..1 per channel, as trained checkpoints have them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ("gamma", "layer_scale_parameter"):
                p.copy_(torch.exp(torch.empty(p.shape).uniform_(math.log(1e-6), 0.0, generator=g)))
            elif "grn" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1 and ("norm" in name or "layernorm" in name):
                base = 1.0 if leaf == "weight" else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                scale = 3.0 if ("head" in name or "classifier" in name) else 1.0
                p.copy_(scale * torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
    return model.eval()


def timm_folder(work, name, overlay, label_names=None, seed=1, safe=True):
    model = timm.create_model(name, pretrained=False, num_classes=len(label_names or []) or 11,
                              pretrained_cfg_overlay=overlay)
    perturb(model, seed)
    folder = os.path.join(work, name + "_" + "_".join(f"{k}{v}" for k, v in overlay.items()))
    shutil.rmtree(folder, ignore_errors=True)
    save_for_hf(model, folder, safe_serialization=safe)
    if label_names:  # as a hub config carries them
        with open(os.path.join(folder, "config.json")) as f:
            config = json.load(f)
        config["label_names"] = label_names
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
    return model, folder


def timm_reference(model, images, use_test_size=False):
    transform = create_transform(**resolve_data_config({}, model=model,
                                                       use_test_size=use_test_size))
    with torch.no_grad():
        return model(torch.stack([transform(img) for img in images])).numpy()


def hf_folder(work, tag, config, processor, seed=2, safe=True):
    cls = ConvNextV2ForImageClassification if config.model_type == "convnextv2" \
        else ConvNextForImageClassification
    model = perturb(cls(config), seed)
    folder = os.path.join(work, "hf_" + tag)
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder, safe_serialization=safe)
    processor.save_pretrained(folder)
    return model, folder


def hf_reference(model, folder, images):
    processor = ConvNextImageProcessor.from_pretrained(folder)
    pixels = processor([np.asarray(i) for i in images], return_tensors="pt",
                       input_data_format="channels_last")["pixel_values"]
    with torch.no_grad():
        return model(pixels).logits.numpy()


def convert(folder):
    """The folder through tools/convert_weights.py, into FOLDER_converted."""
    out = folder + "_converted"
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run([sys.executable, CONVERT, folder, out], capture_output=True, text=True)
    check(done.returncode == 0, f"convert {os.path.basename(folder)}: {done.stderr.strip()}")
    return out


def run_cnx(cnx, *args):
    done = subprocess.run([cnx, *map(str, args)], capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


def classify(cnx, folder, paths, work, *flags):
    out = os.path.join(work, "logits.npy")
    status, stdout, stderr = run_cnx(cnx, "classify", "--device", "cpu", "-w", folder, "-k", 5,
                                     "--json", "--dump-logits", out, *flags, *paths)
    if status != 0:
        return None, None, stderr
    return np.load(out), [json.loads(line) for line in stdout.splitlines()], stderr


def compare(cnx, name, folder, want, paths, work, labels=None, flags=()):
    got, results, stderr = classify(cnx, folder, paths, work, *flags)
    if not check(got is not None, f"{name}: classify ran: {stderr.strip()}"):
        return
    error = float(np.abs(got - want).max())
    bound = ATOL * float(np.abs(want).max())
    check(error <= bound, f"{name}: max|cnx - library| = {error:.3g} (bound {bound:.3g})")
    top5 = np.argsort(-want, axis=1, kind="stable")[:, :5]
    ours = np.array([[t["class"] for t in r["top"]] for r in results])
    check(np.array_equal(ours, top5), f"{name}: top-5 equal the library's on {len(paths)} images")
    if labels:
        named = all(t["label"] == labels[t["class"]] for r in results for t in r["top"])
        check(named, f"{name}: class names from the checkpoint")
    check("does not say how" not in stderr, f"{name}: no warning that nothing said how to preprocess")


def info_sources(cnx, folder, *flags):
    status, stdout, stderr = run_cnx(cnx, "info", "--json", *flags, folder)
    if not check(status == 0, f"info {os.path.basename(folder)}: {stderr.strip()}"):
        return {}
    return json.loads(stdout)["preprocess"]


def expect_refused(cnx, name, folder, names_file):
    status, stdout, stderr = run_cnx(cnx, "classify", "--device", "cpu", "-w", folder,
                                     os.path.join(folder, "..", "..", "dummy.png"))
    lines = stderr.strip().splitlines()
    check(status == 2 and len(lines) == 1 and names_file in lines[0],
          f"{name}: exit {status}, one line naming {os.path.basename(names_file)}: {stderr.strip()}")


def bad_folders(cnx, work, timm_src, hf_src):
    def copy(src, tag):
        dst = os.path.join(work, "bad_" + tag)
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
        return dst

    def rewrite(folder, file, change):
        path = os.path.join(folder, file)
        with open(path) as f:
            data = json.load(f)
        change(data)
        with open(path, "w") as f:
            json.dump(data, f)
        return path

    folder = copy(timm_src, "not_json")
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write('{"architecture": "convnext_atto", ')
    expect_refused(cnx, "config.json that is not JSON", folder, os.path.join(folder, "config.json"))

    folder = copy(timm_src, "unknown_arch")
    path = rewrite(folder, "config.json", lambda c: c.update(architecture="convnext_zepto_rms"))
    expect_refused(cnx, "unknown timm architecture", folder, path)

    folder = copy(timm_src, "timm_wrong_size")
    path = rewrite(folder, "config.json", lambda c: c.update(architecture="convnext_femto"))
    expect_refused(cnx, "timm architecture that disagrees with the shapes", folder, path)

    folder = copy(hf_src, "hf_depths")
    path = rewrite(folder, "config.json", lambda c: c.update(depths=[1, 1, 3, 1]))
    expect_refused(cnx, "transformers depths that disagree with the shapes", folder, path)

    folder = copy(hf_src, "hf_model_type")
    path = rewrite(folder, "config.json", lambda c: c.update(model_type="resnet"))
    expect_refused(cnx, "transformers model_type cnx does not run", folder, path)

    folder = copy(hf_src, "hf_processor")
    with open(os.path.join(folder, "preprocessor_config.json"), "w") as f:
        f.write("[1, 2")
    expect_refused(cnx, "preprocessor_config.json that is not JSON", folder,
                   os.path.join(folder, "preprocessor_config.json"))

    folder = os.path.join(work, "bad_empty")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    expect_refused(cnx, "a folder with no weights", folder, folder)


def main():
    cnx, images_dir, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    paths = sorted(os.path.join(images_dir, f) for f in os.listdir(images_dir)
                   if f.endswith((".png", ".jpg")))
    Image.new("RGB", (8, 8)).save(os.path.join(work, "..", "dummy.png"))
    images = [Image.open(p).convert("RGB") for p in paths]
    print(f"timm {timm.__version__}, torch {torch.__version__}, {len(paths)} images", flush=True)

    # timm V1: conv_mlp (atto), crop_pct 0.95, class names in the config.
    names = [f"class {i}" for i in range(11)]
    model, folder = timm_folder(work, "convnext_atto", {"crop_pct": 0.95}, names)
    compare(cnx, "timm convnext_atto, bicubic 0.95", folder, timm_reference(model, images),
            paths, work, names)
    sources = info_sources(cnx, folder)
    check(sources.get("sources", {}).get("crop") == "config.json" and
          sources.get("interpolation") == "bicubic" and sources.get("resize") == 235,
          f"timm: info names config.json as the source: {sources}")
    timm_v1 = folder

    # timm V1 in squash mode, and border mode.
    model, folder = timm_folder(work, "convnext_femto", {"crop_mode": "squash", "crop_pct": 1.0})
    compare(cnx, "timm convnext_femto, squash", folder, timm_reference(model, images), paths,
            work)
    model, folder = timm_folder(work, "convnext_atto", {"crop_mode": "border", "crop_pct": 0.9})
    compare(cnx, "timm convnext_atto, border", folder, timm_reference(model, images), paths,
            work)

    # timm V2 (GRN, no layer scale); its cfg has test_input_size 288, test_crop_pct 0.95.
    model, folder = timm_folder(work, "convnextv2_atto", {})
    compare(cnx, "timm convnextv2_atto", folder, timm_reference(model, images), paths, work)
    compare(cnx, "timm convnextv2_atto --test-size", folder,
            timm_reference(model, images, use_test_size=True), paths, work,
            flags=("--test-size",))
    sources = info_sources(cnx, folder, "--test-size")
    check(sources.get("crop") == 288 and sources.get("resize") == 303,
          f"timm --test-size: crop 288, resize floor(288 / 0.95) = 303: {sources}")

    # transformers V1 (layer scale, final LayerNorm eps 1e-12) with its labels.
    id2label = {i: f"hf label {i}" for i in range(6)}
    config = ConvNextConfig(depths=[1, 1, 2, 1], hidden_sizes=[16, 32, 64, 128],
                            num_labels=6, id2label=id2label,
                            label2id={v: k for k, v in id2label.items()})
    processor = ConvNextImageProcessor(size={"shortest_edge": 224}, crop_pct=0.95, resample=3,
                                       image_mean=[0.485, 0.456, 0.406],
                                       image_std=[0.229, 0.224, 0.225])
    model, folder = hf_folder(work, "v1", config, processor)
    compare(cnx, "transformers ConvNext, bicubic 224/0.95", folder,
            hf_reference(model, folder, images), paths, work, list(id2label.values()))
    sources = info_sources(cnx, folder)
    check(sources.get("sources", {}).get("mean") == "preprocessor_config.json" and
          sources.get("crop_offset") == "floor",
          f"transformers: info names preprocessor_config.json: {sources}")
    hf_v1 = folder

    # transformers V2 at 384: the warp, no crop.
    config = ConvNextV2Config(depths=[1, 1, 2, 1], hidden_sizes=[16, 32, 64, 128], num_labels=7)
    processor = ConvNextImageProcessor(size={"shortest_edge": 384}, resample=3)
    model, folder = hf_folder(work, "v2_384", config, processor)
    compare(cnx, "transformers ConvNextV2, 384 warp", folder,
            hf_reference(model, folder, images), paths, work)

    # pytorch_model.bin folders, converted with tools/convert_weights.py.
    model, folder = timm_folder(work, "convnextv2_femto", {"crop_pct": 0.9}, safe=False)
    compare(cnx, "timm convnextv2_femto from pytorch_model.bin", convert(folder),
            timm_reference(model, images), paths, work)
    model, folder = hf_folder(work, "v1_bin", ConvNextConfig(
        depths=[1, 1, 2, 1], hidden_sizes=[16, 32, 64, 128], num_labels=6),
        ConvNextImageProcessor(size={"shortest_edge": 160}, resample=2), safe=False)
    compare(cnx, "transformers ConvNext from pytorch_model.bin", convert(folder),
            hf_reference(model, folder, images), paths, work)

    bad_folders(cnx, work, timm_v1, hf_v1)
    print(f"{len(failures)} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
