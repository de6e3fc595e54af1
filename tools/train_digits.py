#!/usr/bin/python3
"""Train the small ConvNeXt that ships with cnx, on the UCI hand-written digits.

The lecture's experiment end to end, offline, on the CPU, seeded:

 1. The 1797 digits that scikit-learn bundles (8x8 gray, values 0..16, 10
    classes, CC BY 4.0) become 8-bit PNGs, u = (255 * v + 8) // 16 (v * 255/16
    rounded half up), saved as grayscale ("L") images so that cnx's L -> RGB
    conversion is exercised. A stratified split (--test-fraction of each class,
    25% by default, seeded by
    --split-seed) gives OUT/test/<class>/NNNN.png and WORK/train/<class>/NNNN.png,
    NNNN being the image's row in the data set: torchvision's ImageFolder layout.
 2. The training set's statistics come from `cnx stats --resize 36 --crop 32` on
    the training PNGs: the per-channel mean and std of what Normalize sees
    (the images after Resize(36) -> CenterCrop(32) -> ToTensor), which is how the
    lecture computes them (over the ToTensor'd training images). They are checked
    against torch's own over the same tensors to 1e-6. The raw 8x8 pixels have
    other statistics (upsampling smooths, the crop drops border); they are
    printed for comparison and not used.
 3. torchvision's ConvNeXt with a small block setting is trained on exactly the
    pipeline a pretrained ImageNet model uses, scaled down: PIL image from the
    PNG -> Resize(36, bilinear) -> CenterCrop(32) -> ToTensor -> Normalize(those
    statistics). cnx's preprocessing is the same, so the converted model sees in
    cnx what it saw in training. The only augmentation is a random shift of up
    to 3 pixels (zero padding, i.e. black) before Normalize.
 4. tools/convert_weights.py writes OUT/convnext_digits.safetensors with the
    preprocessing (resize 36, crop 32, the training mean and std) in its
    metadata; OUT/labels.txt gets the class names "0".."9"; OUT/training.json
    records the settings, statistics, accuracy and times.
 5. The test split is scored with torchvision (ImageFolder + the transforms) and
    with `cnx eval`, which must agree exactly.

Reproducible: the same seed, settings, thread count and torch build give the
same weights (torch.use_deterministic_algorithms is on; one thread by default).
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

PROG = "train_digits.py"

WIDTHS = (16, 32, 64, 128)
DEPTHS = (1, 1, 2, 1)
CLASSES = 10
RESIZE = 36
CROP = 32
SHIFT = 3  # pixels of random shift, at the 32x32 input scale
STOCHASTIC_DEPTH = 0.1
LABEL_SMOOTHING = 0.1
WEIGHT_DECAY = 0.05
WEIGHTS_NAME = "convnext_digits.safetensors"
CHECKPOINT_NAME = "convnext_digits.pth"
STATS_TOLERANCE = 1e-6
DATA_SOURCE = "UCI ML hand-written digits via scikit-learn (CC BY 4.0)"


class TrainError(Exception):
    """A user-facing error: one line, printed as 'train_digits.py: error: ...'."""


def log(message):
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------- data

def load_digits():
    """(images uint8 [N,8,8], targets int [N]) from scikit-learn's bundled copy."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise TrainError("needs scikit-learn's bundled digits data set "
                         "(Debian: apt-get install python3-sklearn)")
    import numpy as np

    data = sk_load_digits()
    values = data.images.astype(np.int64)
    if values.min() < 0 or values.max() > 16:
        raise TrainError(f"digits data: values outside 0..16 ({values.min()}..{values.max()})")
    return ((255 * values + 8) // 16).astype(np.uint8), data.target.astype(np.int64)


def split_test(targets, fraction, seed):
    """Boolean mask of the test images: round(fraction * n) of each class's
    n images, chosen by a seeded permutation (numpy's legacy RandomState,
    whose stream numpy keeps stable across versions)."""
    import numpy as np

    rng = np.random.RandomState(seed)
    test = np.zeros(len(targets), dtype=bool)
    for c in range(CLASSES):
        members = np.flatnonzero(targets == c)
        chosen = rng.permutation(members)[:int(round(fraction * len(members)))]
        test[chosen] = True
    return test


def clear_image_folder(path):
    """Removes an earlier split at path: only class folders 0..9 holding PNGs
    are removed, anything else is an error rather than lost."""
    if not os.path.lexists(path):
        return
    if not os.path.isdir(path) or os.path.islink(path):
        raise TrainError(f"{path}: exists and is not a folder")
    for name in os.listdir(path):
        sub = os.path.join(path, name)
        if not (name.isdigit() and os.path.isdir(sub) and not os.path.islink(sub) and
                all(f.endswith(".png") and os.path.isfile(os.path.join(sub, f)) for f in os.listdir(sub))):
            raise TrainError(f"{path}: holds {name!r}, which this script did not write; "
                             f"remove it or choose another folder")
    shutil.rmtree(path)


def write_pngs(folder, images, targets, rows):
    """Writes images[rows] as folder/<class>/<row>.png, 8-bit grayscale."""
    from PIL import Image

    for c in range(CLASSES):
        os.makedirs(os.path.join(folder, str(c)), exist_ok=True)
    for row in rows:
        Image.fromarray(images[row], mode="L").save(
            os.path.join(folder, str(int(targets[row])), f"{row:04d}.png"))


# ------------------------------------------------------------- statistics

def cnx_stats(cnx, folder, resize=None, crop=None):
    """cnx stats --json on a folder: the parsed object."""
    cmd = [cnx, "stats", "--json"]
    if resize:
        cmd += ["--resize", str(resize)]
    if crop:
        cmd += ["--crop", str(crop)]
    done = subprocess.run(cmd + [folder], capture_output=True, text=True)
    if done.returncode != 0:
        cause = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        raise TrainError(f"{' '.join(cmd)} {folder}: {cause}")
    return json.loads(done.stdout)


def torch_stats(batch):
    """Per-channel mean and unbiased std of [N,3,H,W], in float64."""
    x = batch.double()
    return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).tolist()


# ------------------------------------------------------------ the model

def build_model(stochastic_depth=STOCHASTIC_DEPTH):
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    setting = [CNBlockConfig(w, WIDTHS[i + 1] if i + 1 < len(WIDTHS) else None, d)
               for i, (w, d) in enumerate(zip(WIDTHS, DEPTHS))]
    return ConvNeXt(setting, stochastic_depth_prob=stochastic_depth, num_classes=CLASSES)


def base_transform():
    """Resize -> CenterCrop -> ToTensor: the pipeline before Normalize."""
    from torchvision import transforms

    return [transforms.Resize(RESIZE, interpolation=transforms.InterpolationMode.BILINEAR),
            transforms.CenterCrop(CROP), transforms.ToTensor()]


def load_folder(folder, steps):
    """(images [N,3,32,32], targets [N]) of an ImageFolder tree through steps."""
    import torch
    from torchvision import datasets, transforms

    data = datasets.ImageFolder(folder, transform=transforms.Compose(steps))
    if data.classes != [str(c) for c in range(CLASSES)]:
        raise TrainError(f"{folder}: class folders {data.classes}, expected 0..9")
    images = torch.stack([data[i][0] for i in range(len(data))])
    return images, torch.tensor(data.targets)


def random_shift(batch, pixels):
    """Each image moved by up to `pixels` in x and y, the uncovered border black."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = batch.shape
    padded = F.pad(batch, (pixels, pixels, pixels, pixels))
    offsets = torch.randint(0, 2 * pixels + 1, (n, 2)).tolist()
    return torch.stack([padded[i, :, y:y + h, x:x + w] for i, (y, x) in enumerate(offsets)])


def train(model, images, targets, normalize, args):
    """AdamW with a one-cycle schedule (10% warm-up, cosine decay), label
    smoothing, shuffled batches (the last partial batch dropped)."""
    import torch

    steps_per_epoch = len(targets) // args.batch
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch, pct_start=0.1)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
    start = time.monotonic()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(targets))
        total = 0.0
        for s in range(steps_per_epoch):
            pick = order[s * args.batch:(s + 1) * args.batch]
            x = normalize(random_shift(images[pick], SHIFT))
            loss = loss_fn(model(x), targets[pick])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        if epoch == 0 or (epoch + 1) % 5 == 0 or epoch + 1 == args.epochs:
            log(f"epoch {epoch + 1}/{args.epochs}: mean loss {total / steps_per_epoch:.4f} "
                f"({time.monotonic() - start:.0f} s)")
    model.eval()
    return time.monotonic() - start


def torch_accuracy(model, folder, mean, std):
    """Correct top-1 and top-5 counts and the total over an ImageFolder tree,
    torchvision's way: ImageFolder + the transforms the weights carry."""
    import torch
    from torchvision import transforms

    images, targets = load_folder(folder, base_transform() + [transforms.Normalize(mean, std)])
    with torch.no_grad():
        logits = model(images)
    top5 = logits.topk(5, dim=1).indices
    return (int((top5[:, 0] == targets).sum()), int((top5 == targets[:, None]).any(1).sum()),
            len(targets))


def cnx_eval(cnx, weights, folder):
    cmd = [cnx, "eval", "--device", "cpu", "--json", "-w", weights, folder]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        cause = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        raise TrainError(f"{' '.join(cmd)}: {cause}")
    return json.loads(done.stdout)


# ------------------------------------------------------------------ main

def _int_arg(low):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
        if v < low:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {low}")
        return v
    return parse


def _float_arg(low, high):
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number")
        if not low < v < high:
            raise argparse.ArgumentTypeError(f"{text!r} must be between {low} and {high}")
        return v
    return parse


def build_parser():
    p = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n", 1)[1].rsplit("\n\n", 1)[0],
        epilog=f"model: torchvision ConvNeXt, widths {','.join(map(str, WIDTHS))}, depths "
               f"{','.join(map(str, DEPTHS))}, {CLASSES} classes, input {CROP}x{CROP}; AdamW "
               f"(weight decay {WEIGHT_DECAY}), label smoothing {LABEL_SMOOTHING}, stochastic "
               f"depth {STOCHASTIC_DEPTH}.\nfiles written to OUT: {WEIGHTS_NAME}, labels.txt, "
               f"test/<class>/*.png, training.json;\nto WORK: train/<class>/*.png, "
               f"{CHECKPOINT_NAME}.\nThe same seed, settings, --threads and torch build give "
               f"the same weights.\nExit status: 0 on success, 1 if cnx eval and torchvision "
               f"disagree, 2 on any error.")
    p.add_argument("--out", default=os.path.join(ROOT, "examples", "digits"), metavar="DIR",
                   help="where the shipped files go (default: examples/digits)")
    p.add_argument("--work", metavar="DIR",
                   help="where the training PNGs and the .pth go (default: a temporary folder, "
                        "removed at the end)")
    p.add_argument("--cnx", default=os.path.join(ROOT, "build", "cnx"), metavar="PATH",
                   help="the cnx binary, for cnx stats and cnx eval (default: build/cnx)")
    p.add_argument("--seed", type=_int_arg(0), default=0, help="training seed (default 0)")
    p.add_argument("--split-seed", type=_int_arg(0), default=0,
                   help="seed of the train/test split (default 0); the shipped test split uses 0")
    p.add_argument("--test-fraction", type=_float_arg(0.0, 1.0), default=0.25, metavar="F",
                   help="share of each class held out for testing (default 0.25)")
    p.add_argument("--epochs", type=_int_arg(1), default=40, help="default 40")
    p.add_argument("--batch", type=_int_arg(1), default=32, help="batch size (default 32)")
    p.add_argument("--lr", type=_float_arg(0.0, 1.0), default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--threads", type=_int_arg(1), default=1,
                   help="torch CPU threads (default 1; the weights' last bits depend on it)")
    return p


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run(args, work):
    import numpy as np
    import torch
    import torchvision
    from torchvision import transforms

    import convert_weights

    if not (os.path.isfile(args.cnx) and os.access(args.cnx, os.X_OK)):
        raise TrainError(f"{args.cnx}: no cnx binary there; build cnx first (tools/build.sh) "
                         f"or pass --cnx PATH")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise TrainError(f"{args.out}: exists and is not a folder")
    started = time.monotonic()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)

    images, targets = load_digits()
    test = split_test(targets, args.test_fraction, args.split_seed)
    train_dir = os.path.join(work, "train")
    test_dir = os.path.join(args.out, "test")
    os.makedirs(args.out, exist_ok=True)
    clear_image_folder(train_dir)
    clear_image_folder(test_dir)
    write_pngs(train_dir, images, targets, np.flatnonzero(~test))
    write_pngs(test_dir, images, targets, np.flatnonzero(test))
    log(f"{len(targets)} digits: {int((~test).sum())} for training in {train_dir}, "
        f"{int(test.sum())} for testing in {test_dir}")

    # The training set's statistics, by cnx and by torch.
    stats = cnx_stats(args.cnx, train_dir, RESIZE, CROP)
    raw = cnx_stats(args.cnx, train_dir)
    mean, std = stats["mean"], stats["std"]
    train_images, train_targets = load_folder(train_dir, base_transform())
    torch_mean, torch_std = torch_stats(train_images)
    difference = max(abs(a - b) for a, b in zip(mean + std, torch_mean + torch_std))
    if stats["images"] != len(train_targets) or difference > STATS_TOLERANCE:
        raise TrainError(f"cnx stats and torch disagree on the training set: mean {mean} vs "
                         f"{torch_mean}, std {std} vs {torch_std} (max difference {difference:.3g})")
    fmt = convert_weights.format_floats
    log(f"training set statistics (cnx stats --resize {RESIZE} --crop {CROP}): --mean {fmt(mean)} "
        f"--std {fmt(std)}; torch agrees to {difference:.2g}")
    log(f"(the raw 8x8 pixels, not used: mean {raw['mean'][0]:.4f}, std {raw['std'][0]:.4f})")

    model = build_model()
    seconds = train(model, train_images, train_targets, transforms.Normalize(mean, std), args)
    top1, top5, total = torch_accuracy(model, test_dir, mean, std)
    log(f"trained in {seconds:.0f} s; torchvision on the test split: top-1 {100 * top1 / total:.2f}% "
        f"({top1}/{total}), top-5 {100 * top5 / total:.2f}% ({top5}/{total})")

    checkpoint = os.path.join(work, CHECKPOINT_NAME)
    torch.save(model.state_dict(), checkpoint)
    weights = os.path.join(args.out, WEIGHTS_NAME)
    source = f"cnx {PROG} seed {args.seed}, {DATA_SOURCE}"
    code = convert_weights.main([checkpoint, weights, "--resize", str(RESIZE), "--crop", str(CROP),
                                 "--mean", fmt(mean), "--std", fmt(std), "--source", source])
    if code != 0:
        raise TrainError(f"{weights}: convert_weights.py failed (exit {code})")
    with open(os.path.join(args.out, "labels.txt"), "w") as f:
        f.write("".join(f"{c}\n" for c in range(CLASSES)))

    ours = cnx_eval(args.cnx, weights, test_dir)
    agree = (ours["top1_correct"], ours["top5_correct"], ours["images"]) == (top1, top5, total)
    log(f"cnx eval on the test split: top-1 {ours['top1']:.2f}% ({ours['top1_correct']}/"
        f"{ours['images']}), top-5 {ours['top5']:.2f}% ({ours['top5_correct']}/{ours['images']}): "
        f"{'the same as torchvision' if agree else 'DIFFERENT from torchvision'}")

    record = {
        "data": DATA_SOURCE,
        "pixels": "u = (255 * v + 8) // 16 of the 0..16 values, 8-bit grayscale PNG",
        "split": {"seed": args.split_seed, "test_fraction": args.test_fraction, "stratified": True,
                  "train_images": len(train_targets), "test_images": total},
        "model": {"class": "torchvision.models.convnext.ConvNeXt", "widths": list(WIDTHS),
                  "depths": list(DEPTHS), "classes": CLASSES, "stochastic_depth": STOCHASTIC_DEPTH},
        "training": {"seed": args.seed, "epochs": args.epochs, "batch": args.batch, "lr": args.lr,
                     "optimizer": "AdamW", "weight_decay": WEIGHT_DECAY, "schedule": "OneCycleLR",
                     "label_smoothing": LABEL_SMOOTHING, "random_shift_pixels": SHIFT,
                     "threads": args.threads, "seconds": round(seconds, 1)},
        "preprocess": {"resize": RESIZE, "crop": CROP, "mean": mean, "std": std,
                       "from": f"cnx stats --resize {RESIZE} --crop {CROP} on the training PNGs",
                       "torch_max_difference": difference,
                       "raw_8x8_mean": raw["mean"], "raw_8x8_std": raw["std"]},
        "test": {"torchvision_top1_correct": top1, "torchvision_top5_correct": top5,
                 "cnx_top1_correct": ours["top1_correct"], "cnx_top5_correct": ours["top5_correct"],
                 "images": total, "top1": 100 * top1 / total, "top5": 100 * top5 / total},
        "weights_sha256": sha256(weights),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "numpy": np.__version__},
        "total_seconds": round(time.monotonic() - started, 1),
    }
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    log(f"wrote {weights}, labels.txt, test/ and training.json in {args.out} "
        f"({record['total_seconds']:.0f} s in all)")
    return 0 if agree else 1


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.work:
            os.makedirs(args.work, exist_ok=True)
            return run(args, args.work)
        with tempfile.TemporaryDirectory(prefix="train_digits.") as work:
            return run(args, work)
    except TrainError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{PROG}: error: {e.filename or ''}{': ' if e.filename else ''}{e.strerror or e}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
