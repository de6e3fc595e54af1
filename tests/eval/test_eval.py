#!/usr/bin/python3
"""`cnx eval` against torchvision on the shipped digits model and test split.

1. cnx eval on examples/digits/test with the shipped weights gives exactly the
   accuracy torchvision computes: the model rebuilt from the safetensors file
   in torchvision's ConvNeXt, the same files through datasets.ImageFolder and
   the transforms the file's metadata names. Same top-1 and top-5 counts, same
   per-class counts, same prediction for every image.
2. Bad files inside an ImageFolder tree (an empty PNG, a text file named .png,
   a BMP) are counted, named on stderr, left out of the accuracy; exit 1.
3. --json parses and has images, top1 and top5.
4. The lecture's table: the training set's statistics beat ImageNet's and no
   normalization at all.
5. Usage errors exit 2 with one line naming the cause; a 3-class model reports
   top-3.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import datasets, transforms
from torchvision.models.convnext import CNBlockConfig, ConvNeXt

results = {"passed": 0, "failed": 0}
IMAGENET_MEAN = "0.485,0.456,0.406"
IMAGENET_STD = "0.229,0.224,0.225"


def check(name, condition, detail=""):
    results["passed" if condition else "failed"] += 1
    print(f"{'PASS' if condition else 'FAIL'} {name}{'' if condition else ': ' + detail}", flush=True)


def cnx(*args):
    return subprocess.run([CNX, *args], capture_output=True, text=True)


def cnx_eval_json(*args):
    done = cnx("eval", "--device", "cpu", "--json", *args)
    try:
        return done, json.loads(done.stdout)
    except json.JSONDecodeError:
        return done, None


def torchvision_model(weights):
    """(model, metadata): torchvision's ConvNeXt of the file's shape, loaded."""
    import convert_weights
    import safetensors_io

    tensors, metadata = safetensors_io.read(weights)
    shape = convert_weights.describe(tensors)
    widths = shape.widths
    setting = [CNBlockConfig(w, widths[i + 1] if i + 1 < len(widths) else None, d)
               for i, (d, w) in enumerate(zip(shape.depths, widths))]
    model = ConvNeXt(setting, num_classes=shape.num_classes)
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    return model.eval(), metadata


def metadata_transform(metadata, mean=None, std=None, normalize=True):
    steps = [transforms.Resize(int(metadata["resize"]), interpolation=transforms.InterpolationMode.BILINEAR),
             transforms.CenterCrop(int(metadata["crop"])), transforms.ToTensor()]
    if normalize:
        steps.append(transforms.Normalize(mean or [float(v) for v in metadata["mean"].split(",")],
                                          std or [float(v) for v in metadata["std"].split(",")]))
    return transforms.Compose(steps)


def torch_eval(model, folder, transform):
    """(logits [N,classes], targets [N], samples) over an ImageFolder tree."""
    data = datasets.ImageFolder(folder, transform=transform)
    batch = torch.stack([data[i][0] for i in range(len(data))])
    with torch.no_grad():
        logits = model(batch).numpy()
    return logits, np.array(data.targets), [p for p, _ in data.samples]


def counts(logits, targets, k=5):
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return int((top[:, 0] == targets).sum()), int((top == targets[:, None]).any(1).sum())


def check_exact(model, metadata, weights, test_dir, work):
    dump = os.path.join(work, "logits.npy")
    done, ours = cnx_eval_json("-w", weights, "--dump-logits", dump, test_dir)
    check("eval --json on the shipped split: exit 0, one JSON object", done.returncode == 0 and ours is not None,
          f"exit {done.returncode}: {done.stderr.strip()[-300:]}")
    if ours is None:
        return
    check("--json has images, top1, top5", all(k in ours for k in ("images", "top1", "top5")), str(list(ours)))
    ref, targets, samples = torch_eval(model, test_dir, metadata_transform(metadata))
    top1, top5 = counts(ref, targets)
    n = len(targets)
    check(f"same images as ImageFolder ({n})", ours["images"] == n and ours["failed"] == 0,
          f"cnx {ours['images']} images, {ours['failed']} failed")
    check(f"top-1 exactly torchvision's: {top1}/{n}", ours["top1_correct"] == top1,
          f"cnx {ours['top1_correct']}, torchvision {top1}")
    check(f"top-5 exactly torchvision's: {top5}/{n}", ours["top5_correct"] == top5,
          f"cnx {ours['top5_correct']}, torchvision {top5}")
    check("top1/top5 percentages", abs(ours["top1"] - 100 * top1 / n) < 1e-5 and
          abs(ours["top5"] - 100 * top5 / n) < 1e-5, f"{ours['top1']}, {ours['top5']}")
    per_class = [int(((targets == c) & (ref.argmax(1) == c)).sum()) for c in range(len(ours["per_class"]))]
    check("per-class counts exactly torchvision's",
          [c["top1_correct"] for c in ours["per_class"]] == per_class and
          [c["images"] for c in ours["per_class"]] == [int((targets == c).sum()) for c in range(len(per_class))],
          f"cnx {[c['top1_correct'] for c in ours['per_class']]}, torchvision {per_class}")
    logits = np.load(dump)
    same_top1 = logits.shape == ref.shape and (logits.argmax(1) == ref.argmax(1)).all()
    check("every image's top-1 prediction is torchvision's", bool(same_top1),
          f"{int((logits.argmax(1) != ref.argmax(1)).sum())} differ" if logits.shape == ref.shape else str(logits.shape))
    ours5 = np.argsort(-logits, axis=1, kind="stable")[:, :5]
    ref5 = np.argsort(-ref, axis=1, kind="stable")[:, :5]
    check("every image's top-5 set is torchvision's",
          all(set(a) == set(b) for a, b in zip(ours5.tolist(), ref5.tolist())))
    error = float(np.abs(logits - ref).max())
    bound = 1e-4 * float(np.abs(ref).max())
    check(f"logits within 1e-4 of the largest (max error {error:.2g})", error <= bound, f"bound {bound:.2g}")

    text = cnx("eval", "--device", "cpu", "-w", weights, test_dir)
    line = f"top-1:   {100 * top1 / n:.2f}% ({top1}/{n})"
    check("text output: the top-1 line, per-class table, confused pairs",
          text.returncode == 0 and line in text.stdout and "most confused" in text.stdout and
          text.stdout.count("\n") > 10, text.stdout[:300])
    return samples


def check_bad_files(model, metadata, weights, test_dir, work):
    tree = os.path.join(work, "bad_tree")
    shutil.rmtree(tree, ignore_errors=True)
    for c in ("0", "1", "2"):
        shutil.copytree(os.path.join(test_dir, c), os.path.join(tree, c))
    empty = os.path.join(tree, "0", "empty.png")
    text = os.path.join(tree, "1", "text.png")
    bmp = os.path.join(tree, "2", "zz.bmp")
    open(empty, "wb").close()
    with open(text, "w") as f:
        f.write("this is not a PNG\n")
    Image.new("L", (8, 8), 128).save(bmp)
    with open(os.path.join(tree, "1", "notes.txt"), "w") as f:
        f.write("not an image extension: not listed\n")
    done, ours = cnx_eval_json("-w", weights, tree)
    check("bad files: exit 1", done.returncode == 1, f"exit {done.returncode}: {done.stderr.strip()[-300:]}")
    errors = [l for l in done.stderr.splitlines() if l.startswith("cnx: ") and "convnext on" not in l]
    check("bad files: each named on stderr on one line",
          len(errors) == 3 and all(any(p in l for l in errors) for p in (empty, text, bmp)), "\n".join(errors))
    check("bad files: notes.txt is not an image", "notes.txt" not in done.stderr)
    good = sum(len(os.listdir(os.path.join(test_dir, c))) for c in ("0", "1", "2"))
    if ours is None:
        check("bad files: --json output", False, done.stdout[:200])
        return
    check(f"bad files: 3 failed, {good} evaluated", ours["failed"] == 3 and ours["images"] == good,
          f"{ours['failed']} failed, {ours['images']} evaluated")
    check("bad files: listed in failed_images",
          sorted(f["image"] for f in ours["failed_images"]) == sorted([empty, text, bmp]),
          str(ours["failed_images"]))
    # The accuracy over the good images only: torchvision on the same tree
    # without the bad files.
    for p in (empty, text, bmp):
        os.unlink(p)
    ref, targets, _ = torch_eval(model, tree, metadata_transform(metadata))
    top1, top5 = counts(ref, targets)
    check("bad files: left out of the accuracy (= torchvision without them)",
          (ours["top1_correct"], ours["top5_correct"]) == (top1, top5),
          f"cnx {ours['top1_correct']},{ours['top5_correct']}; torchvision {top1},{top5}")
    check("subset of classes: a note on stderr", "3 class folders for a 10-class model" in done.stderr,
          done.stderr[-300:])


def check_lecture_table(model, metadata, weights, test_dir):
    rows = [("training set's statistics (from the file)", []),
            ("ImageNet's statistics", ["--mean", IMAGENET_MEAN, "--std", IMAGENET_STD]),
            ("no normalization", ["--no-normalize"])]
    table = []
    for name, flags in rows:
        done, ours = cnx_eval_json("-w", weights, *flags, test_dir)
        if done.returncode != 0 or ours is None:
            check(f"lecture table: {name}", False, f"exit {done.returncode}: {done.stderr.strip()[-200:]}")
            return
        table.append((name, ours))
    # Each row agrees with torchvision under the same preprocessing.
    imagenet = metadata_transform(metadata, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    for (name, ours), transform in zip(table[1:], (imagenet, metadata_transform(metadata, normalize=False))):
        ref, targets, _ = torch_eval(model, test_dir, transform)
        top1, top5 = counts(ref, targets)
        check(f"lecture table: {name} is torchvision's too ({top1})",
              (ours["top1_correct"], ours["top5_correct"]) == (top1, top5),
              f"cnx {ours['top1_correct']},{ours['top5_correct']}; torchvision {top1},{top5}")
    print("\n| preprocessing | top-1 | top-5 |\n|---|---|---|")
    for name, ours in table:
        print(f"| {name} | {ours['top1']:.2f}% | {ours['top5']:.2f}% |")
    print()
    best = table[0][1]["top1"]
    check("lecture table: the training set's statistics give the best top-1",
          all(best > ours["top1"] for _, ours in table[1:]), str([o["top1"] for _, o in table]))


def check_usage(weights, test_dir, work):
    many = os.path.join(work, "eleven")
    shutil.rmtree(many, ignore_errors=True)
    sample = os.path.join(test_dir, "0", sorted(os.listdir(os.path.join(test_dir, "0")))[0])
    for c in range(11):
        os.makedirs(os.path.join(many, f"c{c:02d}"))
        shutil.copy(sample, os.path.join(many, f"c{c:02d}"))
    empty_tree = os.path.join(work, "empty_tree")
    shutil.rmtree(empty_tree, ignore_errors=True)
    os.makedirs(os.path.join(empty_tree, "a"))
    no_classes = os.path.join(work, "no_classes")
    shutil.rmtree(no_classes, ignore_errors=True)
    os.makedirs(no_classes)
    missing = os.path.join(work, "missing.safetensors")
    cases = [([], "no weights", "-w"),
             (["-w", weights], "no folder", "folder"),
             (["-w", weights, test_dir, test_dir], "two folders", "one folder"),
             (["-w", weights, "--bogus", test_dir], "unknown flag", "--bogus"),
             (["-w", weights, "--device", "tpu", test_dir], "bad device", "--device"),
             (["-w", weights, "--mean", "1,2", test_dir], "bad mean", "--mean"),
             (["-w", missing, test_dir], "missing weights", missing),
             (["-w", weights, weights], "DIR is a file", weights),
             (["-w", weights, os.path.join(work, "nowhere")], "DIR missing", "nowhere"),
             (["-w", weights, no_classes], "no class folders", "no class folders"),
             (["-w", weights, empty_tree], "no images", "no images"),
             (["-w", weights, many], "more folders than classes", "11 class folders"),
             (["-w", weights, "--labels", os.path.join(work, "nolabels.txt"), test_dir], "missing labels",
              "nolabels.txt")]
    for argv, what, needle in cases:
        done = cnx("eval", "--device", "cpu", *argv)
        lines = [l for l in done.stderr.strip().splitlines() if "convnext on" not in l]
        check(f"usage error exits 2 with one line: {what}",
              done.returncode == 2 and needle in done.stderr and (len(lines) == 1 or what == "unknown flag"),
              f"exit {done.returncode}, stderr {done.stderr!r}")
    done = cnx("eval", "--help")
    check("--help exits 0 and documents the flags", done.returncode == 0 and all(
        f in done.stdout for f in ("--json", "--labels", "--no-normalize", "--dump-logits", "ImageFolder")),
        done.stdout[:200])
    done = cnx("--help")
    check("cnx --help lists eval", done.returncode == 0 and "eval" in done.stdout)


def check_three_classes(test_dir, work):
    """A 3-class model: top-3 instead of top-5, said so."""
    import convert_weights

    torch.manual_seed(3)
    setting = [CNBlockConfig(8, 16, 1), CNBlockConfig(16, 32, 1), CNBlockConfig(32, 64, 1),
               CNBlockConfig(64, None, 1)]
    model = ConvNeXt(setting, num_classes=3)
    pth = os.path.join(work, "three.pth")
    weights = os.path.join(work, "three.safetensors")
    torch.save(model.state_dict(), pth)
    code = convert_weights.main([pth, weights, "--resize", "36", "--crop", "32", "--mean", "0.5,0.5,0.5",
                                 "--std", "0.5,0.5,0.5", "--source", "test"])
    tree = os.path.join(work, "three_tree")
    shutil.rmtree(tree, ignore_errors=True)
    for c in ("0", "1", "2"):
        shutil.copytree(os.path.join(test_dir, c), os.path.join(tree, c))
    done, ours = cnx_eval_json("-w", weights, tree)
    check("3 classes: top5_k is 3 and top-3 is 100%",
          code == 0 and ours is not None and ours["top5_k"] == 3 and ours["top5"] == 100.0,
          f"exit {done.returncode}: {done.stdout[:200]} {done.stderr[-200:]}")
    text = cnx("eval", "--device", "cpu", "-w", weights, tree)
    check("3 classes: the text says top-3 and why", "top-3:" in text.stdout and "the model has 3 classes" in
          text.stdout, text.stdout[:300])


def main():
    global CNX
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cnx", required=True, help="the cnx binary")
    parser.add_argument("--root", required=True, help="the source tree (examples/, tools/)")
    parser.add_argument("--work", required=True, help="scratch folder")
    args = parser.parse_args()
    CNX = args.cnx
    sys.path.insert(0, os.path.join(args.root, "tools"))
    os.makedirs(args.work, exist_ok=True)
    torch.set_num_threads(1)
    digits = os.path.join(args.root, "examples", "digits")
    weights = os.path.join(digits, "convnext_digits.safetensors")
    test_dir = os.path.join(digits, "test")
    model, metadata = torchvision_model(weights)

    check_exact(model, metadata, weights, test_dir, args.work)
    check_bad_files(model, metadata, weights, test_dir, args.work)
    check_lecture_table(model, metadata, weights, test_dir)
    check_usage(weights, test_dir, args.work)
    check_three_classes(test_dir, args.work)
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
