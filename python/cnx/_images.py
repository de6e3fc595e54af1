"""Images without a model: decoding, Pillow-exact preprocessing, statistics."""
import os
from typing import List, NamedTuple, Tuple

import numpy as np

from . import _native
from ._inputs import as_pixels, find_images, is_path

_DEFAULTS = _native.default_preprocess()  # torchvision's ImageNet ones
IMAGENET_MEAN = _DEFAULTS["mean"]
IMAGENET_STD = _DEFAULTS["std"]


def read_image(path, max_pixels=0):
    """A PNG or JPEG file as Image.open(path).convert("RGB") gives it: uint8
    [H, W, 3]. Over max_pixels (0: Pillow's decompression-bomb limit) raises."""
    if not is_path(path):
        raise TypeError(f"read_image takes a path, got {type(path).__name__}")
    return _native.read_image(os.fspath(path), int(max_pixels))


def _pixels_of(image):
    return read_image(image) if is_path(image) else as_pixels(image)


def preprocess(image, resize=_DEFAULTS["resize"], crop=_DEFAULTS["crop"], mean=IMAGENET_MEAN,
               std=IMAGENET_STD, normalize=True, *, interpolation="bilinear",
               crop_mode="center", crop_offset="round", rescale_factor=0.0, pixels=False):
    """The model input of one image, bit-identical to torchvision's
    Resize(resize) -> CenterCrop(crop) -> ToTensor() -> Normalize(mean, std)
    on a PIL image: float32 [3, crop, crop]. With pixels=True, the uint8
    pixels after the crop instead, planar [3, crop, crop].

    image: a path, a uint8 numpy array [H, W, 3] or a PIL image.
    interpolation, crop_mode, crop_offset and rescale_factor reproduce timm's
    and Hugging Face's transforms (see the README).
    """
    settings = dict(resize=resize, crop=crop, mean=mean, std=std, normalize=bool(normalize),
                    interpolation=interpolation, crop_mode=crop_mode, crop_offset=crop_offset,
                    rescale_factor=rescale_factor)
    return _native.preprocess(_pixels_of(image), settings, bool(pixels))


class Stats(NamedTuple):
    mean: Tuple[float, float, float]  # per channel (R, G, B) on the [0,1] scale
    std: Tuple[float, float, float]   # sample standard deviation, as torch.std
    pixels: int                       # pixels per channel that were counted
    images: int                       # images used
    errors: List[str]                 # the files left out, with their causes


def stats(paths, resize=None, crop=None, *, interpolation="bilinear", crop_mode="center",
          crop_offset="round"):
    """Per-channel mean and std over all pixels of all images, on the [0,1]
    scale: the values for `mean` and `std`, as `cnx stats` computes them.

    paths: files or folders (read recursively, as the CLI does).
    resize, crop: Resize(resize) and/or CenterCrop(crop) first; None: the
    images as decoded. A file that cannot be read is left out and named in
    .errors; when none can be read, the first one's error is raised.
    """
    if is_path(paths):
        paths = [paths]
    files = find_images(*paths)
    transform = None
    if resize is not None or crop is not None:
        transform = dict(resize=resize or 0, crop=crop or 0, interpolation=interpolation,
                         crop_mode=crop_mode, crop_offset=crop_offset)
    mean, std, pixels, images, errors = _native.stats(files, transform, 0)
    return Stats(mean, std, pixels, images, errors)
