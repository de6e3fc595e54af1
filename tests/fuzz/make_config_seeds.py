#!/usr/bin/python3
"""Seeds for fuzz_checkpoint_config: timm and Hugging Face config files as
the libraries write them (first byte 0: config.json; 1:
preprocessor_config.json), plus a few near misses."""
import argparse
import json
import os

TIMM = {"architecture": "convnextv2_atto", "num_classes": 7, "num_features": 320,
        "label_names": ["a", "b", "c", "d", "e", "f", "g"],
        "pretrained_cfg": {"input_size": [3, 224, 224], "test_input_size": [3, 288, 288],
                           "interpolation": "bicubic", "crop_pct": 0.875, "test_crop_pct": 0.95,
                           "crop_mode": "center", "mean": [0.485, 0.456, 0.406],
                           "std": [0.229, 0.224, 0.225], "num_classes": 7}}
HF = {"model_type": "convnextv2", "depths": [2, 2, 6, 2], "hidden_sizes": [40, 80, 160, 320],
      "layer_norm_eps": 1e-12, "hidden_act": "gelu", "id2label": {"0": "cat", "1": "dog"}}
PROCESSOR = {"crop_pct": 0.875, "do_normalize": True, "do_rescale": True, "do_resize": True,
             "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
             "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 224}}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    out = parser.parse_args().out
    os.makedirs(out, exist_ok=True)
    # where the fuzzer keeps what it finds (tests/fuzz/CMakeLists.txt)
    os.makedirs(os.path.join(os.path.dirname(os.path.abspath(out)), "found_config"),
                exist_ok=True)
    seeds = {
        "timm": (0, json.dumps(TIMM)),
        "timm_border": (0, json.dumps({**TIMM, "pretrained_cfg": {
            **TIMM["pretrained_cfg"], "crop_mode": "border"}})),
        "hf": (0, json.dumps(HF)),
        "hf_v1_flat": (0, json.dumps({**HF, "model_type": "convnext"})),
        "processor": (1, json.dumps(PROCESSOR)),
        "processor_384": (1, json.dumps({**PROCESSOR, "size": {"shortest_edge": 384}})),
        "processor_old_size": (1, json.dumps({**PROCESSOR, "size": 224, "image_mean": 0.5})),
        "truncated": (0, json.dumps(TIMM)[:60]),
    }
    for name, (selector, text) in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([selector]) + text.encode())


if __name__ == "__main__":
    main()
