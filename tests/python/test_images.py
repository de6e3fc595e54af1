"""cnx.preprocess, cnx.stats and cnx.read_image against torchvision, Pillow
and the cnx command."""
import json
import os
import subprocess

import numpy as np
import pytest
from PIL import Image

import cnx
from conftest import DIGITS_TEST, PHOTOS, run_cli

HERE = os.path.dirname(__file__)
CUSTOM_MEAN, CUSTOM_STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """The test photos, and noise of awkward sizes (the hardest input for rounding)."""
    folder = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(0)
    noise = []
    for width, height in ((37, 23), (3, 5), (640, 3), (300, 200)):
        path = folder / f"noise_{width}x{height}.png"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
        noise.append(str(path))
    return cnx.find_images(PHOTOS) + noise


def torchvision_outputs(jobs, tmp_path):
    jobs_file, out = tmp_path / "jobs.json", tmp_path / "reference.npz"
    jobs_file.write_text(json.dumps(jobs))
    python = os.environ.get("CNX_REFERENCE_PYTHON", "/usr/bin/python3")
    subprocess.run([python, os.path.join(HERE, "torchvision_reference.py"), str(jobs_file),
                    str(out)], check=True, timeout=600)
    reference = np.load(out)
    return [reference[f"job{i}"] for i in range(len(jobs))]


def test_preprocess_is_bit_identical_to_torchvision(images, tmp_path):
    settings = [(236, 224, "float", cnx.IMAGENET_MEAN, cnx.IMAGENET_STD),
                (256, 224, "float", CUSTOM_MEAN, CUSTOM_STD),
                (37, 32, "float", cnx.IMAGENET_MEAN, cnx.IMAGENET_STD),
                (236, 224, "scaled", cnx.IMAGENET_MEAN, cnx.IMAGENET_STD),
                (64, 48, "pixels", cnx.IMAGENET_MEAN, cnx.IMAGENET_STD)]
    jobs = [[path, resize, crop, mode, list(mean), list(std)]
            for path in images for resize, crop, mode, mean, std in settings]
    expected = torchvision_outputs(jobs, tmp_path)
    for (path, resize, crop, mode, mean, std), want in zip(jobs, expected):
        got = cnx.preprocess(path, resize=resize, crop=crop, mean=mean, std=std,
                             normalize=mode == "float", pixels=mode == "pixels")
        assert got.dtype == want.dtype and got.shape == want.shape, (path, resize, crop, mode)
        assert np.array_equal(got, want), (path, resize, crop, mode)


def test_preprocess_takes_arrays_and_pil_images(images):
    for path in images[:3]:
        from_file = cnx.preprocess(path)
        assert np.array_equal(cnx.preprocess(cnx.read_image(path)), from_file)
        assert np.array_equal(cnx.preprocess(Image.open(path)), from_file)


def test_preprocess_takes_numpy_numbers(images):
    plain = cnx.preprocess(images[0], resize=40, crop=32, mean=(0.5, 0.4, 0.3))
    numpy = cnx.preprocess(images[0], resize=np.int64(40), crop=np.int32(32),
                           mean=np.array([0.5, 0.4, 0.3], dtype=np.float32),
                           normalize=np.bool_(True))
    assert np.array_equal(plain, numpy)


def test_read_image_equals_pillow(images):
    for path in images:
        with Image.open(path) as img:
            assert np.array_equal(cnx.read_image(path), np.asarray(img.convert("RGB"))), path


@pytest.mark.parametrize("transform", [[], ["--resize", 36, "--crop", 32], ["--crop", 6]])
def test_stats_equal_cli(cli, transform):
    expected = run_cli(cli, "stats", "--json", *transform, DIGITS_TEST)[0]
    options = dict(zip((flag.strip("-") for flag in transform[::2]), transform[1::2]))
    got = cnx.stats(DIGITS_TEST, **options)
    assert got.images == 450 and got.errors == []
    assert got.pixels == expected["pixels_per_channel"]
    # The CLI prints 9 significant digits.
    assert np.allclose(got.mean, expected["mean"], rtol=1e-8, atol=0)
    assert np.allclose(got.std, expected["std"], rtol=1e-8, atol=0)


def test_stats_leave_a_bad_file_out(tmp_path, digits_files, corrupt_png):
    good = cnx.stats(digits_files[:3])
    with_bad = cnx.stats([corrupt_png, *digits_files[:3]])
    assert with_bad.images == 3 and len(with_bad.errors) == 1
    assert corrupt_png in with_bad.errors[0]
    assert with_bad.mean == good.mean and with_bad.std == good.std


def test_bad_arguments_raise(images, tmp_path):
    with pytest.raises(TypeError):
        cnx.preprocess(3)
    with pytest.raises(ValueError):
        cnx.preprocess(np.zeros((4, 4, 4), dtype=np.uint8))
    with pytest.raises(ValueError):
        cnx.preprocess(images[0], mean=(0.5, 0.5))
    with pytest.raises(ValueError):
        cnx.preprocess(images[0], interpolation="nearest-ish")
    with pytest.raises(cnx.UnsupportedError):
        cnx.preprocess(images[0], interpolation="nearest")  # refused by cnx, as documented
    with pytest.raises(ValueError):
        cnx.preprocess(images[0], crop=0)
    with pytest.raises(cnx.FileError, match="nothing.png"):
        cnx.read_image(tmp_path / "nothing.png")
    with pytest.raises(cnx.Error):
        cnx.stats([str(tmp_path / "nothing.png")])  # no image at all could be read
