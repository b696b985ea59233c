#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets, tests/fuzz/corpus/<target>/, from nothing but the file formats.

Every file is named ok-<what> (the reader must accept it) or bad-<what> (it must refuse it with its one-line error);
tests/test_fuzz_corpus.cpp replays them all in the normal suite and checks that. Seeds are small valid files and the
edge cases a hostile or damaged file presents: truncation, bad magic, zero and overflowing dimensions, declared sizes
far beyond the bytes present. Regressions found by fuzzing are added here too, under a name that says what broke.

    tests/fuzz/make_corpus.py            # rewrites every corpus folder (run from anywhere)
"""
import gzip
import json
import os
import shutil
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)  # mtime 0: the same bytes on every run


# ---- IDX images and labels ------------------------------------------------------------------------------------------
def idx3(count, rows, cols, magic=0x803, pixels=None):
    if pixels is None:
        pixels = bytes((k * 7 + 3) % 256 for k in range(count * rows * cols))
    return struct.pack(">IIII", magic, count, rows, cols) + pixels


def idx1(labels, magic=0x801, count=None):
    return struct.pack(">II", magic, len(labels) if count is None else count) + bytes(labels)


def idx_images():
    t = "idx_images"
    fashion = idx3(2, 28, 28)
    write(t, "ok-2x28x28", fashion)  # padded to 32x32
    write(t, "ok-2x28x28.gz", gz(fashion))
    write(t, "ok-3x5x7", idx3(3, 5, 7))  # cropped and resized
    write(t, "ok-1x1x1", idx3(1, 1, 1))
    write(t, "ok-1x1x300", idx3(1, 1, 300))
    write(t, "ok-concatenated-gzip-members.gz", gz(fashion[:100]) + gz(fashion[100:]))
    write(t, "bad-empty", b"")
    write(t, "bad-truncated-header", fashion[:10])
    write(t, "bad-truncated-pixels", fashion[:-1])
    write(t, "bad-trailing-byte", fashion + b"x")
    write(t, "bad-labels-magic", idx1([1, 2, 3]) + bytes(8))
    write(t, "bad-not-idx", b"PK\x03\x04" + bytes(60))
    write(t, "bad-rank-2", idx3(1, 1, 1, magic=0x802))
    write(t, "bad-float-type", idx3(1, 1, 1, magic=0xD03))
    write(t, "bad-zero-count", idx3(0, 28, 28, pixels=b""))
    write(t, "bad-zero-rows", idx3(5, 0, 28, pixels=b""))
    write(t, "bad-rows-over-16384", idx3(1, 16385, 1))
    write(t, "bad-huge-declared", idx3(0xFFFFFFFF, 16384, 16384, pixels=bytes(16)))
    write(t, "bad-truncated-gzip.gz", gz(fashion)[:-20])
    corrupt = bytearray(gz(fashion))
    corrupt[40] ^= 0xFF
    write(t, "bad-corrupt-gzip.gz", bytes(corrupt))
    # A gzip bomb: one tiny image, then 4 MiB of zeros after it in gzip members of 1 MiB each (about 4 KiB in all).
    # The reader must refuse it without inflating the tail into memory.
    write(t, "bad-gzip-bomb-tail.gz", gz(idx3(1, 1, 1)) + gz(bytes(1 << 20)) * 4)


def idx_labels():
    t = "idx_labels"
    ten = idx1(list(range(10)) * 3)
    write(t, "ok-30-labels", ten)
    write(t, "ok-30-labels.gz", gz(ten))
    write(t, "ok-labels-up-to-255", idx1([0, 17, 255]))  # accepted with no class limit, refused with 10 classes
    write(t, "ok-one-label", idx1([9]))
    write(t, "bad-empty", b"")
    write(t, "bad-truncated-header", ten[:6])
    write(t, "bad-truncated-labels", ten[:-1])
    write(t, "bad-trailing-byte", ten + b"\x00")
    write(t, "bad-images-magic", idx3(1, 1, 1))
    write(t, "bad-zero-count", idx1([]))
    write(t, "bad-huge-count", idx1([1, 2, 3], count=0xFFFFFFFF))
    write(t, "bad-truncated-gzip.gz", gz(ten)[:-12])
    write(t, "bad-gzip-bomb-tail.gz", gz(idx1([1])) + gz(bytes(1 << 20)) * 4)


# ---- CIFAR-10 -------------------------------------------------------------------------------------------------------
def cifar_record(label, seed):
    return bytes([label]) + bytes((k * 13 + seed) % 256 for k in range(3072))


def cifar10():
    t = "cifar10"
    two = cifar_record(3, 1) + cifar_record(9, 2)
    write(t, "ok-one-record", cifar_record(0, 5))
    write(t, "ok-two-records", two)
    write(t, "bad-empty", b"")
    write(t, "bad-label-10", cifar_record(10, 0))
    write(t, "bad-label-255-in-second-record", cifar_record(1, 0) + cifar_record(255, 0))
    write(t, "bad-truncated-record", two[:-1])
    write(t, "bad-trailing-byte", cifar_record(2, 0) + b"\x00")
    write(t, "bad-header-only", b"\x01")


def cifar10_meta():
    t = "cifar10_meta"
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    write(t, "ok-ten-names", b"\n".join(names) + b"\n")
    write(t, "ok-crlf-and-blank-lines", b"\r\n".join(names[:5]) + b"\r\n\r\n  \t\n" + b"\r\n".join(names[5:]))
    write(t, "ok-no-final-newline", b"\n".join(names))
    write(t, "ok-utf8-names", "\n".join("класс %d" % i for i in range(10)).encode())
    write(t, "bad-empty", b"")
    write(t, "bad-nine-names", b"\n".join(names[:9]))
    write(t, "bad-eleven-names", b"\n".join(names + [b"extra"]))
    write(t, "bad-one-line", b" ".join(names))


# ---- PNG ------------------------------------------------------------------------------------------------------------
def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png_file(width, height, bit_depth, colour, raw, plte=b"", trns=b"", interlace=0, idat=None, ihdr_crc_ok=True):
    """raw: the filtered scanlines (filter byte + row) exactly as they are to be compressed."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, interlace)
    out = b"\x89PNG\r\n\x1a\n"
    head = chunk(b"IHDR", ihdr)
    if not ihdr_crc_ok:
        head = head[:-4] + bytes(4)
    out += head
    if plte:
        out += chunk(b"PLTE", plte)
    if trns:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(raw, 9) if idat is None else idat)
    return out + chunk(b"IEND", b"")


def scanlines(rows):
    return b"".join(b"\x00" + r for r in rows)  # filter type None


def pattern_rows(width, height, bytes_per_pixel, seed=0):
    return [bytes((y * 31 + x * 7 + seed) % 256 for x in range(width * bytes_per_pixel)) for y in range(height)]


def adam7(width, height, bytes_per_pixel):
    """Interlaced scanlines of the pattern image: the seven passes, each with its own filter bytes."""
    rows = pattern_rows(width, height, bytes_per_pixel)
    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                           (0, 1, 1, 2)):
        for y in range(y0, height, dy):
            xs = range(x0, width, dx)
            if len(xs):
                raw += b"\x00" + b"".join(rows[y][x * bytes_per_pixel:(x + 1) * bytes_per_pixel] for x in xs)
    return raw


def png():
    t = "png"
    write(t, "ok-grey-5x3", png_file(5, 3, 8, 0, scanlines(pattern_rows(5, 3, 1))))
    write(t, "ok-rgb-4x4", png_file(4, 4, 8, 2, scanlines(pattern_rows(4, 4, 3))))
    write(t, "ok-rgba-3x2", png_file(3, 2, 8, 6, scanlines(pattern_rows(3, 2, 4))))
    write(t, "ok-grey-alpha-2x2", png_file(2, 2, 8, 4, scanlines(pattern_rows(2, 2, 2))))
    write(t, "ok-rgb16-3x3", png_file(3, 3, 16, 2, scanlines(pattern_rows(3, 3, 6))))
    write(t, "ok-grey-1bit-9x2", png_file(9, 2, 1, 0, scanlines([b"\xa5\x80", b"\x5a\x00"])))
    write(t, "ok-palette-with-trns-4x2",
          png_file(4, 2, 8, 3, scanlines([b"\x00\x01\x02\x01", b"\x02\x01\x00\x00"]),
                   plte=b"\xff\x00\x00\x00\xff\x00\x00\x00\xff", trns=b"\x80"))
    write(t, "ok-interlaced-rgb-9x9", png_file(9, 9, 8, 2, adam7(9, 9, 3), interlace=1))
    write(t, "ok-wide-40x1", png_file(40, 1, 8, 0, scanlines(pattern_rows(40, 1, 1))))
    good = png_file(5, 3, 8, 0, scanlines(pattern_rows(5, 3, 1)))
    write(t, "bad-empty", b"")
    write(t, "bad-signature", b"\x89PNX" + good[4:])
    write(t, "bad-truncated-idat", good[:50])
    write(t, "bad-no-iend-or-idat", good[:33])
    write(t, "bad-ihdr-crc", png_file(5, 3, 8, 0, scanlines(pattern_rows(5, 3, 1)), ihdr_crc_ok=False))
    write(t, "bad-zero-width", png_file(0, 3, 8, 0, b"\x00" * 3))
    write(t, "bad-width-over-2-31", png_file(0x80000000, 1, 8, 0, b"\x00"))
    write(t, "bad-bit-depth-3", png_file(2, 2, 3, 0, b"\x00\x00" * 2))
    write(t, "bad-palette-missing-plte", png_file(2, 1, 8, 3, scanlines([b"\x00\x00"])))
    write(t, "bad-corrupt-deflate", png_file(4, 4, 8, 2, b"", idat=b"\x78\x9c\xff\xff\xff\xff"))
    # Headers declaring far more pixels than the file's bytes could inflate to: refused before the image buffer is
    # allocated (1,000,000 x 1,000,000 RGB16 would be 6 TB).
    write(t, "bad-huge-declared-1000000x1000000", png_file(1000000, 1000000, 16, 2, scanlines([b"\x00" * 6])))
    write(t, "bad-huge-declared-1000000x4000", png_file(1000000, 4000, 8, 0, scanlines([b"\x00" * 10])))
    write(t, "bad-huge-declared-interlaced", png_file(100000, 100000, 8, 6, adam7(1, 1, 4), interlace=1))


# ---- .npy -----------------------------------------------------------------------------------------------------------
def npy(descr, shape, data, version=(1, 0), fortran=False, header=None):
    if header is None:
        shape_text = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
        header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape_text)
    header = header.encode("latin-1")
    length = struct.pack("<H", len(header) + 1) if version[0] == 1 else struct.pack("<I", len(header) + 1)
    return b"\x93NUMPY" + bytes(version) + length + header + b"\n" + data


# ---- JPEG ----------------------------------------------------------------------------------------------------------
def jpeg_bytes(image, **options):
    import io
    out = io.BytesIO()
    image.save(out, format="JPEG", **options)
    return out.getvalue()


def with_size(data, height, width):
    """The same JPEG with the frame header (SOF0/SOF2) declaring another size."""
    b = bytearray(data)
    i = 2
    while i + 4 < len(b):
        marker, length = b[i + 1], struct.unpack(">H", b[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            b[i + 5:i + 9] = struct.pack(">HH", height, width)
            return bytes(b)
        i += 2 + length
    raise ValueError("no frame header")


def jpeg():
    """Seeds made by PIL (Debian's python3-pil, libjpeg-turbo inside), and by cjpeg where installed (arithmetic)."""
    import subprocess
    from PIL import Image
    t = "jpeg"
    rgb = Image.frombytes("RGB", (9, 7), bytes((k * 37 + 11) % 256 for k in range(9 * 7 * 3)))
    grey = Image.frombytes("L", (5, 3), bytes((k * 53) % 256 for k in range(15)))
    baseline = jpeg_bytes(rgb, quality=90)
    write(t, "ok-rgb-9x7", baseline)
    write(t, "ok-rgb-420-9x7", jpeg_bytes(rgb, quality=75, subsampling=2))
    write(t, "ok-progressive-9x7", jpeg_bytes(rgb, quality=90, progressive=True))
    write(t, "ok-grey-5x3", jpeg_bytes(grey, quality=90))
    write(t, "ok-1x1", jpeg_bytes(Image.new("RGB", (1, 1), (200, 100, 50))))
    write(t, "ok-restart-markers-40x24", jpeg_bytes(rgb.resize((40, 24)), quality=80, restart_marker_blocks=1))
    if shutil.which("cjpeg"):
        ppm = b"P6 9 7 255\n" + rgb.tobytes()
        write(t, "ok-arithmetic-9x7", subprocess.run(["cjpeg", "-arithmetic"], input=ppm, capture_output=True,
                                                     check=True).stdout)
    write(t, "bad-empty", b"")
    write(t, "bad-soi-only", b"\xff\xd8\xff")
    write(t, "bad-png-signature", b"\x89PNG\r\n\x1a\n" + bytes(40))
    write(t, "bad-truncated-half", baseline[: len(baseline) // 2])
    write(t, "bad-truncated-before-eoi", baseline[:-2] + b"")
    write(t, "bad-garbage-after-soi", b"\xff\xd8\xff" + bytes((k * 97 + 5) % 256 for k in range(200)))
    write(t, "bad-cmyk", jpeg_bytes(Image.new("CMYK", (4, 4), (10, 20, 30, 40))))
    write(t, "bad-huge-declared-65500x65500", with_size(baseline, 65500, 65500))
    write(t, "bad-declared-3000x3000-truncated", with_size(baseline, 3000, 3000))
    write(t, "bad-progressive-declared-30000x30000", with_size(jpeg_bytes(rgb, progressive=True), 30000, 30000))
    write(t, "bad-zero-width", with_size(baseline, 7, 0))
    # Under both pixel limits (4,000,000 < 2^22), but more blocks than the file has bits: refused before libjpeg
    # allocates its whole-image coefficient arrays.
    write(t, "bad-progressive-declared-2000x2000", with_size(jpeg_bytes(rgb, progressive=True), 2000, 2000))


def floats(n):
    return struct.pack("<%df" % n, *[(k - n / 2) * 0.25 for k in range(n)])


def npy_corpus():
    t = "npy"
    write(t, "ok-f4-2x3", npy("<f4", (2, 3), floats(6)))
    write(t, "ok-f4-scalar", npy("<f4", (), floats(1)))
    write(t, "ok-f4-zero-size-0x3", npy("<f4", (0, 3), b""))
    write(t, "ok-f4-rank-4", npy("<f4", (1, 2, 1, 2), floats(4)))
    write(t, "ok-f4-version-2", npy("<f4", (3,), floats(3), version=(2, 0)))
    write(t, "ok-u8-2x2", npy("|u1", (2, 2), b"\x00\x7f\x80\xff"))
    write(t, "ok-u8-rank-6", npy("|u1", (1, 1, 2, 1, 1, 1), b"\x01\x02"))
    write(t, "ok-i8-labels", npy("<i8", (3,), struct.pack("<3q", 7, 0, 9)))
    write(t, "ok-i4-labels", npy("<i4", (2, 2), struct.pack("<4i", 1, 2, 3, 4)))
    write(t, "bad-i8-truncated", npy("<i8", (3,), struct.pack("<2q", 7, 0)))
    write(t, "bad-empty", b"")
    write(t, "bad-magic", b"\x93NUMPZ" + npy("<f4", (1,), floats(1))[6:])
    write(t, "bad-version-3", npy("<f4", (1,), floats(1), version=(3, 0)))
    write(t, "bad-truncated-header", npy("<f4", (2, 3), floats(6))[:20])
    write(t, "bad-header-length-past-end", b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{")
    write(t, "bad-truncated-data", npy("<f4", (2, 3), floats(6))[:-1])
    write(t, "bad-trailing-data", npy("<f4", (2, 3), floats(6) + b"\x00"))
    write(t, "bad-huge-shape-no-data", npy("<f4", (1 << 40,), b""))
    write(t, "bad-overflowing-shape", npy("<f4", (1 << 62, 1 << 62), b""))
    write(t, "bad-dimension-too-long", npy("<f4", (), b"", header="{'descr': '<f4', 'fortran_order': False, "
                                           "'shape': (99999999999999999999,), }"))
    write(t, "bad-f4-rank-5", npy("<f4", (1, 1, 1, 1, 1), floats(1)))
    write(t, "bad-fortran-order", npy("<f4", (2, 2), floats(4), fortran=True))
    write(t, "bad-big-endian", npy(">f4", (1,), floats(1)))
    write(t, "bad-float64", npy("<f8", (1,), floats(2)))
    write(t, "bad-unterminated-string", npy("<f4", (), b"", header="{'descr: <f4"))
    write(t, "bad-missing-shape", npy("<f4", (), floats(1), header="{'descr': '<f4', 'fortran_order': False}"))
    write(t, "bad-negative-dimension", npy("<f4", (), floats(1), header="{'descr': '<f4', 'fortran_order': False, "
                                           "'shape': (-1,), }"))
    write(t, "bad-unknown-key", npy("<f4", (1,), floats(1), header="{'descr': '<f4', 'fortran_order': False, "
                                    "'shape': (1,), 'x': 1}"))


# ---- safetensors ----------------------------------------------------------------------------------------------------
def safetensors_file(header, data=b"", pad=True, length=None):
    text = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def tensor(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def safetensors_corpora():
    """Each seed goes to both safetensors targets, with the outcome of each: the full and expected-map loads, and the
    metadata-only read (which validates the whole file but reads no tensor)."""
    w_b = {"b": tensor("F32", [3], 0, 12), "w": tensor("F32", [2, 3], 12, 36), "__metadata__": {"step": "7"}}
    seeds = [
        # name, bytes, accepted by (full or expected-map load), accepted by the metadata read
        ("w-and-b", safetensors_file(w_b, floats(9)), True, True),
        ("metadata-only", safetensors_file({"__metadata__": {"nz": "100", "ngf": "64"}}), True, True),
        ("no-tensors", safetensors_file({}), True, True),
        ("zero-size-and-scalar", safetensors_file({"z": tensor("F32", [0, 5], 0, 0), "s": tensor("F32", [], 0, 4),
                                                   "b": tensor("F32", [3], 4, 16),
                                                   "w": tensor("F32", [2, 3], 16, 40)}, floats(10)), True, True),
        # F16 is refused by the full load but skipped by the expected-map load, which reads only w and b.
        ("f16-beside-w-and-b", safetensors_file({"h": tensor("F16", [2], 36, 40), **w_b}, floats(10)), True, True),
        ("f16-only", safetensors_file({"h": tensor("F16", [2], 0, 4)}, b"\x00" * 4), False, True),
        ("rank-5", safetensors_file({"r": tensor("F32", [1, 1, 1, 1, 1], 0, 4)}, floats(1)), False, True),
        ("empty", b"", False, False),
        ("short", b"\x08\x00\x00", False, False),
        ("header-length-2-63", safetensors_file(w_b, floats(9), length=1 << 63), False, False),
        ("header-length-past-end", safetensors_file(w_b, floats(9), length=4096), False, False),
        ("header-length-over-100mb", safetensors_file(w_b, floats(9), length=100_000_001), False, False),
        ("not-json", safetensors_file(b"{not json}"), False, False),
        ("json-array", safetensors_file(b"[1, 2]  "), False, False),
        ("invalid-utf8", safetensors_file(b'{"\xff":{}}'), False, False),
        ("nul-byte", safetensors_file(b'{"a":1}\x00 '), False, False),
        ("duplicate-name", safetensors_file(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                            b'"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', floats(1)),
         False, False),
        ("deep-nesting", safetensors_file(b'{"__metadata__":' + b"[" * 200 + b"]" * 200 + b"}"), False, False),
        ("gap", safetensors_file({"a": tensor("F32", [1], 4, 8)}, floats(2)), False, False),
        ("overlap", safetensors_file({"a": tensor("F32", [2], 0, 8), "b": tensor("F32", [1], 4, 8)}, floats(2)),
         False, False),
        ("trailing-bytes", safetensors_file(w_b, floats(9) + b"\x00"), False, False),
        ("missing-bytes", safetensors_file(w_b, floats(9)[:-1]), False, False),
        ("offsets-disagree-with-shape", safetensors_file({"a": tensor("F32", [3], 0, 8)}, floats(2)), False, False),
        ("offsets-reversed", safetensors_file({"a": tensor("F32", [0], 8, 0)}, floats(2)), False, False),
        ("shape-overflows-64-bits", safetensors_file({"a": tensor("F32", [1 << 32, 1 << 32, 1 << 32], 0, 0)}),
         False, False),
        ("huge-tensor-tiny-file", safetensors_file({"a": tensor("F32", [1 << 30], 0, 1 << 32)}, floats(1)),
         False, False),
        ("negative-dimension", safetensors_file({"a": tensor("F32", [-1], 0, 0)}), False, False),
        ("fractional-dimension", safetensors_file({"a": tensor("F32", [1.5], 0, 6)}, b"\x00" * 6), False, False),
        ("unknown-dtype", safetensors_file({"a": tensor("F33", [1], 0, 4)}, floats(1)), False, False),
        ("metadata-not-string", safetensors_file({"__metadata__": {"step": 3}}), False, False),
        ("entry-missing-offsets", safetensors_file({"a": {"dtype": "F32", "shape": [1]}}, floats(1)), False, False),
    ]
    for name, data, loads, metadata in seeds:
        write("safetensors", ("ok-" if loads else "bad-") + name, data)
        write("safetensors_metadata", ("ok-" if metadata else "bad-") + name, data)


# ---- kernel_choices.json --------------------------------------------------------------------------------------------
def kernel_choices():
    t = "kernel_choices"
    entry = {"device": "NVIDIA H200 cudnn 91000", "math": "tf32", "op": "conv2d",
             "shape": "n128 c3x64x64 k4 s2 p1 -> c64x32x32", "kernels": "cudnn", "custom_ms": 0.21, "cudnn_ms": 0.18}
    other = dict(entry, op="conv_transpose2d", kernels="custom", cudnn_ms=-1)
    doc = lambda choices, fmt="gancu kernel choices 1": json.dumps({"format": fmt, "choices": choices}, indent=1)
    write(t, "ok-two-choices", doc([entry, other]).encode())
    write(t, "ok-no-choices", doc([]).encode())
    write(t, "bad-empty", b"")
    write(t, "bad-not-json", b"{\"format\": ")
    write(t, "bad-other-format", doc([entry], fmt="gancu kernel choices 2").encode())
    write(t, "bad-choices-not-a-list", json.dumps({"format": "gancu kernel choices 1", "choices": {}}).encode())
    write(t, "bad-unknown-kernels", doc([dict(entry, kernels="tpu")]).encode())
    write(t, "bad-missing-field", doc([{k: v for k, v in entry.items() if k != "cudnn_ms"}]).encode())
    write(t, "bad-time-is-a-string", doc([dict(entry, custom_ms="fast")]).encode())
    write(t, "bad-choice-not-an-object", doc([1]).encode())
    write(t, "bad-deep-nesting", b"[" * 20000 + b"]" * 20000)


def recipe_config():
    t = "recipe_config"
    write(t, "ok-all-fields", json.dumps({"i": 64, "steps": 1500, "seed": 1, "rate": 0.25, "flag": True, "name": "b",
                                         "free": "fashion-mnist"}).encode())
    write(t, "ok-empty-object", b"{}")
    write(t, "ok-unknown-keys-kept-out", b'{"model": "dcgan", "channels": 3, "i": 2}')
    write(t, "bad-not-json", b'{"i": ')
    write(t, "bad-array", b"[1, 2]")
    write(t, "bad-int-out-of-range", b'{"i": 0}')
    write(t, "bad-int-overflow", b'{"i": 1e300}')
    write(t, "bad-negative-seed", b'{"seed": -1}')
    write(t, "bad-string-for-number", b'{"rate": "0.5"}')
    write(t, "bad-number-for-bool", b'{"flag": 1}')
    write(t, "bad-choice", b'{"name": "c"}')
    write(t, "bad-nan-like", b'{"rate": 1e400}')


def fid_stats():
    """FID reference statistics (tools/eval/fid.h): float64 "mean" [d] and "cov" [d, d], metadata "n" ≥ 2."""
    t = "fid_stats"
    doubles = lambda *values: struct.pack("<%dd" % len(values), *values)

    def stats(mean_shape, cov_shape, values, n="5", mean_dtype="F64", cov_dtype="F64", extra=None):
        size = 8 if mean_dtype == "F64" else 4
        mean_bytes = size * (mean_shape[0] if mean_shape else 1) * (mean_shape[1] if len(mean_shape) > 1 else 1)
        header = {"cov": tensor(cov_dtype, cov_shape, 0, len(values) * 8 - mean_bytes),
                  "mean": tensor(mean_dtype, mean_shape, len(values) * 8 - mean_bytes, len(values) * 8)}
        if n is not None:
            header["__metadata__"] = {"n": n, **(extra or {})}
        return safetensors_file(header, doubles(*values))

    identity2 = (1.0, 0.0, 0.0, 1.0)
    write(t, "ok-d1", stats([1], [1, 1], (2.0, 0.5)))
    write(t, "ok-d2-with-metadata", stats([2], [2, 2], identity2 + (0.25, -3.0), extra={"data": "fashion-mnist"}))
    write(t, "ok-d3", stats([3], [3, 3], (2, 0.5, 0, 0.5, 1, 0, 0, 0, 3) + (1, 2, 3)))
    write(t, "ok-large-n", stats([1], [1, 1], (1.0, 0.0), n="9223372036854775807"))
    write(t, "bad-no-n", stats([2], [2, 2], identity2 + (0.0, 0.0), n=None))
    write(t, "bad-n-1", stats([2], [2, 2], identity2 + (0.0, 0.0), n="1"))
    write(t, "bad-n-not-integer", stats([2], [2, 2], identity2 + (0.0, 0.0), n="5.0"))
    write(t, "bad-n-overflows", stats([1], [1, 1], (1.0, 0.0), n="9223372036854775808"))
    write(t, "bad-cov-not-square", stats([2], [4, 1], identity2 + (0.0, 0.0)))
    write(t, "bad-cov-other-dim", stats([1], [2, 2], identity2 + (0.0,)))
    write(t, "bad-mean-rank-2", stats([1, 2], [2, 2], identity2 + (0.0, 0.0)))
    write(t, "bad-mean-empty", safetensors_file({"cov": tensor("F64", [0, 0], 0, 0), "mean": tensor("F64", [0], 0, 0),
                                                 "__metadata__": {"n": "5"}}))
    write(t, "bad-nan", stats([2], [2, 2], (1.0, float("nan"), 0.0, 1.0, 0.0, 0.0)))
    write(t, "bad-inf-mean", stats([1], [1, 1], (1.0, float("inf"))))
    write(t, "bad-f32-mean", safetensors_file({"cov": tensor("F64", [1, 1], 0, 8), "mean": tensor("F32", [1], 8, 12),
                                               "__metadata__": {"n": "5"}}, doubles(1.0) + struct.pack("<f", 0.0)))
    write(t, "bad-missing-cov", safetensors_file({"mean": tensor("F64", [1], 0, 8), "__metadata__": {"n": "5"}},
                                                 doubles(0.0)))
    write(t, "bad-truncated", stats([2], [2, 2], identity2 + (0.0, 0.0))[:-3])
    write(t, "bad-not-safetensors", b"mean 0 0\ncov 1 0 0 1\n")
    # Found by fuzzing: covariances whose product overflows a double, or of extreme range (Eigen's Schur form read out of
    # bounds on the infinities); accepted when they are covariances, refused when they are not.
    write(t, "bad-cov-asymmetric-huge",
          stats([2], [2, 2], (2.0672473870704293e+161, 9.094923214030375e+223, 3.981750978287833e+150, 4.901021902769e+252,
                              2.524759075283919e+180, -3.0339020446831952)))
    write(t, "ok-extreme-range", stats([3], [3, 3], (1e300, 1e-300, 0, 1e-300, 1e-300, 0, 0, 0, 2.5, 1e150, -3, 0), n="7"))
    write(t, "bad-cov-not-symmetric-extreme",
          stats([3], [3, 3], (2.0, 0.5, 7.183147077953419e+29, 1.3967262934863833e+195, -3.853616378675229e-139,
                              2.9735764568720948e+228, 1.1644214778518363e-28, 7.7225161423835955e-143,
                              8.609481946816326e-43, 1.1594708598978674e-28, 2.0, 1.1644214761561858e-28)))
    write(t, "bad-negative-variance", stats([2], [2, 2], (1, 0.5, 0.5, -1, 0, 0)))
    write(t, "bad-cov-asymmetric-schur-exceptional-shift",
          stats([3], [3, 3], (2.0, 0.5, 1.2027073776566727e-72, 0.5, 1.0, 0.0, 0.0, 2.961426102699664e+92,
                              4.022343392317206e+154, 1.0, 2.0, 3.0)))


def main():
    shutil.rmtree(ROOT, ignore_errors=True)
    idx_images()
    idx_labels()
    cifar10()
    cifar10_meta()
    png()
    jpeg()
    npy_corpus()
    recipe_config()
    safetensors_corpora()
    kernel_choices()
    fid_stats()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(ROOT) for f in fs)
    print("%s: %d files, %d bytes" % (ROOT, sum(len(fs) for _, _, fs in os.walk(ROOT)), total))


if __name__ == "__main__":
    main()
