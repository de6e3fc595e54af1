"""cnx preprocess against the libraries' own eval transforms, bit for bit:
Pillow's filters through torchvision's Resize, timm 1.0.31's
transforms_imagenet_eval (crop modes center, squash, border) and Hugging Face
transformers 4.44.2's ConvNextImageProcessor (floor crop offsets, the warp at
384 and up, the float64 rescale).

Both the pixels after resize and crop (cnx preprocess --pixels) and the model
input floats must be identical, on the test photos and on generated images of
odd sizes. Then, end to end, a small random ConvNeXt converted with each
library's preprocessing recorded in the file: `cnx classify` with no flags
must give the logits of the model on the library's transform (within 1e-4 of
the largest). Runs in the reference venv (tools/ref_venv.sh).

usage: test_library_transforms.py CNX IMAGES_DIR WORK_DIR
"""
import os
import sys

import subprocess

import numpy as np
import timm
import torch
import transformers
from PIL import Image
from timm.data.transforms_factory import transforms_imagenet_eval
from torchvision import transforms as T
from transformers import ConvNextImageProcessor

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")
sys.path.insert(0, HERE)
sys.path.insert(0, TOOLS)
import make_reference  # noqa: E402
from common import IMAGENET_MEAN, IMAGENET_STD, Tally, fmt3, load_rgb, noise_png, run  # noqa: E402

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]  # CLIP-trained ConvNeXts in timm
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
HF_RESCALE = 1 / 255  # what preprocessor_config.json files carry: 0.00392156862745098
PIL_FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "box": Image.BOX,
               "hamming": Image.HAMMING, "lanczos": Image.LANCZOS}
TV_MODES = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC,
            "box": T.InterpolationMode.BOX, "hamming": T.InterpolationMode.HAMMING,
            "lanczos": T.InterpolationMode.LANCZOS}


def torchvision_case(name, filt, resize, crop):
    """Resize(resize, filt) -> CenterCrop(crop), as torchvision runs it."""
    def reference(img, kind):
        steps = [T.Resize(resize, interpolation=TV_MODES[filt]), T.CenterCrop(crop)]
        if kind == "pixels":
            return np.asarray(T.Compose(steps)(img)).transpose(2, 0, 1)
        steps += [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
        return T.Compose(steps)(img).numpy()
    flags = ["--resize", resize, "--crop", crop, "--interpolation", filt,
             "--mean", fmt3(IMAGENET_MEAN), "--std", fmt3(IMAGENET_STD)]
    return name, reference, flags


def timm_case(name, img_size, crop_pct, crop_mode, filt, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """timm's eval transform, as create_transform builds it from a pretrained_cfg."""
    def reference(img, kind):
        tf = transforms_imagenet_eval(img_size=img_size, crop_pct=crop_pct, crop_mode=crop_mode,
                                      interpolation=filt, mean=mean, std=std,
                                      normalize=kind != "pixels")
        return tf(img).numpy()
    flags = ["--crop", img_size, "--crop-pct", repr(crop_pct), "--crop-mode", crop_mode,
             "--interpolation", filt, "--mean", fmt3(mean), "--std", fmt3(std)]
    return name, reference, flags


def hf_case(name, shortest_edge, crop_pct, resample):
    """transformers' ConvNextImageProcessor with a preprocessor_config's values."""
    filt = {Image.BILINEAR: "bilinear", Image.BICUBIC: "bicubic"}[resample]

    def reference(img, kind):
        processor = ConvNextImageProcessor(
            size={"shortest_edge": shortest_edge}, crop_pct=crop_pct, resample=resample,
            rescale_factor=HF_RESCALE, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD,
            do_rescale=kind != "pixels", do_normalize=kind != "pixels")
        # Told the layout: it guesses channels-first for images 3 pixels wide.
        out = processor(np.asarray(img), return_tensors="np",
                        input_data_format="channels_last")["pixel_values"][0]
        return out.astype(np.uint8) if kind == "pixels" else out
    if shortest_edge >= 384:  # a warp to a square, no crop
        geometry = ["--resize", shortest_edge, "--crop", shortest_edge, "--crop-mode", "squash"]
    else:
        geometry = ["--crop", shortest_edge, "--crop-pct", repr(crop_pct),
                    "--crop-offset", "floor"]
    flags = geometry + ["--interpolation", filt, "--rescale-factor", repr(HF_RESCALE),
                        "--mean", fmt3(IMAGENET_MEAN), "--std", fmt3(IMAGENET_STD)]
    return name, reference, flags


CASES = (
    [torchvision_case(f"torchvision {f} 256/224", f, 256, 224) for f in PIL_FILTERS]
    + [torchvision_case(f"torchvision {f} upscale 300/288", f, 300, 288)
       for f in ("bicubic", "lanczos")]
    + [
        timm_case("timm center bicubic 0.875", 224, 0.875, "center", "bicubic"),
        timm_case("timm center bicubic 0.95", 224, 0.95, "center", "bicubic"),
        timm_case("timm center bilinear 1.0 at 288", 288, 1.0, "center", "bilinear"),
        timm_case("timm squash bicubic 0.875", 224, 0.875, "squash", "bicubic"),
        timm_case("timm squash bicubic 1.0", 224, 1.0, "squash", "bicubic"),
        timm_case("timm border bicubic 0.875", 224, 0.875, "border", "bicubic"),
        timm_case("timm border bicubic 1.0, CLIP mean", 224, 1.0, "border", "bicubic",
                  OPENAI_MEAN, OPENAI_STD),
        hf_case("transformers bicubic 224/0.875", 224, 0.875, Image.BICUBIC),
        hf_case("transformers bicubic 224/0.95", 224, 0.95, Image.BICUBIC),
        hf_case("transformers bilinear 160/0.9", 160, 0.9, Image.BILINEAR),
        hf_case("transformers bicubic 384 warp", 384, 1.0, Image.BICUBIC),
    ]
)


def make_images(images_dir, work):
    """The test photos, plus noise and gradients of odd sizes and aspects
    (noise makes every rounding and clipping decision visible)."""
    paths = sorted(os.path.join(images_dir, f) for f in os.listdir(images_dir)
                   if f.endswith((".png", ".jpg")))
    sizes = [(3, 5), (37, 23), (101, 67), (1, 40), (640, 3), (223, 224), (257, 511), (300, 300),
             (250, 199)]
    for i, (w, h) in enumerate(sizes):
        paths.append(noise_png(os.path.join(work, f"noise_{w}x{h}.png"), w, h, seed=100 + i))
    x = np.linspace(0, 255, 333)
    ramp = np.stack([np.add.outer(np.arange(211) * 1.2, x) % 256] * 3, axis=-1).astype(np.uint8)
    ramp_path = os.path.join(work, "ramp_333x211.png")
    Image.fromarray(ramp, "RGB").save(ramp_path)
    paths.append(ramp_path)
    return paths


def compare(tally, name, kind, want, got, paths):
    if not tally.check(got.shape == want.shape,
                       f"{name} {kind}: cnx shape {got.shape}, reference {want.shape}"):
        return
    same = [np.array_equal(g, w) for g, w in zip(got, want)]
    for path, ok, g, w in zip(paths, same, got, want):
        if not ok:
            diff = np.abs(g.astype(np.float64) - w.astype(np.float64))
            tally.check(False, f"{name} {kind} {os.path.basename(path)}: {np.count_nonzero(diff)}"
                               f" values differ, max {diff.max():g}")
    tally.check(all(same), f"{name} {kind}: all {len(paths)} images identical")


def check_end_to_end(tally, cnx, work, paths, images):
    """The preprocessing travels in the file: classify with no flags."""
    model = make_reference.build_model("small")
    make_reference.randomize(model, torch.Generator().manual_seed(7))
    pth = os.path.join(work, "small.pth")
    torch.save(model.state_dict(), pth)
    picked = [c for c in CASES if c[0] in ("timm border bicubic 1.0, CLIP mean",
                                           "transformers bicubic 224/0.95",
                                           "torchvision lanczos 256/224")]
    tally.check(len(picked) == 3, "the end-to-end cases exist")
    for name, reference, flags in picked:
        weights = os.path.join(work, "small_converted.safetensors")
        done = subprocess.run([sys.executable, os.path.join(TOOLS, "convert_weights.py"), pth,
                               weights, *map(str, flags)],  # the converter takes cnx's flags
                              capture_output=True, text=True)
        if not tally.check(done.returncode == 0, f"{name}: convert: {done.stderr.strip()}"):
            continue
        out = os.path.join(work, "logits.npy")
        status, _, err = run(cnx, "classify", "--device", "cpu", "-w", weights, "-k", "1",
                             "--dump-logits", out, *paths)
        if not tally.check(status == 0, f"{name}: classify exited {status}: {err.strip()}"):
            continue
        batch = torch.from_numpy(np.stack([reference(img, "float") for img in images]))
        with torch.no_grad():
            want = model(batch).numpy()
        got = np.load(out)
        error = float(np.abs(got - want).max())
        bound = 1e-4 * float(np.abs(want).max())
        tally.check(error <= bound, f"{name}: classify with the file's preprocessing: "
                                    f"max|cnx - torch| {error:.3g}, bound {bound:.3g}")


def main():
    cnx, images_dir, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    print(f"timm {timm.__version__}, transformers {transformers.__version__}", flush=True)
    tally = Tally()
    paths = make_images(images_dir, work)
    images = [load_rgb(p) for p in paths]

    for name, reference, flags in CASES:
        for kind in ("pixels", "float"):
            out = os.path.join(work, "out.npy")
            extra = ["--pixels"] if kind == "pixels" else []
            status, _, err = run(cnx, "preprocess", *flags, *extra, *paths, "-o", out)
            if not tally.check(status == 0, f"{name} {kind}: cnx exited {status}: {err.strip()}"):
                continue
            want = np.stack([reference(img, kind) for img in images])
            compare(tally, name, kind, want, np.load(out), paths)

    check_end_to_end(tally, cnx, work, paths, images)

    # The conventions differ where the test says they do, so the comparisons
    # above can tell them apart: floor and round offsets on odd margins, and
    # bicubic against bilinear.
    hf = hf_case("", 224, 0.95, Image.BICUBIC)[1]
    tv = timm_case("", 224, 0.95, "center", "bicubic")[1]
    tally.check(any(not np.array_equal(hf(i, "pixels"), tv(i, "pixels")) for i in images),
                "floor (transformers) and round (timm) crop offsets differ on some image")
    bilinear = torchvision_case("", "bilinear", 256, 224)[1]
    bicubic = torchvision_case("", "bicubic", 256, 224)[1]
    tally.check(all(not np.array_equal(bilinear(i, "pixels"), bicubic(i, "pixels"))
                    for i in images[:3]), "bicubic differs from bilinear")
    tally.finish()


if __name__ == "__main__":
    main()
