#!/usr/bin/python3
"""Seeds for fuzz_safetensors: tiny valid ConvNeXt files (depths 1,1,1,1,
widths 4..32, 3 classes) in both naming schemes and all three dtypes, so the
fuzzer starts from inputs that reach the whole loader."""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import convnext_names  # noqa: E402
import safetensors_io  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="folder for the seed files")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    metadata = {"resize": "40", "crop": "32", "mean": "0.5,0.5,0.5", "std": "0.25,0.25,0.25"}
    for naming in (convnext_names.TORCHVISION, convnext_names.TIMM):
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            shapes = convnext_names.parameter_shapes((1, 1, 1, 1), (4, 8, 16, 32), 3, naming)
            tensors = {name: torch.randn(shape, generator=generator).to(dtype) for name, shape in shapes}
            name = f"{naming}_{str(dtype).split('.')[-1]}.safetensors"
            safetensors_io.write(os.path.join(args.out, name), tensors, metadata)


if __name__ == "__main__":
    main()
