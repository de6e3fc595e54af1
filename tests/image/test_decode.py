#!/usr/bin/python3
"""cnx's PNG/JPEG decoding against Pillow's Image.open(path).convert("RGB").

Generates edge-case images into --work, decodes them with decode_dump (cnx)
and with Pillow, and requires zero differing pixels. Then feeds broken and
unsupported files and requires, for each, a failure with a one-line message
that names the file and the cause, while the good files in the same run still
decode. Prints "N passed, N failed" last; exits 1 on any failure.
"""
import argparse
import io
import os
import shutil
import struct
import subprocess
import sys
import warnings
import zlib

import numpy as np
from PIL import Image, features

DEFAULT_MAX_PIXELS = 178956970  # CNX_DEFAULT_MAX_PIXELS
CRASH_EXIT = 86  # what a sanitizer report exits with here


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, name, detail=""):
        print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok


# --------------------------------------------------------------- PNG writer
# Pillow cannot write 16-bit color, 2/4-bit gray, tRNS tables or interlaced
# PNGs, so the test writes those itself.

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind, data, crc=None):
    crc = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_rows(samples, depth):
    """Filter-type-0 scanlines for an [H, W, C] array of sample values."""
    h, w, c = samples.shape
    if depth == 16:
        flat = samples.astype(">u2").reshape(h, w * c)
        return [b"\0" + row.tobytes() for row in flat]
    if depth == 8:
        return [b"\0" + row.tobytes() for row in samples.astype(np.uint8).reshape(h, w * c)]
    per_byte = 8 // depth
    padded = np.zeros((h, -(-w // per_byte) * per_byte), np.uint8)
    padded[:, :w] = samples[:, :, 0]
    packed = np.zeros((h, padded.shape[1] // per_byte), np.uint8)
    for i in range(per_byte):
        packed |= (padded[:, i::per_byte] << (8 - depth * (i + 1))).astype(np.uint8)
    return [b"\0" + row.tobytes() for row in packed]


def make_png(samples, depth, color_type, palette=None, trns=None, interlace=False,
             before_idat=(), idat=None, idat_pieces=1, iend=True, size=None):
    """PNG bytes. samples: [H, W] or [H, W, C]; idat overrides the compressed
    data; size overrides the IHDR's (width, height)."""
    if samples.ndim == 2:
        samples = samples[:, :, None]
    h, w = samples.shape[:2]
    width, height = size or (w, h)
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 1 if interlace else 0)
    if interlace:
        rows = []
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                rows += png_rows(sub, depth)
    else:
        rows = png_rows(samples, depth)
    data = zlib.compress(b"".join(rows)) if idat is None else idat
    out = PNG_SIGNATURE + png_chunk(b"IHDR", ihdr)
    out += b"".join(png_chunk(kind, body) for kind, body in before_idat)
    if palette is not None:
        out += png_chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    step = -(-len(data) // idat_pieces) if data else 1
    for i in range(0, max(len(data), 1), step):
        out += png_chunk(b"IDAT", data[i:i + step])
    return out + (png_chunk(b"IEND", b"") if iend else b"")


def pillow_bytes(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# ------------------------------------------------------------- JPEG surgery

def jpeg_segments(data):
    """[(marker, bytes)] from SOI to EOI; an SOS segment includes its
    entropy-coded data."""
    segments = [(0xD8, data[:2])]
    i = 2
    while i + 1 < len(data):
        marker = data[i + 1]
        if marker == 0xD9:
            segments.append((marker, data[i:i + 2]))
            break
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        end = i + 2 + length
        if marker == 0xDA:
            while not (data[end] == 0xFF and data[end + 1] != 0 and not 0xD0 <= data[end + 1] <= 0xD7):
                end += 1
        segments.append((marker, data[i:end]))
        i = end
    return segments


def jpeg_with_size(data, width, height):
    out = b""
    for marker, body in jpeg_segments(data):
        if marker in (0xC0, 0xC1, 0xC2):
            body = body[:5] + struct.pack(">HH", height, width) + body[9:]
        out += body
    return out


def jpeg_with_repeated_first_scan(data, copies):
    """The first scan of a progressive JPEG (DC, which decodes the same
    whatever came before) repeated: libjpeg only warns about the progression."""
    segments = jpeg_segments(data)
    first = min(i for i, (marker, _) in enumerate(segments) if marker == 0xDA)
    return b"".join(s for _, s in segments[:first]) + segments[first][1] * copies + \
        b"".join(s for _, s in segments[first + 1:])


def jpeg_entropy_offset(data):
    """Where the first scan's entropy-coded data starts."""
    offset = 0
    for marker, body in jpeg_segments(data):
        if marker == 0xDA:
            return offset + 2 + struct.unpack(">H", body[2:4])[0]
        offset += len(body)
    raise ValueError("no scan")


# ----------------------------------------------------------------- decoding

def run_decode_dump(tool, items, out_dir, extra_args=()):
    """Decodes [(name, path)] in one decode_dump run. Returns (exit code,
    {path: ("ok", "WxH") or ("error", status, message)}, stderr)."""
    os.makedirs(out_dir, exist_ok=True)
    args = [tool, *extra_args]
    for name, path in items:
        args += [path, os.path.join(out_dir, name + ".npy")]
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = f"exitcode={CRASH_EXIT}:" + env.get("ASAN_OPTIONS", "")
    env["UBSAN_OPTIONS"] = f"exitcode={CRASH_EXIT}:print_stacktrace=1:" + env.get("UBSAN_OPTIONS", "")
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=240)
    results = {}
    lines = proc.stdout.splitlines()
    for line in lines:
        fields = line.split("\t")
        results[fields[1]] = (fields[0], *fields[2:])
    if len(lines) != len(items):
        results["<line count>"] = ("error", "", f"{len(lines)} lines for {len(items)} images")
    return proc.returncode, results, proc.stderr


def crashed(checks, label, code, stderr):
    bad = code not in (0, 1) or "Sanitizer" in stderr or "runtime error" in stderr
    if bad:
        checks.check(False, label, f"decode_dump exited {code}: {stderr.strip()[-2000:]}")
    return bad


def pillow_rgb(path):
    with warnings.catch_warnings():  # e.g. about palette transparency, which convert("RGB") drops
        warnings.simplefilter("ignore")
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))


def pillow_outcome(path):
    try:
        return pillow_rgb(path), None
    except Exception as error:  # Pillow raises many kinds for broken files
        return None, f"{type(error).__name__}: {error}"


def compare_pixels(checks, label, path, npy_path):
    ours = np.load(npy_path)
    reference = pillow_rgb(path)
    if ours.shape != reference.shape:
        return checks.check(False, label, f"shape {ours.shape}, Pillow {reference.shape}")
    differing = int(np.any(ours != reference, axis=2).sum())
    h, w = reference.shape[:2]
    return checks.check(differing == 0, label, f"{w}x{h}, {differing} differing pixels")


# ------------------------------------------------------------- good images

def source_pixels(testdata):
    """A real photograph to draw test images from (noise if none)."""
    path = os.path.join(testdata, "chelsea.png")
    if os.path.exists(path):
        return pillow_rgb(path)
    return np.random.default_rng(1).integers(0, 256, (300, 451, 3), dtype=np.uint8)


def photo(source, w, h):
    reps = (-(-h // source.shape[0]), -(-w // source.shape[1]), 1)
    return np.ascontiguousarray(np.tile(source, reps)[:h, :w])


def good_images(work, testdata, make_jpeg_tool):
    """{name: path} of images cnx must decode exactly as Pillow."""
    rng = np.random.default_rng(7)
    source = source_pixels(testdata)
    files = {}

    def put(name, data):
        path = os.path.join(work, name)
        with open(path, "wb") as f:
            f.write(data)
        files[name] = path

    def rgb(w, h):
        return photo(source, w, h)

    def gray(w, h):
        return np.asarray(Image.fromarray(rgb(w, h)).convert("L"))

    # Pillow-written PNGs.
    put("L_37x23.png", pillow_bytes(Image.fromarray(gray(37, 23)), "PNG"))
    put("bilevel_29x7.png", pillow_bytes(Image.fromarray(gray(29, 7)).convert("1"), "PNG"))
    la = np.dstack([gray(31, 17), rng.integers(0, 256, (17, 31), dtype=np.uint8)])
    put("LA_31x17.png", pillow_bytes(Image.fromarray(la, "LA"), "PNG"))
    put("RGB_45x31.png", pillow_bytes(Image.fromarray(rgb(45, 31)), "PNG"))
    alpha = rng.integers(0, 256, (29, 41), dtype=np.uint8)
    alpha[0, :] = 0
    alpha[1, :] = 255
    put("RGBA_varied_alpha_41x29.png",
        pillow_bytes(Image.fromarray(np.dstack([rgb(41, 29), alpha]), "RGBA"), "PNG"))
    paletted = Image.fromarray(rgb(50, 40)).quantize(colors=200)
    put("P_8bit_50x40.png", pillow_bytes(paletted, "PNG"))
    put("P_transparency_index_50x40.png", pillow_bytes(paletted, "PNG", transparency=3))
    put("P_bits4_50x40.png", pillow_bytes(Image.fromarray(rgb(50, 40)).quantize(colors=16), "PNG", bits=4))
    put("I16_gray_pillow_23x19.png",
        pillow_bytes(Image.fromarray(rng.integers(0, 1024, (19, 23), dtype=np.uint16), "I;16"), "PNG"))
    put("RGB_1x1.png", pillow_bytes(Image.fromarray(rgb(1, 1)), "PNG"))
    put("L_1x1.png", pillow_bytes(Image.fromarray(gray(1, 1)), "PNG"))
    put("RGB_panorama_1500x2.png", pillow_bytes(Image.fromarray(rgb(1500, 2)), "PNG"))
    put("RGB_tower_2x700.png", pillow_bytes(Image.fromarray(rgb(2, 700)), "PNG"))
    complete = pillow_bytes(Image.fromarray(rgb(64, 48)), "PNG")
    put("RGB_without_IEND_64x48.png", complete[:-12])
    put("RGB_trailing_bytes_64x48.png", complete + b"garbage after IEND")

    # Hand-written PNGs: depths, tables and layouts Pillow does not write.
    for depth in (1, 2, 4):
        values = rng.integers(0, 1 << depth, (5, 13), dtype=np.uint8)
        put(f"gray{depth}_13x5.png", make_png(values, depth, 0))
        colors = rng.integers(0, 256, (1 << depth, 3))
        put(f"palette{depth}_13x5.png", make_png(values, depth, 3, palette=colors))
    short_palette = rng.integers(0, 256, (5, 3))
    put("palette4_short_PLTE_15x9.png",
        make_png(rng.integers(0, 5, (9, 15), dtype=np.uint8), 4, 3, palette=short_palette))
    indices = rng.integers(0, 8, (11, 19), dtype=np.uint8)
    put("palette8_tRNS_alphas_19x11.png",
        make_png(indices, 8, 3, palette=rng.integers(0, 256, (8, 3)), trns=bytes([0, 255, 128, 7, 200])))
    put("gray8_tRNS_21x7.png", make_png(gray(21, 7), 8, 0, trns=struct.pack(">H", 12)))
    put("RGB8_tRNS_21x7.png", make_png(rgb(21, 7), 8, 2, trns=struct.pack(">HHH", 1, 2, 3)))
    gray16 = rng.integers(0, 65536, (19, 23), dtype=np.uint16)
    gray16[0, :] = rng.integers(0, 256, 23)  # some within 0..255, where clipping keeps the value
    put("gray16_23x19.png", make_png(gray16, 16, 0))
    put("gray16_tRNS_23x19.png", make_png(gray16, 16, 0, trns=struct.pack(">H", 300)))
    put("LA16_23x19.png", make_png(rng.integers(0, 65536, (19, 23, 2), dtype=np.uint16), 16, 4))
    rgb16 = rng.integers(0, 65536, (19, 23, 3), dtype=np.uint16)
    rgb16[0, :, :] = 0x12FF  # the low byte would round the high byte up if rounded
    put("RGB16_23x19.png", make_png(rgb16, 16, 2))
    put("RGBA16_23x19.png", make_png(rng.integers(0, 65536, (19, 23, 4), dtype=np.uint16), 16, 6))
    put("RGB16_tRNS_23x19.png", make_png(rgb16, 16, 2, trns=struct.pack(">HHH", 1, 2, 3)))
    put("RGB_gamma_sRGB_iCCP_chunks_33x21.png",
        make_png(rgb(33, 21), 8, 2, before_idat=[
            (b"gAMA", struct.pack(">I", 100000)), (b"sRGB", b"\0"),
            (b"cHRM", struct.pack(">8I", *[31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000])),
            (b"tEXt", b"Comment\0made by test_decode.py"), (b"teSt", b"an unknown ancillary chunk")]))
    put("RGB_many_IDATs_33x21.png", make_png(rgb(33, 21), 8, 2, idat_pieces=40))
    raw = b"".join(png_rows(rgb(33, 21), 8))
    put("RGB_stored_zlib_33x21.png", make_png(rgb(33, 21), 8, 2, idat=zlib.compress(raw, 0)))

    # Interlaced (Adam7), including images smaller than one 8x8 block.
    put("interlaced_RGB8_33x17.png", make_png(rgb(33, 17), 8, 2, interlace=True))
    put("interlaced_RGB8_1x1.png", make_png(rgb(1, 1), 8, 2, interlace=True))
    put("interlaced_RGB8_2x3.png", make_png(rgb(2, 3), 8, 2, interlace=True))
    put("interlaced_RGBA16_9x7.png",
        make_png(rng.integers(0, 65536, (7, 9, 4), dtype=np.uint16), 16, 6, interlace=True))
    put("interlaced_gray2_11x5.png",
        make_png(rng.integers(0, 4, (5, 11), dtype=np.uint8), 2, 0, interlace=True))
    put("interlaced_gray16_6x5.png", make_png(gray16[:5, :6], 16, 0, interlace=True))
    put("interlaced_palette4_10x10.png",
        make_png(rng.integers(0, 16, (10, 10), dtype=np.uint8), 4, 3, palette=rng.integers(0, 256, (16, 3)),
                 interlace=True))
    put("interlaced_LA8_5x9.png", make_png(rng.integers(0, 256, (9, 5, 2), dtype=np.uint8), 8, 4, interlace=True))

    # Pillow-written JPEGs.
    for w, h in ((45, 31), (173, 97), (3, 2)):
        for subsampling, label in ((2, "420"), (1, "422"), (0, "444")):
            put(f"jpeg_{label}_{w}x{h}.jpg",
                pillow_bytes(Image.fromarray(rgb(w, h)), "JPEG", quality=90, subsampling=subsampling))
    put("jpeg_progressive_420_173x97.jpg",
        pillow_bytes(Image.fromarray(rgb(173, 97)), "JPEG", quality=85, progressive=True))
    put("jpeg_progressive_444_61x47.jpg",
        pillow_bytes(Image.fromarray(rgb(61, 47)), "JPEG", progressive=True, subsampling=0))
    put("jpeg_optimized_61x47.jpg", pillow_bytes(Image.fromarray(rgb(61, 47)), "JPEG", optimize=True))
    put("jpeg_gray_61x47.jpg", pillow_bytes(Image.fromarray(gray(61, 47)), "JPEG"))
    put("jpeg_gray_progressive_61x47.jpg", pillow_bytes(Image.fromarray(gray(61, 47)), "JPEG", progressive=True))
    cmyk = Image.fromarray(rng.integers(0, 256, (23, 37, 4), dtype=np.uint8), "CMYK")
    put("jpeg_cmyk_37x23.jpg", pillow_bytes(cmyk, "JPEG", quality=95))
    put("jpeg_cmyk_progressive_37x23.jpg", pillow_bytes(cmyk, "JPEG", progressive=True))
    put("jpeg_1x1.jpg", pillow_bytes(Image.fromarray(rgb(1, 1)), "JPEG"))
    put("jpeg_gray_1x1.jpg", pillow_bytes(Image.fromarray(gray(1, 1)), "JPEG"))
    put("jpeg_quality5_64x48.jpg", pillow_bytes(Image.fromarray(rgb(64, 48)), "JPEG", quality=5))
    put("jpeg_quality100_64x48.jpg", pillow_bytes(Image.fromarray(rgb(64, 48)), "JPEG", quality=100))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90": cnx must not rotate, as convert("RGB") does not
    put("jpeg_exif_orientation6_64x48.jpg",
        pillow_bytes(Image.fromarray(rgb(64, 48)), "JPEG", exif=exif.tobytes()))
    baseline = pillow_bytes(Image.fromarray(rgb(64, 48)), "JPEG")
    put("jpeg_trailing_bytes_64x48.jpg", baseline + b"garbage after EOI")
    # libjpeg warns "extraneous bytes before marker 0xd9" and decodes, as Pillow does.
    put("jpeg_extraneous_bytes_64x48.jpg", baseline[:-2] + b"\x01\x02\x03" + baseline[-2:])

    # libjpeg-written variants Pillow cannot write.
    for variant in ("restart", "arithmetic", "arithmetic-progressive", "ycck", "rgb", "h4v1", "h1v2"):
        path = os.path.join(work, f"jpeg_{variant}_77x45.jpg")
        subprocess.run([make_jpeg_tool, path, "77", "45", variant], check=True)
        files[os.path.basename(path)] = path

    # The repository's test photos (tests/data/images).
    for name in sorted(os.listdir(testdata)):
        if name.lower().endswith((".png", ".jpg", ".jpeg")):
            files["testdata_" + name] = os.path.join(testdata, name)
    return files


def test_good_images(checks, tool, work, files):
    items = sorted(files.items())
    for mode, extra in (("file", ()), ("memory", ("--memory",))):
        out_dir = os.path.join(work, "decoded_" + mode)
        code, results, stderr = run_decode_dump(tool, items, out_dir, extra)
        if crashed(checks, f"good images ({mode})", code, stderr):
            continue
        checks.check(code == 0, f"good images ({mode}): decode_dump exit code", str(code))
        for name, path in items:
            result = results.get(path, ("missing",))
            label = f"{mode} {name}"
            if result[0] != "ok":
                checks.check(False, label, " ".join(result))
                continue
            compare_pixels(checks, label, path, os.path.join(out_dir, name + ".npy"))


# -------------------------------------------------------------- bad inputs

def bad_inputs(work, files):
    """[(name, path, status, [phrases the message must contain])]."""
    bad_dir = os.path.join(work, "bad")
    os.makedirs(bad_dir, exist_ok=True)
    rng = np.random.default_rng(3)
    cases = []

    def put(name, data, status, *phrases):
        path = os.path.join(bad_dir, name)
        with open(path, "wb") as f:
            f.write(data)
        cases.append((name, path, status, list(phrases)))

    pixels = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    put("empty.png", b"", "corrupt image", "empty file")
    put("notes.jpg", b"cat.png\ndog.jpg\nthese are file names, not pixels\n",
        "unsupported input", "not a PNG or JPEG", "text")
    put("noise.png", bytes([0, 1, 2, 250]) + rng.bytes(200), "unsupported input", "not a PNG or JPEG")
    image = Image.fromarray(pixels)
    put("picture.gif", pillow_bytes(image, "GIF"), "unsupported input", "GIF images are not supported")
    put("picture.bmp", pillow_bytes(image, "BMP"), "unsupported input", "BMP images are not supported")
    put("picture.tif", pillow_bytes(image, "TIFF"), "unsupported input", "TIFF images are not supported")
    if features.check("webp"):
        put("picture.webp", pillow_bytes(image, "WEBP"), "unsupported input", "WebP images are not supported")

    put("huge_100000x100000.png", make_png(pixels, 8, 2, size=(100000, 100000)),
        "over a size limit", "100000x100000", str(DEFAULT_MAX_PIXELS))
    put("huge_2147483647x1.png", make_png(pixels, 8, 2, size=(2147483647, 1)),
        "over a size limit", "2147483647x1", str(DEFAULT_MAX_PIXELS))
    put("huge_4294967295x4294967295.png", make_png(pixels, 8, 2, size=(0xFFFFFFFF, 0xFFFFFFFF)),
        "over a size limit", "4294967295x4294967295")  # once an overflow, found by the fuzzer
    put("zero_width.png", make_png(pixels, 8, 2, size=(0, 6)), "corrupt image", "zero size")
    put("bad_palette_index.png",
        make_png(np.array([[0, 1, 2, 3]], np.uint8), 2, 3, palette=[[1, 2, 3], [4, 5, 6], [7, 8, 9]]),
        "corrupt image", "palette index 3", "3 colors")
    put("missing_PLTE.png", make_png(np.zeros((4, 4), np.uint8), 8, 3), "corrupt image", "PLTE")
    good_png = make_png(pixels, 8, 2)
    ihdr_crc_at = 8 + 8 + 13
    put("bad_IHDR_crc.png", good_png[:ihdr_crc_at] + b"\0\0\0\0" + good_png[ihdr_crc_at + 4:],
        "corrupt image", "CRC")
    idat = zlib.compress(b"".join(png_rows(pixels, 8)))
    put("bad_IDAT_crc.png", make_png(pixels, 8, 2)[:-16] + b"\0\0\0\0" + png_chunk(b"IEND", b""),
        "corrupt image", "CRC")
    put("bad_zlib_data.png", make_png(pixels, 8, 2, idat=idat[:2] + bytes(b ^ 0x5A for b in idat[2:])),
        "corrupt image", "corrupt PNG")
    put("short_image_data.png", make_png(pixels, 8, 2, idat=zlib.compress(b"".join(png_rows(pixels, 8))[:40])),
        "corrupt image", "corrupt PNG", "image data")
    put("signature_only.png", PNG_SIGNATURE, "corrupt image", "truncated")

    baseline = open(files["jpeg_420_45x31.jpg"], "rb").read()
    put("huge_65000x65000.jpg", jpeg_with_size(baseline, 65000, 65000),
        "over a size limit", "65000x65000", str(DEFAULT_MAX_PIXELS))
    put("zero_height.jpg", jpeg_with_size(baseline, 45, 0), "corrupt image", "corrupt JPEG")
    put("no_image.jpg", b"\xff\xd8\xff\xd9", "corrupt image", "corrupt JPEG")
    put("soi_only.jpg", b"\xff\xd8", "corrupt image", "truncated")
    put("junk_after_soi.jpg", b"\xff\xd8\xff" + rng.bytes(300), "corrupt image", "JPEG")
    progressive = open(files["jpeg_progressive_420_173x97.jpg"], "rb").read()
    put("600_scans.jpg", jpeg_with_repeated_first_scan(progressive, 600),
        "corrupt image", "over 500 progressive scans")

    missing = os.path.join(bad_dir, "missing.png")
    cases.append(("missing.png", missing, "cannot read file", ["No such file"]))
    directory = os.path.join(bad_dir, "a_directory.png")
    os.makedirs(directory, exist_ok=True)
    cases.append(("a_directory.png", directory, "cannot read file", ["is a directory"]))
    return cases


def unreadable_case(work):
    """A chmod-000 file, or None (with a note) where that does not stop reads."""
    path = os.path.join(work, "bad", "unreadable.png")
    with open(path, "wb") as f:
        f.write(make_png(np.zeros((2, 2, 3), np.uint8), 8, 2))
    os.chmod(path, 0)
    try:
        open(path, "rb").close()
    except PermissionError:
        return ("unreadable.png", path, "cannot read file", ["Permission denied"])
    print("SKIP unreadable.png: chmod 000 does not stop reads here (running as root)")
    return None


def check_failure(checks, label, result, path_name, status, phrases):
    if result[0] != "error":
        return checks.check(False, label, f"expected an error, got {' '.join(result)}")
    _, got_status, message = result
    problems = []
    if got_status != status:
        problems.append(f"status '{got_status}', expected '{status}'")
    if not message.startswith(path_name + ": "):
        problems.append("message does not start with the file name")
    problems += [f"no '{p}'" for p in phrases if p not in message]
    return checks.check(not problems, label, "; ".join(problems) + (" -- " if problems else "") + message)


def test_bad_inputs(checks, tool, work, files):
    cases = bad_inputs(work, files)
    unreadable = unreadable_case(work)
    if unreadable:
        cases.append(unreadable)
    # Good files among the bad: one bad image must not cost the others.
    good = [name for name in ("RGB_45x31.png", "jpeg_420_45x31.jpg", "interlaced_RGB8_33x17.png")]
    items = []
    for i, (name, path, _, _) in enumerate(cases):
        items.append((f"bad_{i}", path))
        if i % 5 == 0 and good:
            g = good.pop()
            items.append(("good_" + g, files[g]))
    out_dir = os.path.join(work, "decoded_mixed")
    code, results, stderr = run_decode_dump(tool, items, out_dir)
    if crashed(checks, "bad inputs", code, stderr):
        return
    checks.check(code == 1, "bad inputs: decode_dump exits 1 when some failed", str(code))
    checks.check("<line count>" not in results, "bad inputs: one line per image",
                 " ".join(results.get("<line count>", ())))
    for name, path, status, phrases in cases:
        check_failure(checks, f"bad {name}", results.get(path, ("missing",)), path, status, phrases)
    for label, path in items:
        if label.startswith("good_"):
            result = results.get(path, ("missing",))
            if checks.check(result[0] == "ok", f"mixed run: {label} still decodes", " ".join(result)):
                compare_pixels(checks, f"mixed run: {label} pixels", path, os.path.join(out_dir, label + ".npy"))

    # The same through cnx_image_decode_memory: messages name "<memory>".
    in_memory = [(n, p, s, ph) for n, p, s, ph in cases
                 if not n.startswith(("missing", "a_directory", "unreadable"))]
    code, results, stderr = run_decode_dump(tool, [(f"bad_{i}", c[1]) for i, c in enumerate(in_memory)],
                                            os.path.join(work, "decoded_memory_bad"), ("--memory",))
    if not crashed(checks, "bad inputs (memory)", code, stderr):
        for name, path, status, phrases in in_memory:
            check_failure(checks, f"bad {name} (memory)", results.get(path, ("missing",)), "<memory>", status,
                          phrases)

    # A pixel limit set by the caller.
    limited = [("RGB_45x31", files["RGB_45x31.png"]), ("jpeg_45x31", files["jpeg_420_45x31.jpg"]),
               ("RGB_1x1", files["RGB_1x1.png"])]
    code, results, stderr = run_decode_dump(tool, limited, os.path.join(work, "decoded_limited"),
                                            ("--max-pixels", "1000"))
    if not crashed(checks, "pixel limit", code, stderr):
        for name, path in limited[:2]:
            check_failure(checks, f"max_pixels 1000: {name}", results.get(path, ("missing",)), path,
                          "over a size limit", ["45x31", "limit of 1000 pixels"])
        checks.check(results.get(limited[2][1], ("missing",))[0] == "ok", "max_pixels 1000: 1x1 decodes")


# ------------------------------------------------- cut and damaged files
# For these the expected outcome is Pillow's: where Pillow fails, cnx must
# fail too; where cnx decodes, its pixels must equal Pillow's. cnx may be
# stricter than Pillow only as documented: any cut inside a PNG's image data
# (zlib stream end, last IDAT CRC) is "truncated" even where every row is
# there, and damaged JPEG entropy data is an error.

def damaged_files(work, files):
    damaged_dir = os.path.join(work, "damaged")
    os.makedirs(damaged_dir, exist_ok=True)
    out = []
    for source in ("RGB_45x31.png", "interlaced_RGB8_33x17.png", "palette4_13x5.png", "jpeg_420_173x97.jpg",
                   "jpeg_progressive_420_173x97.jpg", "jpeg_gray_61x47.jpg", "jpeg_restart_77x45.jpg",
                   "jpeg_cmyk_37x23.jpg"):
        data = open(files[source], "rb").read()
        n = len(data)
        for cut in sorted({2, 3, 4, 8, 20, 40, 100, n // 3, n // 2, n - 20, n - 13, n - 2, n - 1}):
            if 0 < cut < n:
                name = f"cut{cut}_of_{source}"
                path = os.path.join(damaged_dir, name)
                with open(path, "wb") as f:
                    f.write(data[:cut])
                out.append((name, path))
    rng = np.random.default_rng(11)
    for source in ("jpeg_420_173x97.jpg", "jpeg_progressive_420_173x97.jpg", "jpeg_restart_77x45.jpg"):
        data = bytearray(open(files[source], "rb").read())
        start = jpeg_entropy_offset(bytes(data))
        for trial in range(6):
            damaged = bytearray(data)
            for at in rng.integers(start, len(data) - 2, 3):
                damaged[at] = int(rng.integers(0, 0xFF))  # never 0xFF: no new markers
            name = f"flipped{trial}_{source}"
            path = os.path.join(damaged_dir, name)
            with open(path, "wb") as f:
                f.write(bytes(damaged))
            out.append((name, path))
    # Extra zlib data after the image: libpng warns, Pillow ignores it.
    pixels = np.random.default_rng(5).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    path = os.path.join(damaged_dir, "extra_zlib_data.png")
    with open(path, "wb") as f:
        f.write(make_png(pixels, 8, 2, idat=zlib.compress(b"".join(png_rows(pixels, 8)) + b"\0" * 50)))
    out.append(("extra_zlib_data.png", path))
    return out


def test_damaged_files(checks, tool, work, files):
    items = damaged_files(work, files)
    out_dir = os.path.join(work, "decoded_damaged")
    code, results, stderr = run_decode_dump(tool, items, out_dir)
    if crashed(checks, "damaged files", code, stderr):
        return
    stricter = 0
    for name, path in items:
        ours = results.get(path, ("missing",))
        reference, pillow_error = pillow_outcome(path)
        if ours[0] == "ok":
            if reference is None:
                checks.check(False, f"damaged {name}", f"cnx decoded it, Pillow failed: {pillow_error}")
            else:
                compare_pixels(checks, f"damaged {name} (decodes in both)", path,
                               os.path.join(out_dir, name + ".npy"))
            continue
        if ours[0] != "error":
            checks.check(False, f"damaged {name}", " ".join(ours))
            continue
        message = ours[2]
        named = message.startswith(path + ": ")
        telling = any(word in message for word in ("truncated", "corrupt", "Corrupt", "not a PNG or JPEG"))
        if reference is None:
            checks.check(named and telling, f"damaged {name} (fails in both)", message)
        else:
            png_tail = name.endswith(".png") and "truncated" in message
            jpeg_entropy = name.endswith(".jpg") and "Corrupt JPEG data" in message
            stricter += png_tail or jpeg_entropy
            checks.check(named and (png_tail or jpeg_entropy), f"damaged {name} (Pillow decodes; cnx stricter)",
                         message)
    print(f"note: {stricter} damaged files where cnx is stricter than Pillow, as documented")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decode-dump", required=True)
    parser.add_argument("--make-jpeg", required=True)
    parser.add_argument("--testdata", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    if os.path.isdir(args.work):
        bad_dir = os.path.join(args.work, "bad")
        if os.path.isdir(bad_dir):  # a previous run's chmod-000 file
            for name in os.listdir(bad_dir):
                os.chmod(os.path.join(bad_dir, name), 0o755)
        shutil.rmtree(args.work)
    os.makedirs(args.work)
    if not os.path.isdir(args.testdata):
        print(f"error: no test images at {args.testdata}", file=sys.stderr)
        return 2

    checks = Checks()
    files = good_images(args.work, args.testdata, args.make_jpeg)
    test_good_images(checks, args.decode_dump, args.work, files)
    test_bad_inputs(checks, args.decode_dump, args.work, files)
    test_damaged_files(checks, args.decode_dump, args.work, files)
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
