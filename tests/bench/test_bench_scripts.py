#!/usr/bin/python3
"""The Python side of the benchmarks, on the CPU: bench/torch_baseline.py
(JSON schema, weights loading), bench/compare.py (ratios and the docs/design.md
section 8 verdicts, on hand-written inputs) and bench/run.sh --quick --device
cpu end to end (RunShTest; needs $CNX_BENCH_EXE, the cnx-bench binary).

    python3 -m unittest -v test_bench_scripts            (from tests/bench/)
"""

import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BENCH = os.path.join(ROOT, "bench")
PYTHON = os.environ.get("CNX_PYTHON") or sys.executable

ROW_KEYS = {"name", "engine", "precision", "variant", "batch", "warmup", "iterations",
            "throughput", "latency_ms", "gpu_ms", "h2d_ms", "host_ms", "error"}
TOP_KEYS = {"tool", "date", "device", "model", "weights", "input_size", "mode", "command",
            "warnings", "results"}
LATENCY_KEYS = {"min", "mean", "median", "p90", "p95", "p99"}


def run(args, timeout=120, env=None):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


def check_schema(test, obj, tool):
    test.assertTrue(TOP_KEYS <= set(obj), f"missing top-level keys {TOP_KEYS - set(obj)}")
    test.assertEqual(obj["tool"], tool)
    test.assertRegex(obj["date"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
    test.assertIsInstance(obj["warnings"], list)
    test.assertIsInstance(obj["results"], list)
    for row in obj["results"]:
        test.assertTrue(ROW_KEYS <= set(row), f"row misses {ROW_KEYS - set(row)}")
        test.assertIn(row["precision"], ("fp32", "tf32", "fp16", "bf16"))
        if row["error"] is None:
            test.assertTrue(LATENCY_KEYS <= set(row["latency_ms"]))
            test.assertTrue({"mean", "median"} <= set(row["host_ms"]))


class TorchBaselineTest(unittest.TestCase):
    def test_cpu_json(self):
        r = run([PYTHON, os.path.join(BENCH, "torch_baseline.py"), "--device", "cpu", "--arch",
                 "convnext_tiny", "--batch", "1", "--warmup", "1", "--iterations", "2", "--modes",
                 "eager-fp32", "--json"])
        self.assertEqual(r.returncode, 0, r.stderr)
        obj = json.loads(r.stdout)  # the object alone on stdout
        check_schema(self, obj, "torch_baseline")
        self.assertEqual(obj["model"], "convnext_tiny")
        self.assertEqual(obj["input_size"], 224)
        self.assertEqual(obj["weights"], "random (seed 0)")
        self.assertIn("torch", obj["versions"])
        self.assertEqual(len(obj["results"]), 1)
        row = obj["results"][0]
        self.assertEqual((row["engine"], row["precision"], row["variant"], row["batch"]),
                         ("torch", "fp32", "eager-fp32", 1))
        self.assertIsNone(row["error"])
        self.assertEqual((row["warmup"], row["iterations"]), (1, 2))
        self.assertGreater(row["throughput"], 0)
        lat = row["latency_ms"]
        self.assertTrue(0 < lat["min"] <= lat["median"] <= lat["p99"])
        self.assertIsNone(row["gpu_ms"])
        self.assertIsNone(row["h2d_ms"])

    def test_weights_file_torchvision_and_timm_names(self):
        """--save-weights writes what -w reads back, under either naming, to the
        same model: the forward matches the seeded random model exactly."""
        sys.path.insert(0, BENCH)
        sys.path.insert(0, os.path.join(ROOT, "tools"))
        import torch

        import convnext_names
        import safetensors_io
        import torch_baseline

        with tempfile.TemporaryDirectory() as tmp:
            tv = os.path.join(tmp, "atto.safetensors")
            r = run([PYTHON, os.path.join(BENCH, "torch_baseline.py"), "--arch", "convnext_atto",
                     "--seed", "3", "--save-weights", tv])
            self.assertEqual(r.returncode, 0, r.stderr)
            tensors, meta = safetensors_io.read(tv)
            self.assertEqual(meta["architecture"], "convnext_atto")
            timm = os.path.join(tmp, "atto_timm.safetensors")
            safetensors_io.write(timm, convnext_names.rename_state_dict(tensors, convnext_names.TIMM),
                                 meta)
            ref = torch_baseline.random_model("convnext_atto", 3)
            x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
            with torch.inference_mode():
                want = ref(x)
                for path in (tv, timm):
                    model, arch = torch_baseline.load_model(path)
                    self.assertEqual(arch, "convnext_atto")
                    self.assertTrue(torch.equal(model(x), want), path)
            # and the command line takes it
            r = run([PYTHON, os.path.join(BENCH, "torch_baseline.py"), "-w", timm, "--device", "cpu",
                     "--batch", "2", "--input-size", "64", "--warmup", "0", "--iterations", "1",
                     "--json"])
            self.assertEqual(r.returncode, 0, r.stderr)
            obj = json.loads(r.stdout)
            self.assertEqual((obj["weights"], obj["model"], obj["input_size"]), (timm, "convnext_atto", 64))
            self.assertEqual([x["variant"] for x in obj["results"]], ["eager-fp32"])  # the CPU default

    def test_gpu_modes_on_cpu_are_error_rows(self):
        r = run([PYTHON, os.path.join(BENCH, "torch_baseline.py"), "--device", "cpu", "--arch",
                 "convnext_atto", "--batch", "1", "--input-size", "32", "--warmup", "0",
                 "--iterations", "1", "--modes", "eager-fp32,eager-amp-fp16-cl,compile-max-autotune",
                 "--json"])
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = json.loads(r.stdout)["results"]
        self.assertEqual([x["variant"] for x in rows],
                         ["eager-fp32", "eager-amp-fp16-cl", "compile-max-autotune"])
        self.assertIsNone(rows[0]["error"])
        self.assertIn("needs CUDA", rows[1]["error"])
        self.assertIsNone(rows[2]["throughput"])
        self.assertEqual(rows[2]["precision"], "fp16")


def row(engine, precision, variant, batch, throughput, median=1.0, error=None, **extra):
    r = {"name": f"{engine} {variant}", "engine": engine, "precision": precision, "variant": variant,
         "batch": batch, "warmup": 10, "iterations": 50, "throughput": throughput,
         "latency_ms": None if error else {"min": median, "mean": median, "median": median,
                                           "p90": median, "p95": median, "p99": median},
         "gpu_ms": None if error else {"mean": median, "median": median}, "h2d_ms": None,
         "host_ms": None if error else {"mean": 0.1, "median": 0.1}, "error": error}
    r.update(extra)
    return r


def doc(tool, rows, mode="model", warnings=()):
    return {"tool": tool, "date": "2026-11-26T05:40:00Z", "device": "NVIDIA H100 80GB HBM3",
            "model": "convnext_tiny", "weights": "w.safetensors", "input_size": 224, "mode": mode,
            "command": f"{tool} --json", "warnings": list(warnings), "results": rows}


CNX = doc("cnx-bench", [
    row("cnx", "fp16", "no-graphs", 256, 19000.0),
    row("cnx", "fp16", "graphs", 256, 20000.0, name="cnx fp16 graphs"),
    row("cnx", "fp32", "graphs", 256, 3000.0, name="cnx fp32 graphs"),
    row("cnx", "fp16", "graphs", 1, 900.0, name="cnx fp16 graphs"),
], warnings=["clocks not locked"])
TORCH = doc("torch_baseline", [
    row("torch", "fp32", "eager-fp32", 256, 2000.0),
    row("torch", "fp16", "eager-amp-fp16-cl", 256, 8000.0),
    row("torch", "fp16", "eager-amp-fp16-cl", 1, 300.0),
])
COMPILE = doc("torch_baseline", [
    row("torch", "fp16", "compile-max-autotune", 256, 16000.0, compile_s=95.0),
])
PIPE = doc("cnx-bench", [
    row("cnx", "fp16", "preprocess", 256, 60000.0),
    row("cnx", "fp16", "preprocess+h2d", 256, 40000.0),
    row("cnx", "fp16", "end-to-end", 256, 5000.0),
], mode="preprocess")


class CompareTest(unittest.TestCase):
    def compare(self, cnx, torch, extra=()):
        with tempfile.TemporaryDirectory() as tmp:
            args = [PYTHON, os.path.join(BENCH, "compare.py")]
            for i, d in enumerate(cnx):
                p = os.path.join(tmp, f"cnx{i}.json")
                with open(p, "w") as f:
                    f.write(d if isinstance(d, str) else json.dumps(d))
                args += ["--cnx", p]
            for i, d in enumerate(torch):
                p = os.path.join(tmp, f"torch{i}.json")
                with open(p, "w") as f:
                    f.write(d if isinstance(d, str) else json.dumps(d))
                args += ["--torch", p]
            out = os.path.join(tmp, "bench.md")
            r = run(args + list(extra) + ["--out", out])
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out) as f:
                return f.read()

    def test_ratios_and_targets(self):
        md = self.compare([CNX, PIPE], [TORCH, COMPILE])
        lines = md.splitlines()
        # batch 256: fp32 row, the fp16 eager row (graphs preferred over no-graphs), compile
        self.assertIn("| eager-fp32 | fp32 | 2000.0 | 1.000 | cnx fp32 graphs | 3000.0 | 1.000 | 1.50x |", lines)
        self.assertIn("| eager-amp-fp16-cl | fp16 | 8000.0 | 1.000 | cnx fp16 graphs | 20000.0 | 1.000 | 2.50x |",
                      lines)
        self.assertIn("| compile-max-autotune (compile 95 s) | fp16 | 16000.0 | 1.000 | cnx fp16 graphs | "
                      "20000.0 | 1.000 | 1.25x |", lines)
        # batch 1
        self.assertIn("| eager-amp-fp16-cl | fp16 | 300.0 | 1.000 | cnx fp16 graphs | 900.0 | 1.000 | 3.00x |",
                      lines)
        self.assertLess(md.index("## Batch 1\n"), md.index("## Batch 256\n"))
        t1 = next(x for x in lines if x.startswith("- cnx ≥ 2x"))
        t2 = next(x for x in lines if x.startswith("- cnx ≥ 1.3x"))
        self.assertIn("**met**", t1)
        self.assertIn("= 2.50x (goal 2.00x)", t1)
        self.assertIn("**NOT met**", t2)
        self.assertIn("= 1.25x (goal 1.30x)", t2)
        # preprocess goal: 60k met, 40k not; end-to-end has no goal
        self.assertRegex(md, r"\| cnx preprocess \| preprocess \| 256 \| 60000\.0 \|.*\*\*met\*\*")
        self.assertRegex(md, r"\| cnx preprocess\+h2d \| preprocess\+h2d \| 256 \| 40000\.0 \|.*\*\*NOT met\*\*")
        self.assertRegex(md, r"\| cnx end-to-end \| end-to-end \| 256 \| 5000\.0 \| 1\.000 \|  \|")
        self.assertIn("- cnx-bench: clocks not locked", lines)
        self.assertIn("NVIDIA H100 80GB HBM3", lines[0])

    def test_verdicts_flip(self):
        """Just under / just over each goal: the verdicts follow the figures."""
        cnx = copy.deepcopy(CNX)
        cnx["results"][1]["throughput"] = 15999.0  # vs 8000 eager: 1.9999x
        compiled = copy.deepcopy(COMPILE)
        compiled["results"][0]["throughput"] = 12000.0  # 15999/12000 = 1.333x
        md = self.compare([cnx], [TORCH, compiled])
        t1 = next(x for x in md.splitlines() if x.startswith("- cnx ≥ 2x"))
        t2 = next(x for x in md.splitlines() if x.startswith("- cnx ≥ 1.3x"))
        self.assertIn("**NOT met**", t1)
        self.assertIn("**met**", t2)
        self.assertIn("= 1.33x", t2)

    def test_missing_and_broken_inputs(self):
        cnx = copy.deepcopy(CNX)
        cnx["results"][1]["error"] = "out of memory"
        cnx["results"][1]["throughput"] = None
        md = self.compare([cnx, "", "{not json"], [TORCH])
        lines = md.splitlines()
        # the graphs row failed: the no-graphs one stands in
        self.assertIn("| eager-amp-fp16-cl | fp16 | 8000.0 | 1.000 | cnx no-graphs | 19000.0 | 1.000 | 2.38x |",
                      lines)
        t2 = next(x for x in lines if x.startswith("- cnx ≥ 1.3x"))
        self.assertIn("not measured (no torch compile-max-autotune row at batch 256)", t2)
        self.assertIn("not measured (no preprocess or end-to-end rows)", md)
        self.assertRegex(md, r"cnx1\.json: empty")
        self.assertRegex(md, r"cnx2\.json: not JSON")
        self.assertIn("- cnx-bench: cnx fp16 graphs fp16 batch 256: out of memory", lines)

    def test_all_errors(self):
        cnx = doc("cnx-bench", [row("cnx", "fp16", "graphs", 256, None, error="no GPU")])
        torch = doc("torch_baseline", [row("torch", "fp16", "eager-amp-fp16-cl", 256, None, error="boom")])
        md = self.compare([cnx], [torch])
        self.assertIn("| eager-amp-fp16-cl | fp16 | error: boom |  | cnx graphs | error: no GPU |  | "
                      "not measured |", md.splitlines())
        t1 = next(x for x in md.splitlines() if x.startswith("- cnx ≥ 2x"))
        self.assertIn("not measured (cnx fp16: error: no GPU; torch eager-amp-fp16-cl: error: boom)", t1)


@unittest.skipUnless(os.environ.get("CNX_BENCH_EXE"), "CNX_BENCH_EXE (the cnx-bench binary) not set")
class RunShTest(unittest.TestCase):
    def test_quick_cpu(self):
        exe = os.environ["CNX_BENCH_EXE"]
        self.assertTrue(os.access(exe, os.X_OK), f"{exe} is not an executable")
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out")
            env = dict(os.environ, CNX_PYTHON=PYTHON, CNX_BENCH_WORK=os.path.join(tmp, "work"))
            r = run(["bash", os.path.join(BENCH, "run.sh"), "--quick", "--device", "cpu",
                     "--cnx-bench", exe, "--out", out], timeout=90, env=env)
            msg = f"stdout:\n{r.stdout[-4000:]}\nstderr:\n{r.stderr[-4000:]}"
            self.assertEqual(r.returncode, 0, msg)
            self.assertRegex(r.stdout, r"\n\d+ passed, 0 failed, \d+ skipped", msg)
            with open(os.path.join(out, "cnx_model.json")) as f:
                cnx = json.load(f)
            check_schema(self, cnx, "cnx-bench")
            with open(os.path.join(out, "torch_eager.json")) as f:
                check_schema(self, json.load(f), "torch_baseline")
            with open(os.path.join(out, "bench.md")) as f:
                md = f.read()
            self.assertEqual(md, r.stdout[:len(md)])  # printed
            # the fp32 batch-1 comparison has a ratio
            self.assertRegex(md, r"\| eager-fp32 \| fp32 \| [0-9.]+ \| [0-9.]+ \| cnx[^|]*\| [0-9.]+ \| "
                                 r"[0-9.]+ \| [0-9.]+x \|", msg)
            self.assertIn("## Preprocessing and end to end (cnx)", md)
            self.assertTrue(re.search(r"\| end-to-end \| \d+ \| [0-9.]+ \|", md), md)
            self.assertFalse(os.path.exists(os.path.join(out, "steps.md")))


if __name__ == "__main__":
    unittest.main()
