#!/usr/bin/python3
"""cnx's logits against torchvision's for seeded random ConvNeXt models.

For each reference folder made by tools/make_reference.py, runs
`cnx classify --device cpu --dump-logits` on input.npy and requires
max|ours - torch| <= 1e-4 * max|torch|, for every naming scheme and dtype.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

TOLERANCE = 1e-4  # relative to the largest reference logit (docs/design.md 1)


def run_cnx(cnx, weights, inputs, out):
    cmd = [cnx, "classify", "--device", "cpu", "-w", weights, "--json", "-k", "3",
           "--dump-logits", out, inputs]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()}")
    return np.load(out), done.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cnx", required=True)
    parser.add_argument("--reference", required=True, help="folder of make_reference.py outputs")
    args = parser.parse_args()

    cases = []  # (config, weights file, reference logits file)
    for config in ("small", "tiny", "classes37"):
        folder = os.path.join(args.reference, config)
        for weights, logits in (("model_torchvision", "logits"), ("model_timm", "logits"),
                                ("model_f16", "logits_f16"), ("model_bf16", "logits_bf16")):
            if config != "small" and weights in ("model_f16", "model_bf16"):
                continue  # dtype conversion is shape-independent: one config suffices
            cases.append((config, os.path.join(folder, weights + ".safetensors"),
                          os.path.join(folder, logits + ".npy"), os.path.join(folder, "input.npy")))

    passed = failed = 0
    by_config = {}
    with tempfile.TemporaryDirectory() as tmp:
        for config, weights, logits_file, inputs in cases:
            name = f"{config}/{os.path.basename(weights)}"
            try:
                ours, _ = run_cnx(args.cnx, weights, inputs, os.path.join(tmp, "logits.npy"))
                ref = np.load(logits_file)
                assert ours.shape == ref.shape, f"shape {ours.shape} vs {ref.shape}"
                error = float(np.abs(ours - ref).max())
                bound = TOLERANCE * float(np.abs(ref).max())
                assert np.isfinite(ours).all(), "non-finite logits"
                assert error <= bound, f"max error {error:.3g} > bound {bound:.3g}"
                assert (ours.argmax(1) == ref.argmax(1)).all(), "top-1 differs"
                by_config.setdefault(config, {})[os.path.basename(weights)] = ours
                print(f"PASS {name}: max|ours-torch| = {error:.3g} (bound {bound:.3g})")
                passed += 1
            except AssertionError as e:
                print(f"FAIL {name}: {e}")
                failed += 1
    # The same parameters under either naming scheme give the same logits.
    for config, results in by_config.items():
        if "model_torchvision.safetensors" in results and "model_timm.safetensors" in results:
            same = np.array_equal(results["model_torchvision.safetensors"], results["model_timm.safetensors"])
            print(f"{'PASS' if same else 'FAIL'} {config}: timm and torchvision names give identical logits")
            passed += same
            failed += not same
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
