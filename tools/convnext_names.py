#!/usr/bin/python3
"""ConvNeXt parameter names: torchvision's scheme, timm's, and the mapping.

torchvision (torchvision.models.convnext)      timm (timm.models.convnext)
  features.0.0.{weight,bias}                     stem.0.*            stem conv 4x4/4
  features.0.1.{weight,bias}                     stem.1.*            stem LayerNorm
  features.{2s+1}.{j}.block.0.*                  stages.s.blocks.j.conv_dw.*
  features.{2s+1}.{j}.block.2.*                  stages.s.blocks.j.norm.*
  features.{2s+1}.{j}.block.3.*                  stages.s.blocks.j.mlp.fc1.*
  features.{2s+1}.{j}.block.5.*                  stages.s.blocks.j.mlp.fc2.*
  features.{2s+1}.{j}.layer_scale  [C,1,1]       stages.s.blocks.j.gamma  [C]
  features.{2s}.0.*   (s >= 1)                   stages.s.downsample.0.*  LayerNorm
  features.{2s}.1.*   (s >= 1)                   stages.s.downsample.1.*  conv 2x2/2
  classifier.0.*                                 head.norm.*
  classifier.2.*                                 head.fc.*

(timm's small variants, atto..nano, use 1x1 convs for the MLP: fc1/fc2
weights there are [4C,C,1,1] and [C,4C,1,1] instead of [4C,C] and [C,4C].)

This module is the one place that knows the mapping; convert_weights.py,
make_reference.py and the tests import it. Standard library only.
"""

import re

__all__ = [
    "torchvision_to_timm", "timm_to_torchvision", "rename_state_dict",
    "parameter_shapes", "TORCHVISION", "TIMM",
]

TORCHVISION = "torchvision"
TIMM = "timm"

_BLOCK_TV_TO_TIMM = {"block.0": "conv_dw", "block.2": "norm", "block.3": "mlp.fc1",
                     "block.5": "mlp.fc2"}
_BLOCK_TIMM_TO_TV = {v: k for k, v in _BLOCK_TV_TO_TIMM.items()}

_TV_STEM = re.compile(r"^features\.0\.([01])\.(weight|bias)$")
_TV_BLOCK = re.compile(r"^features\.(\d+)\.(\d+)\.(block\.[0235])\.(weight|bias)$")
_TV_SCALE = re.compile(r"^features\.(\d+)\.(\d+)\.layer_scale$")
_TV_DOWN = re.compile(r"^features\.(\d+)\.([01])\.(weight|bias)$")
_TV_HEAD = re.compile(r"^classifier\.([02])\.(weight|bias)$")

_TIMM_STEM = re.compile(r"^stem\.([01])\.(weight|bias)$")
_TIMM_BLOCK = re.compile(r"^stages\.(\d+)\.blocks\.(\d+)\.(conv_dw|norm|mlp\.fc1|mlp\.fc2)\.(weight|bias)$")
_TIMM_GAMMA = re.compile(r"^stages\.(\d+)\.blocks\.(\d+)\.gamma$")
_TIMM_DOWN = re.compile(r"^stages\.(\d+)\.downsample\.([01])\.(weight|bias)$")
_TIMM_HEAD = re.compile(r"^head\.(norm|fc)\.(weight|bias)$")


def torchvision_to_timm(name):
    """timm's name for a torchvision ConvNeXt parameter; None if the name is
    not one."""
    m = _TV_STEM.match(name)
    if m:
        return f"stem.{m[1]}.{m[2]}"
    m = _TV_BLOCK.match(name)
    if m and int(m[1]) % 2 == 1:
        return f"stages.{(int(m[1]) - 1) // 2}.blocks.{m[2]}.{_BLOCK_TV_TO_TIMM[m[3]]}.{m[4]}"
    m = _TV_SCALE.match(name)
    if m and int(m[1]) % 2 == 1:
        return f"stages.{(int(m[1]) - 1) // 2}.blocks.{m[2]}.gamma"
    m = _TV_DOWN.match(name)
    if m and int(m[1]) % 2 == 0 and int(m[1]) >= 2:
        return f"stages.{int(m[1]) // 2}.downsample.{m[2]}.{m[3]}"
    m = _TV_HEAD.match(name)
    if m:
        return f"head.{'norm' if m[1] == '0' else 'fc'}.{m[2]}"
    return None


def timm_to_torchvision(name):
    """torchvision's name for a timm ConvNeXt parameter; None if the name is
    not one."""
    m = _TIMM_STEM.match(name)
    if m:
        return f"features.0.{m[1]}.{m[2]}"
    m = _TIMM_BLOCK.match(name)
    if m:
        return f"features.{2 * int(m[1]) + 1}.{m[2]}.{_BLOCK_TIMM_TO_TV[m[3]]}.{m[4]}"
    m = _TIMM_GAMMA.match(name)
    if m:
        return f"features.{2 * int(m[1]) + 1}.{m[2]}.layer_scale"
    m = _TIMM_DOWN.match(name)
    if m and int(m[1]) >= 1:
        return f"features.{2 * int(m[1])}.{m[2]}.{m[3]}"
    m = _TIMM_HEAD.match(name)
    if m:
        return f"classifier.{'0' if m[1] == 'norm' else '2'}.{m[2]}"
    return None


def rename_state_dict(state_dict, to):
    """A new dict with every tensor renamed to the scheme `to` ("timm" or
    "torchvision"), in the same order. Layer scale is reshaped between
    torchvision's [C,1,1] and timm's [C]; every other tensor is passed on
    as it is (the same object). Raises KeyError naming the first tensor that
    is not a ConvNeXt parameter of the other scheme."""
    if to not in (TIMM, TORCHVISION):
        raise ValueError(f"to must be {TIMM!r} or {TORCHVISION!r}, not {to!r}")
    rename = torchvision_to_timm if to == TIMM else timm_to_torchvision
    out = {}
    for name, tensor in state_dict.items():
        new = rename(name)
        if new is None:
            raise KeyError(f"{name!r} is not a {'torchvision' if to == TIMM else 'timm'} "
                           f"ConvNeXt parameter name")
        if new.endswith(".gamma"):
            tensor = tensor.reshape(-1)
        elif new.endswith(".layer_scale"):
            tensor = tensor.reshape(-1, 1, 1)
        out[new] = tensor
    return out


def parameter_shapes(depths, widths, num_classes, naming=TORCHVISION, conv_mlp=False):
    """The full list of (name, shape) of a ConvNeXt with these depths, widths
    and classes, in the order PyTorch's state_dict lists them. naming:
    "torchvision" or "timm". conv_mlp: timm's 1x1-conv MLP (atto..nano)."""
    if len(depths) != len(widths) or not depths:
        raise ValueError("depths and widths must be non-empty and of equal length")
    tv = []
    c0 = widths[0]
    tv += [("features.0.0.weight", (c0, 3, 4, 4)), ("features.0.0.bias", (c0,)),
           ("features.0.1.weight", (c0,)), ("features.0.1.bias", (c0,))]
    for s, (d, c) in enumerate(zip(depths, widths)):
        if s >= 1:
            p = widths[s - 1]
            tv += [(f"features.{2 * s}.0.weight", (p,)), (f"features.{2 * s}.0.bias", (p,)),
                   (f"features.{2 * s}.1.weight", (c, p, 2, 2)), (f"features.{2 * s}.1.bias", (c,))]
        for j in range(d):
            b = f"features.{2 * s + 1}.{j}"
            tv += [(f"{b}.layer_scale", (c, 1, 1)),
                   (f"{b}.block.0.weight", (c, 1, 7, 7)), (f"{b}.block.0.bias", (c,)),
                   (f"{b}.block.2.weight", (c,)), (f"{b}.block.2.bias", (c,)),
                   (f"{b}.block.3.weight", (4 * c, c)), (f"{b}.block.3.bias", (4 * c,)),
                   (f"{b}.block.5.weight", (c, 4 * c)), (f"{b}.block.5.bias", (c,))]
    cl = widths[-1]
    tv += [("classifier.0.weight", (cl,)), ("classifier.0.bias", (cl,)),
           ("classifier.2.weight", (num_classes, cl)), ("classifier.2.bias", (num_classes,))]
    if naming == TORCHVISION:
        return tv
    if naming != TIMM:
        raise ValueError(f"naming must be {TIMM!r} or {TORCHVISION!r}, not {naming!r}")
    out = []
    for name, shape in tv:
        new = torchvision_to_timm(name)
        if new.endswith(".gamma"):
            shape = (shape[0],)
        elif conv_mlp and (".mlp.fc1.weight" in new or ".mlp.fc2.weight" in new):
            shape = shape + (1, 1)
        out.append((new, shape))
    # timm's state_dict puts each stage's downsample before its blocks, and its
    # blocks list gamma last; keep the same set, ordered as timm orders it.
    order = {"stem": 0, "stages": 1, "head": 2}

    def key(item):
        parts = item[0].split(".")
        if parts[0] != "stages":
            return (order[parts[0]], 0, 0, 0, 0)
        s = int(parts[1])
        if parts[2] == "downsample":
            return (1, s, 0, 0, 0)
        field = ["conv_dw", "norm", "mlp", "gamma"].index(parts[4])
        return (1, s, 1, int(parts[3]), field)

    return sorted(out, key=key)
