#!/usr/bin/python3
"""PyTorch's figures for the work cnx-bench does in model mode: a torchvision
ConvNeXt forward over a batch that is already on the device, timed the same
way (docs/design.md section 8 compares the two on the same GPU, in the same run).

    bench/torch_baseline.py [-w W.safetensors | --arch NAME --seed N]
        [--device auto|cpu|cuda] [--modes LIST] [--batch 1,32,256]
        [--input-size 224] [--warmup 10] [--iterations 100 | --duration S]
        [--compile-batches LIST] [--compile-timeout S] [--threads N]
        [--json] [--out FILE]
    bench/torch_baseline.py --arch convnext_tiny --seed 0 --save-weights W.safetensors

Modes (--modes, default: all the device can run):
  eager-fp32            fp32, TF32 off for matmul and cuDNN
  eager-tf32            fp32 tensors, TF32 on for matmul and cuDNN
  eager-amp-fp16-cl     torch.autocast fp16, model and input channels_last
  eager-amp-bf16-cl     torch.autocast bf16, model and input channels_last
  compile-max-autotune  torch.compile(mode="max-autotune") of the channels_last
                        model under fp16 autocast (compile time in "compile_s")
On the CPU only eager-fp32 runs (wall-clock latencies).

Timing, as in cnx-bench: per iteration, CUDA events around the forward of the
whole batch (torch.inference_mode()), then a synchronize on the stop event.
latency_ms and gpu_ms are the event times; host_ms is the wall time of the
Python call that enqueues the forward; throughput is batch * iterations over
the wall time of the timed loop; h2d_ms is events around one pinned
copy_(non_blocking=True) of the float batch. cudnn.benchmark is on for every
GPU mode. An out-of-memory error, a compile failure or a compile timeout gives
a row with "error" and the run goes on.

--json prints one JSON object (cnx-bench's schema, "tool": "torch_baseline",
plus "versions" and "settings") on stdout; --out FILE writes it after every
row too, so a run killed part-way still leaves its figures.
"""

import argparse
import json
import math
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))

import convert_weights  # noqa: E402  (torch-free at import time)
import convnext_names  # noqa: E402
import safetensors_io  # noqa: E402

PROG = "torch_baseline.py"

# name -> (precision, TF32 for matmul/cuDNN (None: PyTorch's defaults),
#          autocast dtype name or None, channels_last, torch.compile)
MODES = {
    "eager-fp32": ("fp32", False, None, False, False),
    "eager-tf32": ("tf32", True, None, False, False),
    "eager-amp-fp16-cl": ("fp16", None, "float16", True, False),
    "eager-amp-bf16-cl": ("bf16", None, "bfloat16", True, False),
    "compile-max-autotune": ("fp16", None, "float16", True, True),
}
CV_LIMIT = 0.10


class CompileTimeout(Exception):
    pass


_alarm_fired = [False]


def log(msg):
    print(f"[{PROG}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------ arguments
def int_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers")
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive integers")
    return values


def mode_list(text):
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in MODES]
    if bad or not values:
        raise argparse.ArgumentTypeError(f"unknown mode(s) {', '.join(bad) or text!r}; "
                                         f"choose from {', '.join(MODES)}")
    return values


def build_parser():
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-w", "--weights", help="a cnx safetensors file (torchvision or timm names)")
    p.add_argument("--arch", default="convnext_tiny",
                   help="architecture for random weights (default convnext_tiny)")
    p.add_argument("--seed", type=int, default=0, help="torch.manual_seed for random weights and input")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--modes", type=mode_list, help=f"comma list of {', '.join(MODES)}")
    p.add_argument("--batch", type=int_list, default=[1, 32, 256], help="batch sizes (default 1,32,256)")
    p.add_argument("--input-size", type=int, default=224, help="input height and width (default 224)")
    p.add_argument("--warmup", type=int, default=10, help="untimed iterations per row (default 10)")
    p.add_argument("--iterations", type=int, default=100, help="timed iterations per row (default 100)")
    p.add_argument("--duration", type=float,
                   help="time each row for this many seconds instead of --iterations")
    p.add_argument("--compile-batches", type=int_list,
                   help="batch sizes for compile-max-autotune (default: all of --batch)")
    p.add_argument("--compile-timeout", type=float, default=300,
                   help="seconds allowed for each torch.compile (default 300)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    p.add_argument("--json", action="store_true", help="print the JSON object only on stdout")
    p.add_argument("--out", help="also write the JSON object to FILE (after every row)")
    p.add_argument("--save-weights", metavar="FILE",
                   help="write the seeded random --arch model to FILE as cnx safetensors and exit")
    return p


# ------------------------------------------------------------ the model
def architecture_shape(arch):
    for name, depths, w0, _ in convert_weights.ARCHITECTURES:
        if name == arch:
            return depths, (w0, 2 * w0, 4 * w0, 8 * w0)
    known = ", ".join(a[0] for a in convert_weights.ARCHITECTURES)
    raise SystemExit(f"{PROG}: unknown --arch {arch!r} (known: {known})")


def build_model(depths, widths, classes):
    """A torchvision ConvNeXt (eval, stochastic depth off) of this shape."""
    import torchvision
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    arch = convert_weights.architecture_name(depths, widths)
    if arch in convert_weights.TORCHVISION_WEIGHTS and classes == 1000:
        model = getattr(torchvision.models, arch)(weights=None, stochastic_depth_prob=0.0)
    else:
        setting = [CNBlockConfig(w, widths[i + 1] if i + 1 < len(widths) else None, d)
                   for i, (d, w) in enumerate(zip(depths, widths))]
        model = ConvNeXt(setting, stochastic_depth_prob=0.0, num_classes=classes)
    return model.eval()


def random_model(arch, seed):
    import torch

    depths, widths = architecture_shape(arch)
    torch.manual_seed(seed)
    return build_model(depths, widths, 1000)


def load_model(path):
    """(model, architecture) from a cnx safetensors file."""
    try:
        tensors, metadata = safetensors_io.read(path)
    except (OSError, safetensors_io.SafetensorsError) as e:
        raise SystemExit(f"{PROG}: {path}: {e}")
    tensors = {k: v.float() for k, v in tensors.items()}
    try:
        shape = convert_weights.describe(tensors)
    except convert_weights.ConvertError as e:
        raise SystemExit(f"{PROG}: {path}: {e}")
    if shape.naming == convnext_names.TIMM:
        tensors = convnext_names.rename_state_dict(tensors, convnext_names.TORCHVISION)
        # timm's 1x1-conv MLP (atto..nano) is torchvision's Linear
        tensors = {k: (v.reshape(v.shape[0], v.shape[1])
                       if v.dim() == 4 and (".block.3." in k or ".block.5." in k) else v)
                   for k, v in tensors.items()}
    model = build_model(shape.depths, shape.widths, shape.num_classes)
    model.load_state_dict(tensors, strict=True)
    return model, metadata.get("architecture") or shape.architecture


def save_weights(args):
    model = random_model(args.arch, args.seed)
    pre, _ = convert_weights.default_preprocess(args.arch)
    source = f"torchvision {args.arch}, random init (torch.manual_seed({args.seed}))"
    metadata = convert_weights.make_metadata(args.arch, source, pre)
    tensors = convert_weights.cast_tensors(model.state_dict(), "f32")
    tmp = f"{args.save_weights}.tmp{os.getpid()}"
    safetensors_io.write(tmp, tensors, metadata)
    os.replace(tmp, args.save_weights)
    params = sum(t.numel() for t in tensors.values())
    print(f"wrote {args.save_weights}: {args.arch}, {params} parameters, {source}")


# ------------------------------------------------------------ statistics
def percentile(sorted_values, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def latency_stats(values):
    s = sorted(values)
    return {"min": s[0], "mean": statistics.fmean(s), "median": statistics.median(s),
            "p90": percentile(s, 90), "p95": percentile(s, 95), "p99": percentile(s, 99),
            "max": s[-1]}


def mean_median(values):
    if not values:
        return None
    return {"mean": statistics.fmean(values), "median": statistics.median(values)}


# ------------------------------------------------------------ environment
def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_busy_warnings():
    """Other processes on the GPU, or a busy GPU, before we start (nvidia-smi)."""
    out = []
    try:
        apps = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,process_name,used_memory",
                               "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        util = subprocess.run(["nvidia-smi", "--query-gpu=index,utilization.gpu",
                               "--format=csv,noheader,nounits"], capture_output=True, text=True,
                              timeout=20)
    except (OSError, subprocess.SubprocessError):
        return out, False
    others = [ln.strip() for ln in apps.stdout.splitlines()
              if ln.strip() and ln.split(",")[0].strip() != str(os.getpid())]
    if apps.returncode == 0 and others:
        out.append(f"GPU busy: other processes on the GPU at start: {'; '.join(others[:5])}")
    for ln in util.stdout.splitlines():
        parts = [x.strip() for x in ln.split(",")]
        if len(parts) == 2 and parts[1].isdigit() and int(parts[1]) > 10:
            out.append(f"GPU busy: GPU {parts[0]} at {parts[1]}% utilization at start")
    return out, apps.returncode == 0


def versions():
    import torch
    import torchvision

    v = {"python": platform.python_version(), "torch": torch.__version__,
         "torchvision": torchvision.__version__, "cuda": torch.version.cuda,
         "cudnn": None}
    try:
        if torch.backends.cudnn.is_available():
            v["cudnn"] = torch.backends.cudnn.version()
    except Exception:  # noqa: BLE001
        pass
    try:
        from importlib import metadata

        v["triton"] = metadata.version("triton")
    except Exception:  # noqa: BLE001
        v["triton"] = None
    return v


# ------------------------------------------------------------ the runner
class Report:
    def __init__(self, args, device_name, model_name, weights, versions_, settings):
        self.args = args
        self.obj = {
            "tool": "torch_baseline",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "device": device_name, "model": model_name, "weights": weights,
            "input_size": args.input_size, "mode": "model",
            "command": shlex.join([sys.argv[0]] + sys.argv[1:]),
            "versions": versions_, "settings": settings,
            "warnings": [], "results": [],
        }

    def warn(self, msg):
        if msg not in self.obj["warnings"]:
            self.obj["warnings"].append(msg)
            log(f"warning: {msg}")

    def add(self, row):
        self.obj["results"].append(row)
        self.save()

    def save(self):
        if self.args.out:
            tmp = f"{self.args.out}.tmp{os.getpid()}"
            with open(tmp, "w") as f:
                json.dump(self.obj, f, indent=1)
                f.write("\n")
            os.replace(tmp, self.args.out)


def _get(obj, name):
    """getattr(obj, name, None), for objects whose __getattr__ raises other
    errors than AttributeError (torch.backends.cuda.matmul in torch 1.x)."""
    try:
        return getattr(obj, name)
    except Exception:  # noqa: BLE001
        return None


def _has(obj, name):
    return obj is not None and _get(obj, name) is not None


class TF32:
    """TF32 for matmul and cuDNN convolutions. PyTorch 2.9 and later have
    fp32_precision ("ieee"/"tf32") settings and raise an error when they are
    mixed with the legacy allow_tf32 flags, so only one of the two APIs is
    used: the new one where it exists. The settings found at start are
    PyTorch's defaults (matmul off, cuDNN on) and are restored for the modes
    that do not choose (the AMP and compile modes)."""

    def __init__(self, torch):
        self.torch = torch
        self.errors = []
        b = torch.backends
        self.new = _has(_get(b.cuda, "matmul"), "fp32_precision") and \
            _has(_get(b.cudnn, "conv"), "fp32_precision")
        if self.new:
            self.initial = (b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision,
                            _get(_get(b.cudnn, "rnn"), "fp32_precision"))
        else:
            self.initial = (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, None)

    def set(self, on):
        """on: True/False for both, None for the values found at start."""
        b = self.torch.backends
        try:
            if self.new:
                if on is None:
                    matmul, conv, rnn = self.initial
                else:
                    matmul = conv = rnn = "tf32" if on else "ieee"
                b.cuda.matmul.fp32_precision = matmul
                b.cudnn.conv.fp32_precision = conv
                if rnn is not None:
                    b.cudnn.rnn.fp32_precision = rnn  # kept equal to conv: see the class comment
            else:
                matmul, conv = (self.initial[:2] if on is None else (on, on))
                b.cuda.matmul.allow_tf32 = matmul
                b.cudnn.allow_tf32 = conv
        except Exception as e:  # noqa: BLE001  (the state() in the row says what holds)
            self.errors.append(f"setting TF32 {'to the start values' if on is None else on}: {e}")

    def state(self):
        b = self.torch.backends
        if self.new:
            return {"cuda.matmul.fp32_precision": b.cuda.matmul.fp32_precision,
                    "cudnn.conv.fp32_precision": b.cudnn.conv.fp32_precision}
        return {"cuda.matmul.allow_tf32": b.cuda.matmul.allow_tf32,
                "cudnn.allow_tf32": b.cudnn.allow_tf32}

    def initial_state(self):
        if self.new:
            return {"cuda.matmul.fp32_precision": self.initial[0],
                    "cudnn.conv.fp32_precision": self.initial[1]}
        return {"cuda.matmul.allow_tf32": self.initial[0], "cudnn.allow_tf32": self.initial[1]}


def set_backend(torch, cuda, mode, tf32_control):
    """Sets TF32 and cudnn.benchmark for mode; returns the settings."""
    _, tf32, amp, cl, comp = MODES[mode]
    if cuda:
        torch.backends.cudnn.benchmark = True
        tf32_control.set(tf32)
        return dict({"cudnn.benchmark": True}, **tf32_control.state(),
                    autocast=amp, channels_last=cl, compile="max-autotune" if comp else None)
    return {"threads": torch.get_num_threads(), "autocast": None, "channels_last": False,
            "compile": None}


def is_oom(e):
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(e, oom)) or "out of memory" in str(e).lower()


def error_text(e):
    text = str(e).strip().splitlines()
    first = text[0] if text else type(e).__name__
    if is_oom(e):
        return f"out of memory: {first[:200]}"
    return f"{type(e).__name__}: {first[:300]}"


def measure_h2d(torch, x_cpu, device, repeats=10):
    """Events around one pinned copy_(non_blocking=True) of the float batch."""
    src = x_cpu.pin_memory()
    dst = torch.empty_like(src, device=device)
    times = []
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for i in range(repeats + 2):
        start.record()
        dst.copy_(src, non_blocking=True)
        stop.record()
        stop.synchronize()
        if i >= 2:
            times.append(start.elapsed_time(stop))
    del src, dst
    return mean_median(times)


def time_loop(torch, cuda, fn, warmup, iterations, duration, mark_step=None):
    """(latencies ms, gpu ms, host ms, iterations, wall s) of the timed loop."""
    perf = time.perf_counter
    if cuda:
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
    for _ in range(warmup):
        if mark_step:
            mark_step()
        fn()
    if cuda:
        torch.cuda.synchronize()
    lat, host = [], []
    n = 0
    t_begin = perf()
    while True:
        if mark_step:
            mark_step()
        if cuda:
            t0 = perf()
            start.record()
            fn()
            stop.record()
            t1 = perf()
            stop.synchronize()
            lat.append(start.elapsed_time(stop))
        else:
            t0 = perf()
            fn()
            t1 = perf()
            lat.append((t1 - t0) * 1e3)
        host.append((t1 - t0) * 1e3)
        n += 1
        if duration is not None:
            if perf() - t_begin >= duration:
                break
        elif n >= iterations:
            break
    wall = perf() - t_begin
    return lat, (list(lat) if cuda else None), host, n, wall


def run(args):
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda_ok = torch.cuda.is_available()
    if args.device == "cuda" and not cuda_ok:
        raise SystemExit(f"{PROG}: --device cuda, but torch.cuda.is_available() is False")
    cuda = args.device == "cuda" or (args.device == "auto" and cuda_ok)
    device = torch.device("cuda" if cuda else "cpu")

    busy, have_smi = gpu_busy_warnings() if cuda else ([], True)

    if args.weights:
        model, arch = load_model(args.weights)
        weights = args.weights
    else:
        model = random_model(args.arch, args.seed)
        arch, weights = args.arch, f"random (seed {args.seed})"
    model = model.to(device)

    if cuda:
        name = torch.cuda.get_device_name(device)
    else:
        n = torch.get_num_threads()
        name = f"CPU ({cpu_name()}, {n} thread{'s' if n != 1 else ''})"
    tf32_control = TF32(torch)
    settings = {"cudnn.benchmark": bool(cuda), "inference_mode": True,
                "at_start": dict(tf32_control.initial_state(),
                                 **{"cudnn.benchmark": torch.backends.cudnn.benchmark}),
                "tf32_api": "fp32_precision" if tf32_control.new else "allow_tf32"}
    report = Report(args, name, arch, weights, versions(), settings)
    if cuda and not have_smi:  # no nvidia-smi: ask torch (pynvml), ourselves excluded
        try:
            text = torch.cuda.list_gpu_processes(device)
            others = [ln.strip() for ln in text.splitlines()
                      if ln.strip().startswith("process") and f" {os.getpid()} " not in f"{ln} "]
            if others:
                busy.append(f"GPU busy: other processes on the GPU: {'; '.join(others[:5])}")
        except Exception:  # noqa: BLE001
            pass
    for w in busy:
        report.warn(w)

    modes = args.modes or (list(MODES) if cuda else ["eager-fp32"])
    if cuda:
        report.warn("cudnn.benchmark=True for every mode (PyTorch's default is False)")
        start = tf32_control.initial_state()
        report.warn(f"TF32 settings at start: {', '.join(f'{k}={v}' for k, v in start.items())}; "
                    f"eager-fp32 turns TF32 off for matmul and cuDNN, eager-tf32 on for both, the "
                    f"AMP and compile modes keep the settings at start")
    compile_batches = args.compile_batches or args.batch
    if "compile-max-autotune" in modes and set(compile_batches) != set(args.batch):
        report.warn(f"compile-max-autotune measured at batch {','.join(map(str, compile_batches))} "
                    f"only (to fit the time budget)")

    gen = torch.Generator().manual_seed(args.seed)
    h2d = {}
    inputs = {}  # batch -> the CPU input, the same for every mode
    model_format = torch.contiguous_format
    compiled = None
    compile_dead = None  # the reason compile rows are skipped
    mark_step = None
    for mode in modes:
        precision, _, amp, cl, comp = MODES[mode]
        batches = compile_batches if comp else args.batch
        for batch in batches:
            row = {"name": f"torch {mode}", "engine": "torch", "precision": precision,
                   "variant": mode, "batch": batch, "warmup": args.warmup,
                   "iterations": args.iterations if args.duration is None else 0,
                   "throughput": None, "latency_ms": None, "gpu_ms": None, "h2d_ms": None,
                   "host_ms": None, "error": None}
            row["settings"] = set_backend(torch, cuda, mode, tf32_control)
            for e in tf32_control.errors:
                report.warn(e)
            tf32_control.errors.clear()
            if not cuda and mode != "eager-fp32":
                row["error"] = f"{mode} needs CUDA (this run is on the CPU)"
                report.add(row)
                continue
            if amp == "bfloat16" and not torch.cuda.is_bf16_supported():
                row["error"] = "bf16 is not supported on this GPU"
                report.add(row)
                continue
            if comp and not hasattr(torch, "compile"):
                row["error"] = f"torch.compile is not available in torch {torch.__version__}"
                report.add(row)
                continue
            if comp and compile_dead:
                row["error"] = compile_dead
                report.add(row)
                continue
            log(f"{mode}, batch {batch} ...")
            x = None
            try:
                fmt = torch.channels_last if cl else torch.contiguous_format
                if fmt != model_format:
                    model.to(memory_format=fmt)
                    model_format = fmt
                if batch not in inputs:
                    inputs[batch] = torch.randn((batch, 3, args.input_size, args.input_size),
                                                generator=gen)
                x_cpu = inputs[batch]
                if cuda and batch not in h2d:
                    h2d[batch] = measure_h2d(torch, x_cpu, device)
                row["h2d_ms"] = h2d.get(batch) if cuda else None
                x = x_cpu.to(device).contiguous(memory_format=fmt)
                net = model
                if comp:
                    if compiled is None:
                        compiled = torch.compile(model, mode="max-autotune", dynamic=False)
                    net = compiled
                    mark_step = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)
                else:
                    mark_step = None
                if amp:
                    dtype = getattr(torch, amp)

                    def fn():
                        with torch.autocast(device_type="cuda", dtype=dtype):
                            net(x)
                else:
                    def fn():
                        net(x)
                with torch.inference_mode():
                    if comp:
                        t0 = time.perf_counter()
                        old = signal.signal(signal.SIGALRM, _alarm)
                        # again every 5 s: inductor may swallow one exception while autotuning
                        signal.setitimer(signal.ITIMER_REAL, args.compile_timeout, 5.0)
                        _alarm_fired[0] = False
                        try:
                            if mark_step:
                                mark_step()
                            fn()
                            torch.cuda.synchronize()
                        except Exception:  # noqa: BLE001  (dynamo may wrap CompileTimeout)
                            if _alarm_fired[0]:
                                msg = (f"torch.compile did not finish within --compile-timeout "
                                       f"{args.compile_timeout:g} s")
                                compile_dead = f"skipped: {msg}"
                                raise RuntimeError(msg)
                            raise
                        finally:
                            signal.setitimer(signal.ITIMER_REAL, 0)
                            signal.signal(signal.SIGALRM, old)
                        row["compile_s"] = round(time.perf_counter() - t0, 2)
                        row["name"] = f"torch {mode} (compile {row['compile_s']:.0f} s)"
                        log(f"compiled in {row['compile_s']} s")
                    lat, gpu, host, n, wall = time_loop(torch, cuda, fn, args.warmup, args.iterations,
                                                        args.duration, mark_step)
                row["iterations"] = n
                row["throughput"] = batch * n / wall
                row["latency_ms"] = latency_stats(lat)
                row["gpu_ms"] = mean_median(gpu) if gpu is not None else None
                row["host_ms"] = mean_median(host)
                if len(lat) > 1:
                    cv = statistics.pstdev(lat) / statistics.fmean(lat)
                    row["latency_cv"] = cv
                    if cv > CV_LIMIT:
                        report.warn(f"torch {mode} batch {batch}: latency CV {100 * cv:.0f}% "
                                    f"(> {100 * CV_LIMIT:.0f}%): noisy figures")
                log(f"{mode}, batch {batch}: {row['throughput']:.1f} images/s, "
                    f"median {row['latency_ms']['median']:.3f} ms")
            except Exception as e:  # noqa: BLE001  (OOM, compile errors: a row, and go on)
                row["error"] = error_text(e)
                if comp and compile_dead is None and not is_oom(e):
                    compile_dead = f"skipped: torch.compile failed earlier ({row['error'][:120]})"
                log(f"{mode}, batch {batch}: error: {row['error']}")
            finally:
                x = None  # noqa: F841
                if cuda:
                    torch.cuda.empty_cache()
            report.add(row)
    return report


def _alarm(signum, frame):
    _alarm_fired[0] = True
    raise CompileTimeout(f"compile timeout (signal {signum})")


# ------------------------------------------------------------ output
def fmt(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"


def print_text(obj):
    v = obj["versions"]
    print(f"=== torch_baseline: {obj['model']} {obj['input_size']}x{obj['input_size']} on "
          f"{obj['device']}")
    print(f"torch {v['torch']}, torchvision {v['torchvision']}, CUDA {v['cuda']}, cuDNN {v['cudnn']}")
    print(f"weights: {obj['weights']}")
    for r in obj["results"]:
        print(f"\n=== {r['name']}, precision {r['precision']}, batch {r['batch']} ===")
        if r["error"]:
            print(f"[E] {r['error']}")
            continue
        lat = r["latency_ms"]
        print(f"Throughput: {r['throughput']:.1f} images/s ({r['iterations']} iterations, "
              f"{r['warmup']} warm-up)")
        print(f"Latency: min = {fmt(lat['min'])} ms, max = {fmt(lat['max'])} ms, mean = "
              f"{fmt(lat['mean'])} ms, median = {fmt(lat['median'])} ms, percentile(90%) = "
              f"{fmt(lat['p90'])} ms, percentile(95%) = {fmt(lat['p95'])} ms, percentile(99%) = "
              f"{fmt(lat['p99'])} ms")
        if r["gpu_ms"]:
            print(f"GPU Compute Time: mean = {fmt(r['gpu_ms']['mean'])} ms, median = "
                  f"{fmt(r['gpu_ms']['median'])} ms")
        if r["h2d_ms"]:
            print(f"H2D Latency: mean = {fmt(r['h2d_ms']['mean'])} ms, median = "
                  f"{fmt(r['h2d_ms']['median'])} ms")
        print(f"Enqueue Time: mean = {fmt(r['host_ms']['mean'])} ms, median = "
              f"{fmt(r['host_ms']['median'])} ms")
        if "compile_s" in r:
            print(f"Compile Time: {r['compile_s']:.1f} s")
    print("\n| mode | precision | batch | images/s | median ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for r in obj["results"]:
        if r["error"]:
            print(f"| {r['name']} | {r['precision']} | {r['batch']} | error: {r['error']} | | |")
        else:
            print(f"| {r['name']} | {r['precision']} | {r['batch']} | {r['throughput']:.1f} | "
                  f"{r['latency_ms']['median']:.3f} | {r['latency_ms']['p99']:.3f} |")
    for w in obj["warnings"]:
        print(f"[W] {w}")


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.save_weights:
        save_weights(args)
        return 0
    if args.input_size <= 0 or args.input_size % 32:
        raise SystemExit(f"{PROG}: --input-size must be a positive multiple of 32")
    if args.iterations <= 0 or args.warmup < 0 or (args.duration is not None and args.duration <= 0):
        raise SystemExit(f"{PROG}: --iterations and --duration must be positive, --warmup >= 0")
    report = run(args)
    report.save()
    if args.json:
        json.dump(report.obj, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print_text(report.obj)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
