"""What the API takes as an image, and folders of images as the CLI reads them."""
import os

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def is_path(item):
    return isinstance(item, (str, os.PathLike))


def _is_pil_image(item):
    # Pillow is optional: anything of its Image class counts, without importing it.
    return any(c.__module__.startswith("PIL.") and c.__name__ == "Image"
               for c in type(item).__mro__)


def as_pixels(item, what="image"):
    """An image as contiguous uint8 [H, W, 3]: a numpy array as it is, a PIL
    image through .convert("RGB") (what Image.open(p).convert("RGB") gives,
    which cnx decodes files to)."""
    if _is_pil_image(item):
        item = np.asarray(item.convert("RGB"))
    if not isinstance(item, np.ndarray):
        raise TypeError(f"{what}: expected a path, a uint8 numpy array [H, W, 3] or a PIL "
                        f"image, got {type(item).__name__}")
    if item.dtype != np.uint8 or item.ndim != 3 or item.shape[2] != 3:
        raise ValueError(f"{what}: expected uint8 [H, W, 3] (RGB), got {item.dtype} "
                         f"{list(item.shape)}")
    return np.ascontiguousarray(item)


def find_images(*paths):
    """Files as they are and folders expanded, as `cnx classify` reads them:
    recursively, sorted by name, hidden entries skipped, .png/.jpg/.jpeg in
    any case, a link back to a folder above not followed."""
    found = []

    def walk(folder, above):
        key = os.stat(folder)
        key = (key.st_dev, key.st_ino)
        if key in above:
            return
        names = sorted((n for n in os.listdir(folder) if not n.startswith(".")),
                       key=os.fsencode)
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isdir(path):
                walk(path, above | {key})
            elif name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(path)

    for path in map(os.fspath, paths):
        if os.path.isdir(path):
            walk(path, frozenset())
        else:
            found.append(path)
    return found
