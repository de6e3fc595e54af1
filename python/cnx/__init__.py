"""cnx: ConvNeXt inference in C and CUDA, exact to the pixel against torchvision.

    import cnx
    with cnx.Engine("convnext_tiny.safetensors") as engine:
        result = engine.classify(["cat.png", "dog.jpg"], k=5)
    print(result.labels[0], result.probs[0])

Engine runs a model (classify, classify_iter, forward); preprocess, stats and
read_image work on images without one. Failures raise a cnx.Error subclass
whose message names the file and the cause.
"""
from . import _native
from ._engine import Engine, FileResults
from ._errors import (DeviceError, Error, FileError, ImageError, InternalError,
                      InvalidArgumentError, NoDeviceError, OutOfMemoryError, TooLargeError,
                      UnsupportedError, WeightsError)
from ._images import IMAGENET_MEAN, IMAGENET_STD, Stats, preprocess, read_image, stats
from ._inputs import find_images
from ._results import ClassifyResult, FileResult

__version__ = ".".join(map(str, _native.version))

__all__ = [
    "Engine", "FileResults", "ClassifyResult", "FileResult", "Stats",
    "preprocess", "stats", "read_image", "find_images", "IMAGENET_MEAN", "IMAGENET_STD",
    "Error", "InvalidArgumentError", "FileError", "WeightsError", "ImageError",
    "UnsupportedError", "TooLargeError", "OutOfMemoryError", "NoDeviceError", "DeviceError",
    "InternalError",
]
