#!/usr/bin/python3
"""Markdown report of a cnx-bench run against a torch_baseline.py run on the
same GPU: per batch size, each PyTorch mode's images/s beside cnx's row of the
same precision (variant "graphs" preferred) and the ratio cnx / torch; then
the two targets of docs/design.md section 8 at batch 256, met or NOT met; then
cnx's preprocess and end-to-end rows (with the 50k images/s preprocessing
goal); then every warning and error.

    bench/compare.py --cnx CNX.json [--cnx MORE.json ...] --torch TORCH.json
                     [--torch MORE.json ...] [--out RESULTS.md]

Files that are missing, empty or not JSON, rows with errors and rows that
were never measured are reported as such; the report is always written.
"""

import argparse
import json
import os
import sys

PROG = "compare.py"

TARGET_MODEL = "convnext_tiny"
TARGET_SIZE = 224
# (torch variant, goal, description) of docs/design.md section 8
TARGETS = [
    ("eager-amp-fp16-cl", 2.0, "PyTorch eager (AMP fp16, channels_last)"),
    ("compile-max-autotune", 1.3, 'torch.compile(mode="max-autotune")'),
]
TARGET_PRECISION = "fp16"
PREPROCESS_GOAL = 50000.0
MODEL_VARIANT_ORDER = ["graphs", "no-graphs", "cpu"]
PIPELINE_VARIANTS = ["preprocess", "preprocess+h2d", "end-to-end"]
TORCH_MODE_ORDER = ["eager-fp32", "eager-tf32", "eager-amp-fp16-cl", "eager-amp-bf16-cl",
                    "compile-max-autotune"]


def load(path, problems):
    """The JSON object in path, or None (with a line in problems)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as e:
        problems.append(f"{path}: not read ({e.strerror or e})")
        return None
    if not text.strip():
        problems.append(f"{path}: empty (the run printed nothing)")
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        # tolerate text around the object (a log line before it, a cut-off tail)
        start = text.find("{")
        try:
            obj, _ = json.JSONDecoder().raw_decode(text[start:]) if start >= 0 else (None, 0)
        except ValueError as e:
            problems.append(f"{path}: not JSON ({e})")
            return None
    if not isinstance(obj, dict) or not isinstance(obj.get("results", []), list):
        problems.append(f"{path}: not a cnx-bench / torch_baseline object")
        return None
    obj.setdefault("results", [])
    obj["_path"] = path
    return obj


def num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def ok(row):
    return row is not None and not row.get("error") and num(row.get("throughput")) is not None \
        and row["throughput"] > 0


def ips(row):
    if row is None:
        return "not measured"
    if row.get("error"):
        return f"error: {str(row['error'])[:100]}"
    t = num(row.get("throughput"))
    return "not measured" if t is None else f"{t:.1f}"


def median_ms(row):
    lat = row.get("latency_ms") if row else None
    v = num(lat.get("median")) if isinstance(lat, dict) else None
    return "" if v is None or (row and row.get("error")) else f"{v:.3f}"


def ratio(a, b):
    return a["throughput"] / b["throughput"]


def is_pipeline(row):
    return row.get("variant") in PIPELINE_VARIANTS


def pick_cnx(rows, precision, batch):
    """cnx's model row for precision and batch: a good row of the preferred
    variant, else any good row, else an error row; None if there is none."""
    cands = [r for r in rows if r.get("precision") == precision and r.get("batch") == batch
             and not is_pipeline(r)]
    if not cands:
        return None

    def rank(r):
        v = r.get("variant")
        order = MODEL_VARIANT_ORDER.index(v) if v in MODEL_VARIANT_ORDER else len(MODEL_VARIANT_ORDER)
        return (0 if ok(r) else 1, order)

    return sorted(cands, key=rank)[0]


def label(row):
    if row is None:
        return "-"
    name = row.get("name") or f"{row.get('engine', '?')} {row.get('precision', '?')}"
    return name


def on_gpu(row):
    return row.get("gpu_ms") is not None or row.get("h2d_ms") is not None or \
        row.get("variant") in ("graphs", "no-graphs", "preprocess+h2d")


def versions_line(docs):
    out = []
    for d in docs:
        v = d.get("versions")
        if isinstance(v, dict):
            out.append(", ".join(f"{k} {val}" for k, val in v.items() if val is not None))
    return "; ".join(dict.fromkeys(out))


def report(cnx_docs, torch_docs, problems, target_batch=256):
    cnx_rows = [r for d in cnx_docs for r in d["results"] if isinstance(r, dict)]
    torch_rows = [r for d in torch_docs for r in d["results"] if isinstance(r, dict)]
    docs = cnx_docs + torch_docs
    lines = []
    w = lines.append
    warnings = list(problems)

    device = next((d.get("device") for d in torch_docs + cnx_docs if d.get("device")), "unknown")
    model = next((d.get("model") for d in docs if d.get("model")), "unknown")
    size = next((d.get("input_size") for d in docs if d.get("input_size")), None)
    w(f"# cnx vs PyTorch: {model}{f' {size}x{size}' if size else ''} on {device}")
    w("")
    for d in docs:
        w(f"- {d.get('tool', '?')} ({os.path.basename(d['_path'])}): {d.get('date', '?')}, "
          f"{d.get('device', '?')}, {d.get('model', '?')} {d.get('input_size', '?')}, "
          f"mode {d.get('mode', '?')}, weights {d.get('weights', '?')}")
    for d in docs:
        if d.get("command"):
            w(f"- command: `{d['command']}`")
    v = versions_line(docs)
    if v:
        w(f"- versions: {v}")
    if not cnx_docs:
        w("- cnx-bench: no results")
    if not torch_docs:
        w("- torch_baseline: no results")

    devices = {d.get("device") for d in docs if d.get("device")}
    if len(devices) > 1 and not all(str(x).startswith("CPU") for x in devices):
        warnings.append(f"the files name different devices: {', '.join(sorted(devices))}")
    sizes = {d.get("input_size") for d in docs if d.get("input_size")}
    if len(sizes) > 1:
        warnings.append(f"the files use different input sizes: {', '.join(map(str, sorted(sizes)))}")
    weights = {d.get("weights") for d in docs if d.get("weights") and d.get("mode") == "model"}
    if len(weights) > 1:
        warnings.append(f"the model runs use different weights: {', '.join(sorted(weights))}")
    counts = {(r.get("warmup"), r.get("iterations")) for r in torch_rows + cnx_rows
              if ok(r) and not is_pipeline(r)}
    if len(counts) > 1:
        warnings.append("warm-up / iteration counts differ between rows: " +
                        ", ".join(f"{a}/{b}" for a, b in sorted(counts, key=str)))

    # ---- per batch
    model_cnx = [r for r in cnx_rows if not is_pipeline(r)]
    batches = sorted({r.get("batch") for r in torch_rows + model_cnx if isinstance(r.get("batch"), int)})
    for b in batches:
        w("")
        w(f"## Batch {b}")
        w("")
        trows = [r for r in torch_rows if r.get("batch") == b]
        trows.sort(key=lambda r: (TORCH_MODE_ORDER.index(r.get("variant"))
                                  if r.get("variant") in TORCH_MODE_ORDER else 99))
        used = set()
        if trows:
            w("| torch mode | precision | torch images/s | torch median ms | cnx row | "
              "cnx images/s | cnx median ms | cnx / torch |")
            w("|---|---|---|---|---|---|---|---|")
            for t in trows:
                c = pick_cnx(model_cnx, t.get("precision"), b)
                if c is not None:
                    used.add(id(c))
                r = f"{ratio(c, t):.2f}x" if ok(c) and ok(t) else "not measured"
                extra = f" (compile {t['compile_s']:.0f} s)" if num(t.get("compile_s")) else ""
                w(f"| {t.get('variant', label(t))}{extra} | {t.get('precision', '?')} | {ips(t)} | "
                  f"{median_ms(t)} | {label(c)} | {ips(c)} | {median_ms(c)} | {r} |")
        else:
            w("PyTorch: not measured at this batch.")
        copies = []
        for r in trows + [c for c in model_cnx if c.get("batch") == b]:
            h = r.get("h2d_ms")
            m = num(h.get("median")) if isinstance(h, dict) else None
            who = "torch" if r.get("engine") == "torch" else "cnx"
            if m is not None and who not in (c[0] for c in copies):
                copies.append((who, m))
        if copies:
            w("")
            w("Host-to-device copy of the batch (median): " +
              ", ".join(f"{who} {m:.3f} ms" for who, m in copies))
        others = [c for c in model_cnx if c.get("batch") == b and id(c) not in used]
        if others:
            w("")
            w("Other cnx rows at this batch:")
            w("")
            w("| cnx row | precision | variant | images/s | median ms | GPU median ms |")
            w("|---|---|---|---|---|---|")
            for c in others:
                g = c.get("gpu_ms")
                gm = num(g.get("median")) if isinstance(g, dict) else None
                w(f"| {label(c)} | {c.get('precision', '?')} | {c.get('variant', '?')} | {ips(c)} | "
                  f"{median_ms(c)} | {'' if gm is None else f'{gm:.3f}'} |")

    # ---- targets
    w("")
    w(f"## docs/design.md §8 targets ({TARGET_MODEL} {TARGET_SIZE}x{TARGET_SIZE}, batch {target_batch}, "
      f"cnx {TARGET_PRECISION})")
    w("")
    off = []
    if model != TARGET_MODEL:
        off.append(f"model {model}")
    if size != TARGET_SIZE:
        off.append(f"input {size}x{size}")
    if off:
        w(f"Note: this run measured {', '.join(off)}, not the §8 configuration; the verdicts "
          f"below are for what was measured.")
        w("")
    c = pick_cnx(model_cnx, TARGET_PRECISION, target_batch)
    for variant, goal, desc in TARGETS:
        t = next((r for r in torch_rows if r.get("variant") == variant and r.get("batch") == target_batch),
                 None)
        head = f"- cnx ≥ {goal:g}x {desc}:"
        if ok(c) and ok(t):
            x = ratio(c, t)
            verdict = "met" if x >= goal else "NOT met"
            w(f"{head} **{verdict}**: {label(c)} {c['throughput']:.1f} images/s / torch {variant} "
              f"{t['throughput']:.1f} images/s = {x:.2f}x (goal {goal:.2f}x)")
        else:
            why = []
            if c is None:
                why.append(f"no cnx {TARGET_PRECISION} row at batch {target_batch}")
            elif not ok(c):
                why.append(f"cnx {TARGET_PRECISION}: {ips(c)}")
            if t is None:
                why.append(f"no torch {variant} row at batch {target_batch}")
            elif not ok(t):
                why.append(f"torch {variant}: {ips(t)}")
            w(f"{head} not measured ({'; '.join(why)})")

    # ---- preprocess and end to end
    pipe = [r for r in cnx_rows if is_pipeline(r)]
    w("")
    w("## Preprocessing and end to end (cnx)")
    w("")
    if pipe:
        w("| cnx row | variant | batch | images/s | median ms | goal |")
        w("|---|---|---|---|---|---|")
        for r in sorted(pipe, key=lambda r: (PIPELINE_VARIANTS.index(r["variant"]), r.get("batch") or 0)):
            goal = ""
            if r["variant"] in ("preprocess", "preprocess+h2d"):
                if not ok(r):
                    goal = f"> {PREPROCESS_GOAL:.0f} images/s: not measured"
                elif not on_gpu(r):
                    goal = f"> {PREPROCESS_GOAL:.0f} images/s is for the GPU (this row ran on the CPU)"
                else:
                    met = "met" if r["throughput"] > PREPROCESS_GOAL else "NOT met"
                    goal = f"> {PREPROCESS_GOAL:.0f} images/s: **{met}**"
            w(f"| {label(r)} | {r['variant']} | {r.get('batch', '?')} | {ips(r)} | {median_ms(r)} | {goal} |")
    else:
        w("not measured (no preprocess or end-to-end rows)")

    # ---- errors and warnings
    errors = [(d.get("tool", "?"), r) for d in docs for r in d["results"]
              if isinstance(r, dict) and r.get("error")]
    if errors:
        w("")
        w("## Errors")
        w("")
        for tool, r in errors:
            w(f"- {tool}: {label(r)} {r.get('precision', '')} batch {r.get('batch', '?')}: {r['error']}")
    for d in docs:
        for x in d.get("warnings") or []:
            warnings.append(f"{d.get('tool', '?')}: {x}")
    w("")
    w("## Warnings")
    w("")
    if warnings:
        for x in dict.fromkeys(warnings):
            w(f"- {x}")
    else:
        w("none")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cnx", action="append", default=[], help="cnx-bench --json output (repeatable)")
    p.add_argument("--torch", action="append", default=[],
                   help="torch_baseline.py --json output (repeatable)")
    p.add_argument("--out", help="write the markdown here (default: stdout)")
    p.add_argument("--target-batch", type=int, default=256, help="batch of the §8 targets (default 256)")
    args = p.parse_args(argv)
    if not args.cnx and not args.torch:
        p.error("give at least one --cnx or --torch file")
    problems = []
    cnx_docs = [d for d in (load(f, problems) for f in args.cnx) if d]
    torch_docs = [d for d in (load(f, problems) for f in args.torch) if d]
    text = report(cnx_docs, torch_docs, problems, args.target_batch)
    if args.out:
        tmp = f"{args.out}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, args.out)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
