#!/usr/bin/python3
"""Convert a PyTorch ConvNeXt checkpoint (.pth) into a safetensors file for cnx.

The functions here are also used by make_reference.py and the tests:
load_checkpoint, strip_prefixes, describe, architecture_name,
default_preprocess, make_metadata, cast_tensors, default_source.
"""

import argparse
import hashlib
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import convnext_names  # noqa: E402
import safetensors_io  # noqa: E402

PROG = "convert_weights.py"

# (name, depths, stem width, whether torchvision ships it). Widths double at
# each stage. torchvision's four come from torchvision.models.convnext; the
# rest are timm's.
ARCHITECTURES = [
    ("convnext_atto", (2, 2, 6, 2), 40, False),
    ("convnext_femto", (2, 2, 6, 2), 48, False),
    ("convnext_pico", (2, 2, 6, 2), 64, False),
    ("convnext_nano", (2, 2, 8, 2), 80, False),
    ("convnext_tiny", (3, 3, 9, 3), 96, True),
    ("convnext_small", (3, 3, 27, 3), 96, True),
    ("convnext_base", (3, 3, 27, 3), 128, True),
    ("convnext_large", (3, 3, 27, 3), 192, True),
    ("convnext_xlarge", (3, 3, 27, 3), 256, False),
    ("convnext_xxlarge", (3, 4, 30, 3), 384, False),
]

# torchvision's weights enums, where each variant's preprocessing lives.
TORCHVISION_WEIGHTS = {
    "convnext_tiny": "ConvNeXt_Tiny_Weights",
    "convnext_small": "ConvNeXt_Small_Weights",
    "convnext_base": "ConvNeXt_Base_Weights",
    "convnext_large": "ConvNeXt_Large_Weights",
}

# Keys under which training scripts keep the state_dict in a checkpoint dict,
# in the order they are tried.
CHECKPOINT_KEYS = ("state_dict", "model", "model_state_dict", "module")

# Prefixes that wrappers add (DataParallel/DDP "module.", Lightning-style "model.").
PREFIXES = ("module.", "model.")

# The C engine keeps these metadata strings in fixed-size buffers.
MAX_ARCH_BYTES = 63
MAX_SOURCE_BYTES = 255


class ConvertError(Exception):
    """A user-facing error: bad input file, not a ConvNeXt, bad option."""


class ModelShape:
    """What describe() finds in a state_dict."""

    def __init__(self, naming, depths, widths, num_classes, conv_mlp):
        self.naming = naming
        self.depths = tuple(depths)
        self.widths = tuple(widths)
        self.num_classes = num_classes
        self.conv_mlp = conv_mlp
        self.architecture = architecture_name(self.depths, self.widths)

    def __repr__(self):
        return (f"ModelShape({self.naming}, depths={self.depths}, widths={self.widths}, "
                f"classes={self.num_classes}, {self.architecture})")


def _is_tensor(value):
    import torch

    return isinstance(value, torch.Tensor)


def load_checkpoint(path):
    """(state_dict, key) from a .pth file. key is the checkpoint key the
    state_dict was found under, or None when the file is a state_dict."""
    import pickle
    import zipfile

    import torch

    if os.path.isdir(path):
        raise ConvertError(f"{path}: is a directory")
    if not os.path.exists(path):
        raise ConvertError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise ConvertError(f"{path}: empty file")
    try:
        obj = torch.load(path, map_location="cpu")
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError,
            UnicodeDecodeError, AttributeError, ModuleNotFoundError, ImportError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConvertError(f"{path}: not a readable PyTorch checkpoint ({msg})")
    except OSError as e:
        raise ConvertError(f"{path}: {e.strerror or e}")
    if isinstance(obj, torch.nn.Module):
        raise ConvertError(f"{path}: holds a whole pickled model ({type(obj).__name__}), not a "
                           f"state_dict; save model.state_dict() instead")
    if not isinstance(obj, dict):
        raise ConvertError(f"{path}: holds a {type(obj).__name__}, not a state_dict or checkpoint dict")
    if obj and all(_is_tensor(v) for v in obj.values()):
        return obj, None
    for key in CHECKPOINT_KEYS:
        if isinstance(obj.get(key), dict):
            return obj[key], key
    if not obj:
        raise ConvertError(f"{path}: holds an empty dict")
    names = ", ".join(repr(k) for k in list(obj)[:6]) + (", ..." if len(obj) > 6 else "")
    if any(_is_tensor(v) for v in obj.values()):
        bad = next(k for k, v in obj.items() if not _is_tensor(v))
        raise ConvertError(f"{path}: state_dict entry {bad!r} is a {type(obj[bad]).__name__}, "
                           f"not a tensor")
    raise ConvertError(f"{path}: no state_dict found: top-level keys are {names}; none of "
                       f"{', '.join(CHECKPOINT_KEYS)} holds one")


def strip_prefixes(state_dict):
    """(new dict, stripped) with "module."/"model." removed from the front of
    every name that has them; stripped is the set of prefixes removed."""
    out = {}
    stripped = set()
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise ConvertError(f"state_dict key {name!r} is not a string")
        new = name
        while new.startswith(PREFIXES):
            p = next(p for p in PREFIXES if new.startswith(p))
            stripped.add(p)
            new = new[len(p):]
        if new in out:
            raise ConvertError(f"{name!r} and another entry both become {new!r} after removing "
                               f"the {'/'.join(PREFIXES)} prefixes")
        out[new] = value
    return out, stripped


def architecture_name(depths, widths):
    """"convnext_tiny" etc. from the shapes, or "convnext" for an unnamed one."""
    for name, d, w0, _ in ARCHITECTURES:
        if tuple(depths) == d and tuple(widths) == (w0, 2 * w0, 4 * w0, 8 * w0):
            return name
    return "convnext"


def _naming(names):
    tv = [n for n in names if n.startswith(("features.", "classifier."))]
    timm = [n for n in names if n.startswith(("stem.", "stages.", "head."))]
    if tv and timm:
        raise ConvertError(f"mixes torchvision names ({tv[0]!r}) and timm names ({timm[0]!r})")
    if tv:
        return convnext_names.TORCHVISION
    if timm:
        return convnext_names.TIMM
    if any(n.startswith(("downsample_layers.", "stages.")) for n in names):
        return "facebook"
    return None


def _count(items):
    return f"{len(items)} tensor{'s' if len(items) != 1 else ''}"


def describe(state_dict):
    """Checks that state_dict is a complete ConvNeXt in torchvision or timm
    naming, with nothing missing, nothing extra and every shape right, and
    returns its ModelShape. Raises ConvertError otherwise."""
    names = list(state_dict)
    for name, value in state_dict.items():
        if not _is_tensor(value):
            raise ConvertError(f"entry {name!r} is a {type(value).__name__}, not a tensor")
    naming = _naming(names)
    if naming == "facebook" or any(n.startswith("downsample_layers.") for n in names):
        raise ConvertError("looks like the original facebookresearch/ConvNeXt naming "
                           "(downsample_layers.*, stages.*.dwconv); cnx reads torchvision or timm "
                           "names (load it into timm's convnext and save that state_dict)")
    if naming is None:
        first = ", ".join(repr(n) for n in names[:3]) or "nothing"
        raise ConvertError(f"not a ConvNeXt state_dict: expected torchvision names (features.0.0.weight, "
                           f"...) or timm names (stem.0.weight, stages.0...), found {first}")
    if naming == convnext_names.TORCHVISION:
        def dw(s, j):
            return f"features.{2 * s + 1}.{j}.block.0.weight"
        fc1 = "features.1.0.block.3.weight"
        head = "classifier.2.weight"
    else:
        def dw(s, j):
            return f"stages.{s}.blocks.{j}.conv_dw.weight"
        fc1 = "stages.0.blocks.0.mlp.fc1.weight"
        head = "head.fc.weight"
    for name, value in state_dict.items():
        if not value.is_floating_point():
            raise ConvertError(f"tensor {name!r} has dtype {value.dtype}; ConvNeXt parameters are "
                               f"floating point")
    depths, widths = [], []
    while dw(len(depths), 0) in state_dict:
        s = len(depths)
        d = 0
        while dw(s, d) in state_dict:
            d += 1
        shape = tuple(state_dict[dw(s, 0)].shape)
        if len(shape) != 4 or shape[1:] != (1, 7, 7):
            raise ConvertError(f"tensor {dw(s, 0)!r} has shape {list(shape)}; a ConvNeXt depthwise "
                               f"conv is [C, 1, 7, 7]")
        depths.append(d)
        widths.append(shape[0])
    if not depths:
        raise ConvertError(f"not a ConvNeXt state_dict in {naming} naming: no {dw(0, 0)!r}")
    if len(depths) > 4:
        raise ConvertError(f"has {len(depths)} stages; cnx handles ConvNeXts of up to 4")
    if head not in state_dict or state_dict[head].dim() != 2:
        raise ConvertError(f"not a ConvNeXt classifier: no 2-D {head!r} (the head's Linear weight)")
    num_classes = int(state_dict[head].shape[0])
    conv_mlp = naming == convnext_names.TIMM and fc1 in state_dict and state_dict[fc1].dim() == 4
    expected = convnext_names.parameter_shapes(depths, widths, num_classes, naming, conv_mlp)
    expected_names = {n for n, _ in expected}
    missing = [n for n, _ in expected if n not in state_dict]
    extra = [n for n in names if n not in expected_names]
    wrong = [(n, shape) for n, shape in expected
             if n in state_dict and tuple(state_dict[n].shape) != tuple(shape)]

    def some(items):
        return ", ".join(items[:3]) + (f" and {len(items) - 3} more" if len(items) > 3 else "")

    what = (f"a {naming} ConvNeXt with depths {','.join(map(str, depths))}, widths "
            f"{','.join(map(str, widths))}, {num_classes} classes")
    if wrong:
        items = [f"{n} is {list(state_dict[n].shape)}, expected {list(s)}" for n, s in wrong]
        raise ConvertError(f"wrong shapes for {what}: {some(items)}")
    if missing:
        raise ConvertError(f"incomplete: {_count(missing)} of {what} missing: {some(missing)}")
    if extra:
        raise ConvertError(f"{_count(extra)} not part of {what}: {some(extra)}")
    return ModelShape(naming, depths, widths, num_classes, conv_mlp)


def default_preprocess(architecture):
    """(preprocess, fallback): preprocess is a dict with "resize", "crop"
    (ints), "mean", "std" (lists of 3 floats) and "interpolation", from
    torchvision's weights meta for the architecture. For architectures
    torchvision does not ship, convnext_tiny's, with fallback True."""
    import torchvision

    fallback = architecture not in TORCHVISION_WEIGHTS
    enum = getattr(torchvision.models, TORCHVISION_WEIGHTS.get(architecture, "ConvNeXt_Tiny_Weights"))
    t = enum.IMAGENET1K_V1.transforms()
    pre = {
        "resize": int(t.resize_size[0]),
        "crop": int(t.crop_size[0]),
        "mean": [float(v) for v in t.mean],
        "std": [float(v) for v in t.std],
        "interpolation": getattr(t.interpolation, "value", str(t.interpolation)),
    }
    return pre, fallback


def format_floats(values):
    """"0.485,0.456,0.406": shortest round-trip decimals, no spaces."""
    return ",".join(repr(float(v)) for v in values)


def default_source(path):
    """The input file's basename and the start of its SHA-256."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return f"{os.path.basename(path)} sha256:{h.hexdigest()[:12]}"


# The choices beyond torchvision's (cnx_preprocess in include/cnx.h), with the
# value that means torchvision's behaviour; make_metadata records the others.
PREPROCESS_CHOICES = {"crop_mode": "center", "crop_offset": "round", "rescale_factor": None}
INTERPOLATIONS = ("bilinear", "bicubic", "box", "hamming", "lanczos")


def make_metadata(architecture, source, preprocess):
    """The __metadata__ strings cnx reads."""
    metadata = {
        "architecture": architecture,
        "source": source,
        "interpolation": preprocess.get("interpolation", "bilinear"),
        "resize": str(int(preprocess["resize"])),
        "crop": str(int(preprocess["crop"])),
        "mean": format_floats(preprocess["mean"]),
        "std": format_floats(preprocess["std"]),
        "format": "pt",
        "converter": "cnx convert_weights.py",
    }
    for key, default in PREPROCESS_CHOICES.items():
        value = preprocess.get(key, default)
        if value != default:
            metadata[key] = repr(float(value)) if key == "rescale_factor" else value
    return metadata


DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}


def cast_tensors(state_dict, dtype="f32"):
    """A new dict of contiguous CPU tensors in dtype ("f32", "f16", "bf16"),
    same names and shapes. Raises ConvertError on NaN/Inf, or on values too
    large for the dtype."""
    import torch

    target = getattr(torch, DTYPES[dtype])
    out = {}
    for name, t in state_dict.items():
        t = t.detach().to("cpu")
        if not torch.isfinite(t).all():
            raise ConvertError(f"tensor {name!r} holds NaN or Inf values")
        c = t.to(target).contiguous()
        if not torch.isfinite(c).all():
            big = t.abs().max().item()
            raise ConvertError(f"tensor {name!r} does not fit in {dtype} (max |x| = {big:g})")
        if c.data_ptr() == t.data_ptr():
            c = c.clone()
        out[name] = c
    return out


def positive_int(text):
    """argparse type: a positive integer."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return v


def _number(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} must be finite")
    return v


def _fraction(text):
    """argparse type: a crop fraction in (0, 1]."""
    v = _number(text)
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be in (0, 1]")
    return v


def _positive_float(text):
    v = _number(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return v


def _triple(positive):
    def parse(text):
        parts = text.split(",")
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(f"{text!r}: expected three comma-separated numbers r,g,b")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected three comma-separated numbers r,g,b")
        if not all(math.isfinite(v) for v in values):
            raise argparse.ArgumentTypeError(f"{text!r}: values must be finite")
        if positive and not all(v > 0 for v in values):
            raise argparse.ArgumentTypeError(f"{text!r}: std values must be positive")
        return values
    return parse


def build_parser():
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Convert a PyTorch ConvNeXt checkpoint into a safetensors file for cnx. INPUT "
                    "is a timm or Hugging Face checkpoint folder holding pytorch_model.bin "
                    "(then OUTPUT is a folder: model.safetensors plus the config files, which "
                    "keep the preprocessing and class names), or a .pth holding a state_dict, "
                    "or a checkpoint dict holding one under "
                    f"{', '.join(repr(k) for k in CHECKPOINT_KEYS)}; 'module.'/'model.' prefixes "
                    "are removed. Tensor names may follow torchvision (features.0.0.weight, ...) or "
                    "timm (stem.0.weight, stages.N...) and are kept as they are. The depths, widths "
                    "and class count are read from the shapes; anything that is not part of a "
                    "ConvNeXt is an error. The preprocessing (resize, crop, mean, std) is recorded "
                    "in the file's metadata: by default torchvision's for the architecture, or "
                    "convnext_tiny's for sizes torchvision does not ship.",
        epilog=".pth files are Python pickles: loading one can run code, so convert only files "
               "you trust. Exit status: 0 on success, 2 on any error.")
    p.add_argument("input", metavar="INPUT.pth|FOLDER",
                   help="PyTorch state_dict or checkpoint, or a timm / Hugging Face checkpoint "
                        "folder")
    p.add_argument("output", metavar="OUTPUT.safetensors|FOLDER",
                   help="file to write (replaced if it exists); a folder for a folder INPUT")
    p.add_argument("--arch", metavar="NAME",
                   help="architecture name to record, instead of the one inferred from the shapes "
                        "(convnext_tiny, ..., or 'convnext' for unnamed shapes); also selects the "
                        "default preprocessing")
    p.add_argument("--resize", metavar="N", type=positive_int,
                   help="side to resize to: the short side (crop mode center), both sides "
                        "(squash) or the long side (border) (default: torchvision's, e.g. 236 "
                        "for tiny)")
    p.add_argument("--crop-pct", metavar="P", type=_fraction,
                   help="resize to floor(crop / P) instead, as timm and Hugging Face do")
    p.add_argument("--crop", metavar="N", type=positive_int, help="center crop side (default: 224)")
    p.add_argument("--interpolation", choices=INTERPOLATIONS,
                   help="Pillow filter of the resize (default: bilinear, torchvision's)")
    p.add_argument("--crop-mode", choices=("center", "squash", "border"),
                   help="timm's crop_mode (default: center)")
    p.add_argument("--crop-offset", choices=("round", "floor"),
                   help="odd crop margins: round half to even (torchvision, timm; the default) "
                        "or floor (Hugging Face)")
    p.add_argument("--rescale-factor", metavar="F", type=_positive_float,
                   help="scale pixels by F in float64, as Hugging Face does (default: /255 in "
                        "float32, as torchvision)")
    p.add_argument("--mean", metavar="r,g,b", type=_triple(False),
                   help="per-channel mean in [0,1] units (default: 0.485,0.456,0.406)")
    p.add_argument("--std", metavar="r,g,b", type=_triple(True),
                   help="per-channel std in [0,1] units (default: 0.229,0.224,0.225)")
    p.add_argument("--source", metavar="TEXT",
                   help="where the weights came from (default: INPUT's basename and SHA-256 prefix)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="f32",
                   help="dtype of the stored tensors (default: f32)")
    return p


# A timm or transformers checkpoint folder: the config files cnx reads beside
# the weights (weights/checkpoint_config.c), and the pickle they hold.
CONFIG_FILES = ("config.json", "preprocessor_config.json")
PICKLED_WEIGHTS = "pytorch_model.bin"


def checkpoint_folder(path):
    """The folder when path is a checkpoint folder (or the pickle inside one,
    beside its config.json), else None."""
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path) or (os.path.basename(path) == PICKLED_WEIGHTS and
                               os.path.isfile(os.path.join(folder, "config.json"))):
        return folder
    return None


def flag_metadata(args):
    """The preprocessing the flags set, as metadata strings; in a folder's
    file they take precedence over its config files, which keep the rest."""
    values = {"resize": args.resize, "crop": args.crop, "interpolation": args.interpolation,
              "crop_mode": args.crop_mode, "crop_offset": args.crop_offset}
    metadata = {k: str(v) for k, v in values.items() if v is not None}
    for key, triple in (("mean", args.mean), ("std", args.std)):
        if triple is not None:
            metadata[key] = format_floats(triple)
    if args.rescale_factor is not None:
        metadata["rescale_factor"] = repr(float(args.rescale_factor))
    if args.crop_pct is not None:
        raise ConvertError("--crop-pct needs the crop, which a folder's config holds: give "
                           "--resize instead")
    return metadata


def convert_folder(args, folder, log):
    """A checkpoint folder holding pytorch_model.bin to a folder cnx reads as
    it is: OUTPUT/model.safetensors (the tensors as they are named) and the
    config files, copied. The preprocessing stays in those files, so one
    reader (cnx's) interprets them; cnx checks the tensors against them when
    it loads the folder."""
    import shutil

    weights = os.path.join(folder, PICKLED_WEIGHTS)
    if not os.path.isfile(weights):
        raise ConvertError(f"{folder}: no {PICKLED_WEIGHTS} to convert"
                           + (" (its model.safetensors needs no conversion: give cnx the folder)"
                              if os.path.isfile(os.path.join(folder, "model.safetensors")) else ""))
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise ConvertError(f"{args.output}: a checkpoint folder converts into a folder, and this "
                           f"is a file")
    if os.path.abspath(args.output) == os.path.abspath(folder):
        raise ConvertError(f"{args.output}: OUTPUT is the input folder")
    raw, key = load_checkpoint(weights)
    if key is not None:
        log(f"using the state_dict under checkpoint key {key!r}")
    tensors = cast_tensors(raw, args.dtype)
    metadata = {"source": args.source if args.source is not None else default_source(weights),
                "format": "pt", "converter": "cnx convert_weights.py", **flag_metadata(args)}
    os.makedirs(args.output, exist_ok=True)
    copied = []
    for name in CONFIG_FILES:
        if os.path.isfile(os.path.join(folder, name)):
            shutil.copyfile(os.path.join(folder, name), os.path.join(args.output, name))
            copied.append(name)
    out = os.path.join(args.output, "model.safetensors")
    tmp = f"{out}.tmp{os.getpid()}"
    try:
        safetensors_io.write(tmp, tensors, metadata)
        os.replace(tmp, out)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise ConvertError(f"{out}: {e.strerror or e}")
    params = sum(t.numel() for t in tensors.values())
    return (f"wrote {out} ({len(tensors)} tensors, {params} parameters, {args.dtype}) and "
            f"{', '.join(copied) or 'no config files'}")


def convert(args, log=None):
    """Runs the conversion for parsed args; returns a one-line summary."""
    if log is None:
        def log(msg):
            print(f"{PROG}: {msg}", file=sys.stderr)
    folder = checkpoint_folder(args.input)
    if folder is not None:
        return convert_folder(args, folder, log)
    if os.path.exists(args.output) and os.path.exists(args.input) and \
            os.path.samefile(args.input, args.output):
        raise ConvertError(f"{args.output}: OUTPUT is the same file as INPUT")
    if args.arch is not None and not (0 < len(args.arch.encode()) <= MAX_ARCH_BYTES):
        raise ConvertError(f"--arch must be 1 to {MAX_ARCH_BYTES} bytes")
    if args.source is not None and len(args.source.encode()) > MAX_SOURCE_BYTES:
        raise ConvertError(f"--source is over {MAX_SOURCE_BYTES} bytes")
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise ConvertError(f"{args.output}: folder {out_dir} does not exist")

    raw, key = load_checkpoint(args.input)
    if key is not None:
        log(f"using the state_dict under checkpoint key {key!r}")
    state_dict, stripped = strip_prefixes(raw)
    if stripped:
        log(f"removed the {' and '.join(repr(p) for p in sorted(stripped))} name prefix")
    try:
        shape = describe(state_dict)
    except ConvertError as e:
        raise ConvertError(f"{args.input}: {e}")
    architecture = args.arch or shape.architecture
    pre, fallback = default_preprocess(architecture)
    if args.resize is not None and args.crop_pct is not None:
        raise ConvertError("--resize and --crop-pct both set the resize; give one")
    overrides = {"resize": args.resize, "crop": args.crop, "mean": args.mean, "std": args.std}
    if fallback and any(v is None for v in overrides.values()):
        unset = [k for k, v in overrides.items() if v is None]
        log(f"note: torchvision has no preprocessing for {architecture!r}; using convnext_tiny's "
            f"for {', '.join(unset)} (resize {pre['resize']}, crop {pre['crop']}, ImageNet mean/std); "
            f"set --resize/--crop/--mean/--std to change it")
    for k, v in overrides.items():
        if v is not None:
            pre[k] = v
    if args.crop_pct is not None:
        pre["resize"] = math.floor(pre["crop"] / args.crop_pct)  # timm's and HF's rule
    choices = {"interpolation": args.interpolation, "crop_mode": args.crop_mode,
               "crop_offset": args.crop_offset, "rescale_factor": args.rescale_factor}
    pre.update({k: v for k, v in choices.items() if v is not None})
    source = args.source if args.source is not None else default_source(args.input)
    if len(source.encode()) > MAX_SOURCE_BYTES:
        source = source.encode()[:MAX_SOURCE_BYTES].decode("utf-8", "ignore")
    try:
        tensors = cast_tensors(state_dict, args.dtype)
    except ConvertError as e:
        raise ConvertError(f"{args.input}: {e}")
    metadata = make_metadata(architecture, source, pre)
    tmp = f"{args.output}.tmp{os.getpid()}"
    try:
        safetensors_io.write(tmp, tensors, metadata)
        os.replace(tmp, args.output)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ConvertError(f"{args.output}: {e.strerror or e}")
    params = sum(t.numel() for t in tensors.values())
    return (f"wrote {args.output}: {architecture} ({shape.naming} names), depths "
            f"{','.join(map(str, shape.depths))}, widths {','.join(map(str, shape.widths))}, "
            f"{shape.num_classes} classes, {params} parameters, {args.dtype}, resize {pre['resize']} "
            f"crop {pre['crop']}")


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        print(convert(args))
    except ConvertError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
