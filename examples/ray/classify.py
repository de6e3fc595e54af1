#!/usr/bin/env python3
"""Classifies images across a Ray cluster with cnx: Ray Data's map_batches
over an actor pool, one cnx.Engine per actor (one GPU each on GPU machines).

    python classify.py -w W.safetensors --out OUT.jsonl INPUT...

INPUTs are image files or folders (read recursively, as `cnx classify`
does). OUT gets one JSON line per image, in input order:
{"path": P, "classes": [...], "labels": [...], "probs": [...]}, or
{"path": P, "error": MESSAGE}; an OUT ending in .parquet gets the same
columns as Parquet. On a cluster, every node must see the paths (a shared
file system): start Ray on each machine (`ray start --head` on one,
`ray start --address HEAD:6379` on the others) and run this with
--address auto on any of them.
"""
import argparse
import json
import os
import sys

import pandas as pd
import ray

import cnx

BATCHES_PER_BLOCK = 4  # the unit of work Ray hands an engine


class Classifier:
    """One engine per actor, loaded once; decoding uses only the CPUs Ray
    gave the actor."""

    def __init__(self, weights, device, precision, batch, k, labels):
        assigned = ray.get_runtime_context().get_assigned_resources()
        self.threads = max(1, int(assigned.get("CPU", 1)))
        # With num_gpus=1 Ray shows the actor just its GPU, as cuda:0.
        self.engine = cnx.Engine(weights, device=device, precision=precision,
                                 max_batch=batch, threads=self.threads, labels=labels)
        self.k = k

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        paths = batch["path"].tolist()
        result = self.engine.classify(paths, k=self.k, decode_threads=self.threads)
        failed = [error is not None for error in result.errors]
        return pd.DataFrame({
            "path": paths,
            "classes": [None if bad else row.tolist() for bad, row in zip(failed, result.indices)],
            "labels": [None if bad or result.labels is None else result.labels[i]
                       for i, bad in enumerate(failed)],
            "probs": [None if bad else row.tolist() for bad, row in zip(failed, result.probs)],
            "error": result.errors,
        })


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    parser.add_argument("-w", "--weights", required=True,
                        help=".safetensors file or checkpoint folder (every node must see it)")
    parser.add_argument("--out", required=True, help="OUT.jsonl, or OUT.parquet")
    parser.add_argument("-k", type=int, default=5, help="classes per image (default 5)")
    parser.add_argument("--labels", help="class names, one per line (default: the model's)")
    parser.add_argument("--batch", type=int, default=32, help="images per batch (default 32)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "tf32", "fp16", "bf16"),
                        help="the GPU's arithmetic (default fp32; the CPU computes fp32)")
    parser.add_argument("--actors", type=int, default=0,
                        help="engines (default: one per GPU of the cluster; without GPUs, one "
                             "per --cpus-per-actor CPUs, one CPU left to the read tasks)")
    parser.add_argument("--cpus-per-actor", type=int, default=1,
                        help="CPUs for each engine's decoding and, without a GPU, its model "
                             "(default 1); leave some to Ray's read tasks")
    parser.add_argument("--address", help="a running cluster (auto: the one on this machine); "
                                          "default: start a local one")
    parser.add_argument("--num-cpus", type=int,
                        help="CPUs of the local cluster (default: all; ignored with --address)")
    parser.add_argument("--host", default="127.0.0.1", help="the local cluster's address")
    return parser.parse_args()


def write_rows(dataset, out):
    """Streams the results to one file on the driver, in input order.
    Returns the number of failed images."""
    failed = 0
    if out.endswith(".parquet"):
        import pyarrow.parquet as pq
        writer = None
        for batch in dataset.iter_batches(batch_format="pyarrow"):
            writer = writer or pq.ParquetWriter(out, batch.schema)
            writer.write_table(batch)
            failed += len(batch) - batch["error"].null_count
        if writer:
            writer.close()
        return failed
    with open(out, "w", encoding="utf-8") as f:
        for row in dataset.iter_rows():
            failed += bool(row["error"])
            record = {"path": row["path"]}
            if row["error"]:
                record["error"] = row["error"]
            else:
                record.update(classes=list(row["classes"]), labels=row["labels"],
                              probs=[float(p) for p in row["probs"]])
                if record["labels"] is None:
                    del record["labels"]
                else:
                    record["labels"] = list(record["labels"])
            f.write(json.dumps(record) + "\n")
    return failed


def main():
    args = parse_arguments()
    paths = cnx.find_images(*args.inputs)
    if not paths:
        sys.exit(f"classify.py: no images in {' '.join(args.inputs)}")
    if args.address:
        ray.init(address=args.address, log_to_driver=False)
    else:
        ray.init(num_cpus=args.num_cpus, _node_ip_address=args.host, include_dashboard=False,
                 log_to_driver=False)
    try:
        failed = classify(args, paths)
    finally:
        ray.shutdown()
    print(f"classify.py: wrote {args.out}: {len(paths)} images, {failed} failed",
          file=sys.stderr)


def classify(args, paths):
    """Runs the actor pool over the paths and writes the results; returns
    the number of failed images."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpu_actors = (int(resources.get("CPU", 1)) - 1) // args.cpus_per_actor
    actors = args.actors or (gpus if gpus else max(cpu_actors, 1))
    print(f"classify.py: {len(paths)} images, {actors} engine(s) on "
          f"{'GPU' if gpus else 'CPU'}", file=sys.stderr)

    ray.data.DataContext.get_current().execution_options.preserve_order = True
    # Blocks of whole batches: each engine then sees the batches that
    # `cnx classify --batch B` makes of the same list, which gives the same
    # bits (a forward's rounding may depend on its batch).
    block = args.batch * BATCHES_PER_BLOCK
    dataset = ray.data.from_pandas([pd.DataFrame({"path": paths[i:i + block]})
                                    for i in range(0, len(paths), block)])
    results = dataset.map_batches(
        Classifier,
        fn_constructor_args=(os.path.abspath(args.weights), "cuda" if gpus else "cpu",
                             args.precision, args.batch, args.k,
                             args.labels and os.path.abspath(args.labels)),
        batch_size=args.batch, batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_gpus=1 if gpus else 0, num_cpus=args.cpus_per_actor)
    return write_rows(results, args.out)


if __name__ == "__main__":
    main()
