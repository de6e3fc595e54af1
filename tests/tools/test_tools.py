#!/usr/bin/python3
"""Tests of the Python tools: safetensors_io, convnext_names, convert_weights.py,
make_reference.py and gen_imagenet_labels.py.

Run: /usr/bin/python3 -m unittest -v tests/tools/test_tools.py
"""

import contextlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "tools")
sys.path.insert(0, TOOLS)

import convert_weights  # noqa: E402
import convnext_names  # noqa: E402
import gen_imagenet_labels  # noqa: E402
import make_reference  # noqa: E402
import safetensors_io  # noqa: E402

REFERENCE_FILES = [
    "model_torchvision.safetensors", "model_timm.safetensors", "model_f16.safetensors",
    "model_bf16.safetensors", "model.pth", "input.npy", "logits.npy", "logits_f16.npy",
    "logits_bf16.npy", "manifest.json",
]


def run_tool(script, *args):
    """(returncode, stdout, stderr) of a tool run as a separate process."""
    p = subprocess.run([sys.executable, os.path.join(TOOLS, script), *map(str, args)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def convert(*args):
    """convert_weights.main in this process: (exit status, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = convert_weights.main([str(a) for a in args])
        except SystemExit as e:  # argparse
            rc = e.code
    return rc, err.getvalue()


def make_reference_in(tmp, name, config="small", seed=7, batch=2):
    out = os.path.join(tmp, name)
    rc, _, err = run_tool("make_reference.py", "--config", config, "--seed", seed,
                          "--batch", batch, "--out", out)
    if rc != 0:
        raise AssertionError(f"make_reference.py failed: {err}")
    return out


class Fixture(unittest.TestCase):
    """One temporary folder with two small references made with the same seed."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="cnx-tools-test-")
        cls.ref = make_reference_in(cls.tmp, "ref_a")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def state_dict(self):
        return torch.load(os.path.join(self.ref, "model.pth"), map_location="cpu")


class TestSafetensorsIO(unittest.TestCase):
    def test_round_trip_dtypes(self):
        g = torch.Generator().manual_seed(0)
        tensors = {
            "a": torch.randn(3, 4, generator=g),
            "b": torch.randn(5, generator=g).half(),
            "c": torch.randn(2, 3, generator=g).bfloat16(),
            "d": torch.randn(4, 4, generator=g).t(),  # not contiguous
            "e": torch.zeros(0, 3),
        }
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x.safetensors")
            safetensors_io.write(path, tensors, {"k": "v"})
            with open(path, "rb") as f:
                n = struct.unpack("<Q", f.read(8))[0]
                header = json.loads(f.read(n))
            self.assertEqual((8 + n) % 8, 0)
            self.assertEqual(header["__metadata__"], {"k": "v"})
            self.assertEqual(header["c"]["dtype"], "BF16")
            self.assertEqual(header["b"]["dtype"], "F16")
            back, meta = safetensors_io.read(path)
            self.assertEqual(meta, {"k": "v"})
            self.assertEqual(list(back), list(tensors))
            for k, t in tensors.items():
                self.assertEqual(back[k].dtype, t.dtype, k)
                self.assertTrue(torch.equal(back[k], t), k)
            arrays, _ = safetensors_io.read(path, framework="numpy")
            np.testing.assert_array_equal(arrays["c"], tensors["c"].float().numpy())

    def test_rejects_bad_files(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bad.safetensors")

            def write_raw(header, data=b""):
                text = json.dumps(header).encode()
                with open(path, "wb") as f:
                    f.write(struct.pack("<Q", len(text)) + text + data)

            write_raw({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4)
            with self.assertRaisesRegex(safetensors_io.SafetensorsError, "outside"):
                safetensors_io.read(path)
            write_raw({"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8)
            with self.assertRaisesRegex(safetensors_io.SafetensorsError, "needs 12 bytes"):
                safetensors_io.read(path)
            write_raw({"t": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8)
            with self.assertRaisesRegex(safetensors_io.SafetensorsError, "dtype"):
                safetensors_io.read(path)
            with open(path, "wb") as f:
                f.write(struct.pack("<Q", 1 << 40))
            with self.assertRaisesRegex(safetensors_io.SafetensorsError, "header length"):
                safetensors_io.read(path)


class TestNames(unittest.TestCase):
    def test_mapping_round_trip(self):
        depths, widths = (2, 1, 3, 1), (8, 16, 32, 64)
        tv = convnext_names.parameter_shapes(depths, widths, 5)
        timm = convnext_names.parameter_shapes(depths, widths, 5, convnext_names.TIMM)
        self.assertEqual(len(tv), len(timm))
        by_name = dict(timm)
        for name, shape in tv:
            new = convnext_names.torchvision_to_timm(name)
            self.assertIn(new, by_name)
            self.assertEqual(convnext_names.timm_to_torchvision(new), name)
            expect = (shape[0],) if new.endswith(".gamma") else shape
            self.assertEqual(by_name[new], expect)
        self.assertEqual(convnext_names.torchvision_to_timm("features.2.1.weight"),
                         "stages.1.downsample.1.weight")
        self.assertEqual(convnext_names.torchvision_to_timm("features.5.1.block.3.bias"),
                         "stages.2.blocks.1.mlp.fc1.bias")
        self.assertEqual(convnext_names.torchvision_to_timm("classifier.2.weight"), "head.fc.weight")
        self.assertIsNone(convnext_names.torchvision_to_timm("features.2.0.layer_scale"))
        self.assertIsNone(convnext_names.timm_to_torchvision("stages.0.downsample.0.weight"))

    def test_matches_torchvision_state_dict(self):
        model = make_reference.build_model("small")
        expected = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
        got = convnext_names.parameter_shapes((1, 1, 2, 1), (16, 32, 64, 128), 10)
        self.assertEqual(got, expected)


class TestConvertWeights(Fixture):
    def test_round_trip_and_metadata(self):
        pth = os.path.join(self.ref, "model.pth")
        out = self.path("rt.safetensors")
        rc, err = convert(pth, out)
        self.assertEqual(rc, 0, err)
        self.assertIn("convnext_tiny's", err)  # the unnamed small shape falls back, and says so
        tensors, meta = safetensors_io.read(out)
        sd = self.state_dict()
        self.assertEqual(list(tensors), list(sd))
        for k, v in sd.items():
            self.assertEqual(tensors[k].dtype, torch.float32)
            self.assertTrue(torch.equal(tensors[k], v), k)
        self.assertRegex(meta.pop("source"), r"^model\.pth sha256:[0-9a-f]{12}$")
        self.assertEqual(meta, {
            "architecture": "convnext", "interpolation": "bilinear", "resize": "236",
            "crop": "224", "mean": "0.485,0.456,0.406", "std": "0.229,0.224,0.225",
            "format": "pt", "converter": "cnx convert_weights.py"})

    def test_torchvision_defaults_per_variant(self):
        for arch, resize in (("convnext_small", "230"), ("convnext_base", "232"),
                             ("convnext_tiny", "236")):
            out = self.path(f"{arch}.safetensors")
            rc, err = convert(os.path.join(self.ref, "model.pth"), out, "--arch", arch)
            self.assertEqual(rc, 0, err)
            self.assertNotIn("note", err)
            _, meta = safetensors_io.read_header(out)
            self.assertEqual((meta["architecture"], meta["resize"], meta["crop"]),
                             (arch, resize, "224"))

    def test_overrides_and_dtypes(self):
        sd = self.state_dict()
        for dtype, torch_dtype in (("f16", torch.float16), ("bf16", torch.bfloat16)):
            out = self.path(f"ov_{dtype}.safetensors")
            rc, err = convert(os.path.join(self.ref, "model.pth"), out, "--resize", 256,
                              "--crop", 240, "--mean", "0.5,0.25,0.125", "--std", "1,2,3",
                              "--source", "fine-tuned on pets", "--arch", "convnext_pets",
                              "--dtype", dtype)
            self.assertEqual(rc, 0, err)
            self.assertNotIn("note", err)
            tensors, meta = safetensors_io.read(out)
            self.assertEqual(meta["resize"], "256")
            self.assertEqual(meta["crop"], "240")
            self.assertEqual(meta["mean"], "0.5,0.25,0.125")
            self.assertEqual(meta["std"], "1.0,2.0,3.0")
            self.assertEqual(meta["source"], "fine-tuned on pets")
            self.assertEqual(meta["architecture"], "convnext_pets")
            for k, v in sd.items():
                self.assertEqual(tensors[k].dtype, torch_dtype)
                self.assertTrue(torch.equal(tensors[k], v.to(torch_dtype)), k)

    def test_checkpoint_dict_and_prefix(self):
        sd = self.state_dict()
        pth = self.path("checkpoint.pth")
        torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in sd.items()},
                    "optimizer": {"lr": 0.1}}, pth)
        out = self.path("checkpoint.safetensors")
        rc, err = convert(pth, out)
        self.assertEqual(rc, 0, err)
        self.assertIn("'state_dict'", err)
        self.assertIn("'module.'", err)
        tensors, _ = safetensors_io.read(out)
        self.assertEqual(list(tensors), list(sd))

    def test_timm_names(self):
        sd = convnext_names.rename_state_dict(self.state_dict(), convnext_names.TIMM)
        pth = self.path("timm.pth")
        torch.save({"model": sd}, pth)
        out = self.path("timm.safetensors")
        rc, err = convert(pth, out)
        self.assertEqual(rc, 0, err)
        self.assertIn("'model'", err)
        tensors, _ = safetensors_io.read(out)
        self.assertEqual(set(tensors), set(sd))
        self.assertEqual(tuple(tensors["stages.0.blocks.0.gamma"].shape), (16,))

    def test_refuses_non_convnext(self):
        pth = self.path("resnetish.pth")
        torch.save({"conv1.weight": torch.zeros(8, 3, 7, 7), "fc.weight": torch.zeros(10, 8)}, pth)
        out = self.path("refused.safetensors")
        rc, _, err = run_tool("convert_weights.py", pth, out)
        self.assertEqual(rc, 2)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("not a ConvNeXt", err)
        self.assertNotIn("Traceback", err)
        self.assertFalse(os.path.exists(out))

    def test_refuses_extra_missing_and_odd_entries(self):
        sd = self.state_dict()
        cases = {
            "extra": dict(sd, **{"features.1.0.extra": torch.zeros(3)}),
            "missing": {k: v for k, v in sd.items() if k != "features.5.1.block.3.bias"},
            "shape": dict(sd, **{"features.0.1.weight": torch.zeros(5)}),
            "non-tensor": dict(sd, **{"step": 3}),
            "nan": dict(sd, **{"classifier.2.bias": torch.full((10,), float("nan"))}),
        }
        expect = {"extra": "not part of", "missing": "missing", "shape": "wrong shapes",
                  "non-tensor": "not a tensor", "nan": "NaN"}
        for name, bad in cases.items():
            pth = self.path(f"bad_{name}.pth")
            torch.save(bad, pth)
            rc, err = convert(pth, self.path("bad.safetensors"))
            self.assertEqual(rc, 2, name)
            self.assertIn(expect[name], err, name)
        self.assertFalse(os.path.exists(self.path("bad.safetensors")))
        rc, err = convert(self.path("no_such.pth"), self.path("x.safetensors"))
        self.assertEqual((rc, "no such file" in err), (2, True))
        rc, err = convert(os.path.join(self.ref, "model.pth"), self.path("x.safetensors"),
                          "--mean", "1,2")
        self.assertEqual(rc, 2)

    def test_f16_overflow_refused(self):
        sd = self.state_dict()
        sd["classifier.2.bias"] = torch.full((10,), 1e6)
        pth = self.path("big.pth")
        torch.save(sd, pth)
        rc, err = convert(pth, self.path("big.safetensors"), "--dtype", "f16")
        self.assertEqual(rc, 2)
        self.assertIn("does not fit in f16", err)


class TestMakeReference(Fixture):
    def test_files_and_determinism(self):
        again = make_reference_in(self.tmp, "ref_b")
        self.assertEqual(sorted(os.listdir(self.ref)), sorted(REFERENCE_FILES))
        for name in REFERENCE_FILES:
            with open(os.path.join(self.ref, name), "rb") as a, \
                    open(os.path.join(again, name), "rb") as b:
                self.assertTrue(a.read() == b.read(), f"{name} differs between two runs")
        other = make_reference_in(self.tmp, "ref_seed8", seed=8)
        self.assertFalse(np.array_equal(np.load(os.path.join(self.ref, "logits.npy")),
                                        np.load(os.path.join(other, "logits.npy"))))

    def test_timm_equals_torchvision(self):
        tv, tv_meta = safetensors_io.read(os.path.join(self.ref, "model_torchvision.safetensors"))
        timm, timm_meta = safetensors_io.read(os.path.join(self.ref, "model_timm.safetensors"))
        self.assertEqual(tv_meta, timm_meta)
        self.assertEqual(len(tv), len(timm))
        back = convnext_names.rename_state_dict(timm, convnext_names.TORCHVISION)
        self.assertEqual(set(back), set(tv))
        for k, v in tv.items():
            self.assertTrue(torch.equal(back[k], v), k)
        gamma = timm["stages.2.blocks.1.gamma"]
        self.assertEqual(tuple(gamma.shape), (64,))
        self.assertTrue(torch.equal(gamma, tv["features.5.1.layer_scale"].reshape(-1)))

    def test_logits_match_torch(self):
        x = torch.from_numpy(np.load(os.path.join(self.ref, "input.npy")))
        self.assertEqual(tuple(x.shape), (2, 3, 64, 64))
        model = make_reference.build_model("small")
        tv, meta = safetensors_io.read(os.path.join(self.ref, "model_torchvision.safetensors"))
        self.assertEqual(meta["crop"], "64")
        self.assertEqual(meta["converter"], "cnx convert_weights.py")
        sd = self.state_dict()
        for k, v in sd.items():
            self.assertTrue(torch.equal(tv[k], v), k)
        for suffix in ("", "_f16", "_bf16"):
            weights = tv if not suffix else safetensors_io.read(
                os.path.join(self.ref, f"model{suffix}.safetensors"))[0]
            model.load_state_dict({k: v.float() for k, v in weights.items()})
            with torch.no_grad():
                want = model(x).numpy()
            got = np.load(os.path.join(self.ref, f"logits{suffix}.npy"))
            self.assertEqual(got.dtype, np.float32)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
        logits = np.load(os.path.join(self.ref, "logits.npy"))
        self.assertGreater(np.abs(logits).max(), 1.0)
        self.assertLess(np.abs(logits).max(), 50.0)
        self.assertGreater(np.abs(logits[0] - logits[1]).max(), 0.1)  # images differ
        f16 = np.load(os.path.join(self.ref, "logits_f16.npy"))
        self.assertFalse(np.array_equal(f16, logits))  # the rounding is visible

    def test_every_parameter_randomized(self):
        sd = self.state_dict()
        for k, v in sd.items():
            self.assertGreater(v.std().item() if v.numel() > 1 else abs(v.item()), 1e-3, k)
            if k.endswith("layer_scale"):  # log-uniform over 1e-6..1
                self.assertGreaterEqual(v.min().item(), 1e-6, k)
                self.assertLessEqual(v.max().item(), 1.0, k)
        scales = torch.cat([v.reshape(-1) for k, v in sd.items() if k.endswith("layer_scale")])
        self.assertLess(abs(scales.log10().mean().item() + 3.0), 0.5)
        with open(os.path.join(self.ref, "manifest.json")) as f:
            manifest = json.load(f)
        self.assertEqual((manifest["config"], manifest["seed"], manifest["num_classes"]),
                         ("small", 7, 10))
        self.assertEqual(manifest["files"]["logits.npy"]["shape"], [2, 10])

    def test_classes37_and_errors(self):
        out = make_reference_in(self.tmp, "ref37", config="classes37", batch=1)
        self.assertEqual(np.load(os.path.join(out, "logits.npy")).shape, (1, 37))
        tv, _ = safetensors_io.read(os.path.join(out, "model_torchvision.safetensors"))
        self.assertEqual(tuple(tv["classifier.2.weight"].shape), (37, 128))
        rc, _, err = run_tool("make_reference.py", "--config", "huge", "--seed", 1, "--batch", 1,
                              "--out", self.path("x"))
        self.assertEqual(rc, 2)
        self.assertNotIn("Traceback", err)


class TestImagenetLabels(unittest.TestCase):
    def test_data_file_is_current(self):
        path = os.path.join(ROOT, "host", "engine", "imagenet_labels.txt")
        rc = gen_imagenet_labels.main(["--check", "-o", path])
        self.assertEqual(rc, 0, "host/engine/imagenet_labels.txt is stale: rerun tools/gen_imagenet_labels.py")

    def test_unwritable_names_are_refused(self):
        for bad in ["", "two\nlines", "cr\r"]:
            with self.assertRaises(ValueError):
                gen_imagenet_labels.generate(["ok", bad])

    def test_embedded_lines_read_back_as_c_strings(self):
        """cmake/embed_lines.cmake on names that C, CMake lists and trigraphs
        would misread, compiled and read back byte for byte."""
        names = ['a"b\\c', "??=trigraph", "semi;colon", "[bracket]", "caf\u00e9", "${VAR}", "last"]
        with tempfile.TemporaryDirectory() as tmp:
            text = os.path.join(tmp, "names.txt")
            with open(text, "w", encoding="utf-8", newline="") as f:
                f.write(gen_imagenet_labels.generate(names))
            source = os.path.join(tmp, "names.c")
            subprocess.run(["cmake", f"-DINPUT={text}", f"-DOUTPUT={source}", "-DNAME=names",
                            "-P", os.path.join(ROOT, "cmake", "embed_lines.cmake")], check=True)
            main = os.path.join(tmp, "main.c")
            with open(main, "w") as f:
                f.write("#include <stdio.h>\n"
                        "extern const char names[]; extern const unsigned long names_size;\n"
                        "int main(void) { fwrite(names, 1, names_size, stdout); return 0; }\n")
            exe = os.path.join(tmp, "names")
            subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-o", exe, main, source], check=True)
            out = subprocess.run([exe], check=True, capture_output=True).stdout
        self.assertEqual(out.split(b"\0")[:-1], [n.encode("utf-8") for n in names])

    def test_embedding_refuses_a_text_without_final_newline(self):
        with tempfile.TemporaryDirectory() as tmp:
            text = os.path.join(tmp, "names.txt")
            with open(text, "w") as f:
                f.write("no newline")
            r = subprocess.run(["cmake", f"-DINPUT={text}", f"-DOUTPUT={tmp}/x.c", "-DNAME=x",
                                "-P", os.path.join(ROOT, "cmake", "embed_lines.cmake")],
                               capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("each ending in a newline", r.stderr)


if __name__ == "__main__":
    unittest.main()
