#!/usr/bin/python3
"""Build a seeded random ConvNeXt with torchvision and write reference data
(weights in every format cnx reads, an input batch, and torch's logits) for
the C tests. See --help for the files written."""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_weights  # noqa: E402  (torch-free at import time)

PROG = "make_reference.py"

# depths, widths, classes, default input side
CONFIGS = {
    "small": ((1, 1, 2, 1), (16, 32, 64, 128), 10, 64),
    "classes37": ((1, 1, 2, 1), (16, 32, 64, 128), 37, 64),
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768), 1000, 224),
}

FILES = """files written to DIR:
  model_torchvision.safetensors  fp32, torchvision names, with cnx metadata
  model_timm.safetensors         the same values under timm's names (gamma [C])
  model_f16.safetensors          torchvision names, tensors stored as F16
  model_bf16.safetensors         torchvision names, tensors stored as BF16
  model.pth                      the fp32 state_dict, torch.save'd (for convert_weights.py)
  input.npy                      float32 [N,3,S,S], the input batch
  logits.npy                     float32 [N,classes], torch fp32 forward of input.npy
  logits_f16.npy                 the same with the weights rounded to f16 (computed in fp32)
  logits_bf16.npy                the same with the weights rounded to bf16 (computed in fp32)
  manifest.json                  config, seed, shapes, preprocessing, versions"""


def build_model(config):
    """A torchvision ConvNeXt of this config, in eval mode, stochastic depth off."""
    import torchvision
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    depths, widths, classes, _ = CONFIGS[config]
    if config == "tiny":
        model = torchvision.models.convnext_tiny(weights=None, stochastic_depth_prob=0.0)
    else:
        setting = [CNBlockConfig(w, widths[i + 1] if i + 1 < len(widths) else None, d)
                   for i, (d, w) in enumerate(zip(depths, widths))]
        model = ConvNeXt(setting, stochastic_depth_prob=0.0, num_classes=classes)
    return model.eval()


def randomize(model, generator):
    """Gives every parameter a seeded random value, scaled so that activations
    stay O(1): conv and Linear weights ~ N(0, 1/fan_in), biases ~ 0.1 N(0,1),
    LayerNorm gains 1 + 0.1 N(0,1) and biases 0.1 N(0,1), layer scale
    log-uniform over 1e-6..1 per channel (as trained checkpoints spread it;
    the channels near 1 keep every block in the logits), and the head a
    little larger so that logits spread over a few units."""
    import torch
    from torchvision.models.convnext import CNBlock

    def randn(shape):
        return torch.randn(shape, generator=generator, dtype=torch.float32)

    done = set()
    with torch.no_grad():
        head = model.classifier[2]
        for module in model.modules():
            for name, p in module.named_parameters(recurse=False):
                if isinstance(module, torch.nn.LayerNorm):
                    value = 1 + 0.1 * randn(p.shape) if name == "weight" else 0.1 * randn(p.shape)
                elif isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                    if name == "weight":
                        fan_in = p[0].numel()
                        gain = 3.0 if module is head else 1.0
                        value = randn(p.shape) * (gain / fan_in ** 0.5)
                    else:
                        value = 0.1 * randn(p.shape)
                elif isinstance(module, CNBlock) and name == "layer_scale":
                    value = 10.0 ** (-6.0 * torch.rand(p.shape, generator=generator))
                else:
                    raise RuntimeError(f"no rule to randomize {type(module).__name__}.{name}")
                p.copy_(value)
                done.add(id(p))
    missed = [n for n, p in model.named_parameters() if id(p) not in done]
    if missed:
        raise RuntimeError(f"parameters left unrandomized: {missed}")


def make_input(batch, size, generator):
    """float32 [batch,3,size,size]: standard normal noise with a per-image
    scale, per-image-and-channel offsets, and a smooth random field, so that
    images differ in more than noise (global pooling would average plain
    noise away and leave every image with nearly the same logits)."""
    import torch
    import torch.nn.functional as F

    noise = torch.randn((batch, 3, size, size), generator=generator)
    scale = 0.5 + torch.rand((batch, 1, 1, 1), generator=generator)
    offset = 0.5 * torch.randn((batch, 3, 1, 1), generator=generator)
    coarse = torch.randn((batch, 3, 4, 4), generator=generator)
    field = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return (noise * scale + offset + field).contiguous()


def forward(model, state_dict, x):
    import torch

    model.load_state_dict({k: v.float() for k, v in state_dict.items()})
    with torch.no_grad():
        return model(x).contiguous()


def _seed(text):
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    if not 0 <= v < 2 ** 62:
        raise argparse.ArgumentTypeError(f"{text!r} must be in 0..2^62-1")
    return v


def build_parser():
    p = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build a seeded random ConvNeXt with torchvision (every parameter randomized,\n"
                    "layer scale and LayerNorm included) and write reference data for the C tests.\n"
                    "\nconfigs:\n"
                    "  small      depths 1,1,2,1, widths 16,32,64,128, 10 classes, input 64x64\n"
                    "  classes37  the same with 37 classes (a fine-tuned head)\n"
                    "  tiny       convnext_tiny: depths 3,3,9,3, widths 96..768, 1000 classes, 224x224\n"
                    "The same arguments give the same bytes on the same torch build, machine and\n"
                    "thread count (the logits' last bits depend on the summation order).",
        epilog=FILES + "\n\nThe weights' metadata records crop S and resize round(S*236/224) (236 for\n"
                       "S=224), with ImageNet mean/std. Exit status: 0 on success, 2 on error.")
    p.add_argument("--config", required=True, choices=list(CONFIGS), help="model shape")
    p.add_argument("--seed", required=True, type=_seed, metavar="S", help="random seed (integer)")
    p.add_argument("--batch", required=True, type=convert_weights.positive_int, metavar="N", help="images in input.npy")
    p.add_argument("--size", type=convert_weights.positive_int, metavar="S",
                   help="input height and width, a multiple of 32 (default: 64, or 224 for tiny)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    depths, widths, classes, default_size = CONFIGS[args.config]
    size = args.size or default_size
    if size % 32 != 0:
        print(f"{PROG}: error: --size {size} is not a multiple of 32", file=sys.stderr)
        return 2
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        print(f"{PROG}: error: {args.out}: exists and is not a folder", file=sys.stderr)
        return 2
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        print(f"{PROG}: error: {args.out}: {e.strerror or e}", file=sys.stderr)
        return 2

    import numpy as np
    import torch
    import torchvision

    import convnext_names
    import safetensors_io

    model = build_model(args.config)
    randomize(model, torch.Generator().manual_seed(2 * args.seed))
    x = make_input(args.batch, size, torch.Generator().manual_seed(2 * args.seed + 1))
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}

    shape = convert_weights.describe(state)
    assert shape.depths == depths and shape.widths == widths and shape.num_classes == classes
    architecture = shape.architecture
    pre, _ = convert_weights.default_preprocess("convnext_tiny")
    if architecture in convert_weights.TORCHVISION_WEIGHTS:
        pre, _ = convert_weights.default_preprocess(architecture)
    if size != pre["crop"]:
        pre["resize"] = int(round(size * 236 / 224))
        pre["crop"] = size
    source = f"{PROG} --config {args.config} --seed {args.seed} (random weights)"
    metadata = convert_weights.make_metadata(architecture, source, pre)

    out = args.out
    files = {}

    def path(name):
        return os.path.join(out, name)

    def save_npy(name, tensor):
        a = tensor.detach().numpy().astype(np.float32)
        np.save(path(name), a)
        files[name] = {"dtype": "float32", "shape": list(a.shape)}
        return a

    def save_weights(name, tensors, dtype):
        safetensors_io.write(path(name), tensors, metadata)
        files[name] = {"dtype": dtype, "tensors": len(tensors)}

    try:
        f32 = convert_weights.cast_tensors(state, "f32")
        save_weights("model_torchvision.safetensors", f32, "F32")
        timm = convnext_names.rename_state_dict(f32, convnext_names.TIMM)
        order = [n for n, _ in convnext_names.parameter_shapes(depths, widths, classes,
                                                               convnext_names.TIMM)]
        save_weights("model_timm.safetensors", {n: timm[n] for n in order}, "F32")
        torch.save(f32, path("model.pth"))
        files["model.pth"] = {"dtype": "float32", "tensors": len(f32)}
        save_npy("input.npy", x)
        logits = save_npy("logits.npy", forward(model, f32, x))
        for dtype in ("f16", "bf16"):
            rounded = convert_weights.cast_tensors(state, dtype)
            save_weights(f"model_{dtype}.safetensors", rounded, dtype.upper())
            save_npy(f"logits_{dtype}.npy", forward(model, rounded, x))
    except OSError as e:
        print(f"{PROG}: error: {e.filename or out}: {e.strerror or e}", file=sys.stderr)
        return 2

    manifest = {
        "generator": PROG,
        "config": args.config,
        "seed": args.seed,
        "batch": args.batch,
        "input_shape": [args.batch, 3, size, size],
        "architecture": architecture,
        "depths": list(depths),
        "widths": list(widths),
        "num_classes": classes,
        "num_parameters": int(sum(t.numel() for t in f32.values())),
        "metadata": metadata,
        "files": files,
        "logits_max_abs": float(np.abs(logits).max()),
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
    }
    with open(path("manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    spread = float(logits.std(axis=0).mean()) if args.batch > 1 else 0.0
    print(f"wrote {out}: {args.config} ({architecture}), seed {args.seed}, input "
          f"{args.batch}x3x{size}x{size}, {classes} classes, logits in [{logits.min():.2f}, "
          f"{logits.max():.2f}], mean spread across images {spread:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
