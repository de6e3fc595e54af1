#!/usr/bin/python3
"""Checks that libcnx's layers call only downward.

Input: a file with one line per layer, "NAME|USED,LAYERS|OBJECT,FILES"
(written by tests/layers/CMakeLists.txt). A layer may use a symbol that
another layer's objects define only if that layer is among those it uses,
directly or through them. Prints each violation as
"LAYER uses SYMBOL from HIGHER (FILE)" and exits 1 if there are any.
"""

import argparse
import subprocess
import sys


def read_layers(path):
    layers = {}
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            name, uses, objects = line.rstrip("\n").split("|")
            layers[name] = {"uses": [u for u in uses.split(",") if u],
                            "objects": [o for o in objects.split(",") if o]}
    return layers


def symbols(nm, obj, *flags):
    out = subprocess.run([nm, "-P", *flags, obj], check=True, capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def below(layers, name):
    """Every layer that `name` uses, directly or through the layers it uses."""
    seen, todo = set(), list(layers[name]["uses"])
    while todo:
        used = todo.pop()
        if used not in seen:
            seen.add(used)
            todo.extend(layers.get(used, {"uses": []})["uses"])
    return seen


def violations(layers, defined_by, undefined):
    """(layer, symbol, defining layer, object) for each call that is not downward."""
    found = []
    for name in layers:
        allowed = below(layers, name) | {name}
        for obj, syms in undefined[name].items():
            for sym in sorted(syms):
                owner = defined_by.get(sym)
                if owner and owner not in allowed:
                    found.append((name, sym, owner, obj))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nm", default="nm")
    parser.add_argument("layers")
    args = parser.parse_args()
    layers = read_layers(args.layers)
    if len(layers) < 5 or not all(layer["objects"] for layer in layers.values()):
        print(f"error: {args.layers} lists {len(layers)} layers, not each with its objects")
        return 1
    defined_by, undefined = {}, {}
    for name, layer in layers.items():
        undefined[name] = {}
        for obj in layer["objects"]:
            for sym in symbols(args.nm, obj, "--defined-only", "-g"):
                defined_by[sym] = name
            undefined[name][obj] = symbols(args.nm, obj, "-u")
    found = violations(layers, defined_by, undefined)
    for name, sym, owner, obj in found:
        print(f"{name} uses {sym} from {owner}, a layer above it or beside it ({obj})")
    calls = sum(1 for n in layers for syms in undefined[n].values() for s in syms
                if defined_by.get(s) not in (None, n))
    print(f"{len(layers)} layers, {calls} calls between layers, {len(found)} not downward")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
