"""Formats only Pillow reads among our peers (issue 17, round 3), each on bytes
built or written here and checked against Pillow's own decode of the same file:
GBR, IM, IMT, McIDAS, PIXAR, XV thumbnails, FTEX, FITS (gzip tiles included),
BLP, run-length BMPs with broken runs, BMPs whose pixel offset points at the
palette, gray cursors under their AND mask, float TIFFs without a photometric
tag, and 16-bit CMYK TIFFs."""
import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from spdl_rs import io as sio

RNG = np.random.default_rng(17)
# Pillow deprecates its IM reader (removal planned for Pillow 15).
pytestmark = pytest.mark.filterwarnings("ignore:IM image format is deprecated:DeprecationWarning")


def pillow_rgb(path):
    with Image.open(path) as im:
        # 16- and 32-bit gray to the high byte of 0..65535, as spdl_rs does.
        if im.mode in ("I;16", "I;16B", "I"):
            gray = (np.asarray(im, dtype=np.int64).clip(0, 65535) >> 8).astype(np.uint8)
            return np.stack([gray] * 3, -1)
        return np.asarray(im.convert("RGB"))


def check(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    want = pillow_rgb(path)
    got = sio.load_image(path)
    assert got.shape == want.shape
    assert np.array_equal(got, want)


def pixels(n):
    return RNG.integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("depth", [1, 4])
@pytest.mark.parametrize("version", [1, 2])
def test_gbr(tmp_path, depth, version):
    w, h = 5, 3
    comment = b"brush\0"
    if version == 1:
        head = struct.pack(">5I", 20 + len(comment), 1, w, h, depth)
    else:
        head = struct.pack(">5I", 28 + len(comment), 2, w, h, depth) + b"GIMP" + struct.pack(">I", 10)
    check(tmp_path, "b.gbr", head + comment + pixels(w * h * depth))


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA"])
def test_im_written_by_pillow(tmp_path, mode):
    path = tmp_path / "a.im"
    data = RNG.integers(0, 256, (7, 9, len(mode)), dtype=np.uint8).squeeze()
    Image.fromarray(data, mode).save(path)
    check(tmp_path, "b.im", path.read_bytes())


def test_imt(tmp_path):
    check(tmp_path, "a.imt", b"* comment\nwidth 6\nheight 4\npixel n8\n\x0c" + pixels(24))


@pytest.mark.parametrize("bytes_per_sample", [1, 2])
def test_mcidas_rows_after_their_prefix(tmp_path, bytes_per_sample):
    w, h, prefix = 6, 4, 3
    words = [0] * 64
    words[1], words[8], words[9], words[10], words[13], words[14], words[33] = 4, h, w, bytes_per_sample, 1, prefix, 256
    directory = struct.pack(">64i", *words)
    check(tmp_path, "a.ara", directory + pixels((prefix + w * bytes_per_sample) * h))


def test_pixar(tmp_path):
    head = bytearray(1024)
    head[:4] = b"\x80\xe8\0\0"
    struct.pack_into("<HHHH", head, 416, 4, 7, 0, 0)
    struct.pack_into("<HH", head, 424, 14, 2)
    check(tmp_path, "a.pxr", bytes(head) + pixels(7 * 4 * 3))


def test_xv_thumbnail(tmp_path):
    check(tmp_path, "a.p7", b"P7 332\n#IMGINFO:1x1 RGB\n#END_OF_COMMENTS\n5 3 255\n" + pixels(15))


@pytest.mark.parametrize("dxt1", [True, False])
def test_ftex(tmp_path, dxt1):
    w, h = 8, 4
    body = pixels(w * h // 2 if dxt1 else w * h * 3)
    head = b"FTEX" + struct.pack("<7i", 0, w, h, 1, 1, 0 if dxt1 else 1, 32)
    check(tmp_path, "a.ftc", head + struct.pack("<i", len(body)) + body)


def fits_header(cards):
    text = b"".join(f"{c:<80}".encode() for c in [*cards, "END"])
    return text + b" " * (-len(text) % 2880)


@pytest.mark.parametrize("bitpix", [8, 16, 32, -32])
def test_fits_rows_bottom_first(tmp_path, bitpix):
    w, h = 5, 3
    data = {8: pixels(w * h),
            16: RNG.integers(0, 65536, w * h).astype(">u2").tobytes(),
            32: RNG.integers(-1000, 70000, w * h).astype(">i4").tobytes(),
            -32: RNG.uniform(-20, 300, w * h).astype(">f4").tobytes()}[bitpix]
    cards = ["SIMPLE  = T", f"BITPIX  = {bitpix}", "NAXIS   = 2", f"NAXIS1  = {w}", f"NAXIS2  = {h}"]
    # FITS pads its data to blocks of 2,880 bytes.
    check(tmp_path, "a.fits", fits_header(cards) + data + bytes(-len(data) % 2880))


def test_fits_gzip_tiles(tmp_path):
    w, h = 6, 4
    values = RNG.integers(0, 65536, (h, w)).astype(">i4")
    tiles = b"".join(gzip.compress(row.tobytes()) for row in values)
    primary = fits_header(["SIMPLE  = T", "BITPIX  = 16", "NAXIS   = 0", "EXTEND  = T"])
    table = np.zeros(h * 8, np.uint8).tobytes()
    ext = fits_header(["XTENSION= 'BINTABLE'", "BITPIX  = 8", "NAXIS   = 2", "NAXIS1  = 8", f"NAXIS2  = {h}",
                       f"PCOUNT  = {len(tiles)}", "GCOUNT  = 1", "TFIELDS = 1", "ZIMAGE  = T", "ZCMPTYPE= 'GZIP_1  '",
                       "ZBITPIX = 16", "ZNAXIS  = 2", f"ZNAXIS1 = {w}", f"ZNAXIS2 = {h}"])
    check(tmp_path, "a.fits", primary + ext + table + tiles)


@pytest.mark.parametrize("version", ["BLP1", "BLP2"])
def test_blp_written_by_pillow(tmp_path, version):
    path = tmp_path / "a.blp"
    image = Image.fromarray(RNG.integers(0, 256, (8, 12, 3), dtype=np.uint8)).quantize(64)
    image.save(path, blp_version=version)
    check(tmp_path, "b.blp", path.read_bytes())


def bmp(width, height, bits, compression, palette, body, offset=None):
    colours = len(palette) // 4
    start = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, compression, len(body), 2835, 2835, colours, 0)
    head = b"BM" + struct.pack("<IHHI", start + len(body), 0, 0, start if offset is None else offset)
    return head + info + palette + body


RLE8_CODES = [9, 3, 0, 0, 2, 5, 0, 2, 2, 1, 3, 7, 0, 3, 1, 2, 3, 0, 0, 0, 4, 9]


def test_rle8_bmp_with_broken_runs(tmp_path):
    """A run past the row's end, a delta, an end of line mid-row, an
    absolute run past the row's end."""
    codes = bytes(RLE8_CODES + [0, 0, 0, 1])
    check(tmp_path, "a.bmp", bmp(6, 5, 8, 1, pixels(16 * 4), codes))


def test_rle8_bmp_ending_early_keeps_index_0_where_pillow_refuses(tmp_path):
    """Codes that stop before the image is full: Pillow refuses the file
    ("not enough image data"); spdl_rs shows the rest in palette index 0,
    as FFmpeg does."""
    palette = pixels(16 * 4)
    path = tmp_path / "a.bmp"
    path.write_bytes(bmp(6, 5, 8, 1, palette, bytes(RLE8_CODES + [0, 1])))
    with pytest.raises(ValueError, match="not enough image data"):
        Image.open(path).load()
    # The top row is stored last: the final run of 4 pixels of index 9,
    # then 2 pixels the codes never reach.
    colour = [np.frombuffer(palette[4 * i : 4 * i + 3], np.uint8)[::-1] for i in range(16)]
    top = sio.load_image(path)[0]
    assert np.array_equal(top, np.stack([colour[9]] * 4 + [colour[0]] * 2))


def test_rle4_bmp(tmp_path):
    codes = bytes([5, 0x12, 0, 0, 0, 5, 0x34, 0x56, 0x70, 0, 0, 0, 3, 0xAB, 0, 0, 0, 1])
    check(tmp_path, "a.bmp", bmp(6, 3, 4, 2, pixels(16 * 4), codes))


def test_bmp_offset_pointing_at_its_palette(tmp_path):
    """A writer that forgot the palette in the pixel offset: Pillow reads
    past the palette."""
    palette = pixels(8 * 4)
    body = RNG.integers(0, 8, 8 * 3, dtype=np.uint8).tobytes()
    check(tmp_path, "a.bmp", bmp(7, 3, 8, 0, palette, body, offset=54))


@pytest.mark.parametrize("bits", [1, 8])
def test_gray_cursor_under_its_and_mask(tmp_path, bits):
    w, h = 8, 4
    palette = b"\0\0\0\0\xff\xff\xff\0" if bits == 1 else bytes(v for i in range(256) for v in (i, i, i, 0))
    stride = 4
    if bits == 1:
        rows = [bytes([RNG.integers(0, 256)]) + b"\0\0\0" for _ in range(2 * h)]
    else:
        rows = [pixels(w) for _ in range(2 * h)]
        stride = w
    dib = struct.pack("<IiiHHIIiiII", 40, w, 2 * h, 1, bits, 0, 0, 0, 0, 0, 0) + palette + b"".join(rows)
    assert all(len(r) == stride for r in rows)
    entry = struct.pack("<BBBBHHII", w, h, 0, 0, 1, 1, len(dib), 22)
    check(tmp_path, "a.cur", b"\0\0\2\0\1\0" + entry + dib)


def tiff(entries, data):
    data_at = 8 + 2 + 12 * len(entries) + 4
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHII", tag, kind, count, data_at if tag == 273 else value)
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + data


def test_float_tiff_without_photometric(tmp_path):
    w, h = 6, 4
    data = RNG.uniform(-50, 300, w * h).astype("<f4").tobytes()
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 32), (259, 3, 1, 1), (273, 4, 1, 0),
               (279, 4, 1, len(data)), (339, 3, 1, 3)]
    check(tmp_path, "a.tif", tiff(entries, data))


def test_cmyk_16_bit_tiff(tmp_path):
    w, h = 5, 3
    data = RNG.integers(0, 65536, w * h * 4).astype("<u2").tobytes()
    bits_at = 8 + 2 + 12 * 9 + 4 + len(data)
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 4, bits_at), (259, 3, 1, 1), (262, 3, 1, 5),
               (273, 4, 1, 0), (277, 3, 1, 4), (278, 4, 1, h), (279, 4, 1, len(data))]
    check(tmp_path, "a.tif", tiff(entries, data) + struct.pack("<4H", 16, 16, 16, 16))


def test_cielab_tiff_written_by_pillow(tmp_path):
    """CIELab TIFF (signed a*, b*): Pillow's convert("RGB") goes through Little
    CMS (D50 Lab to sRGB, perceptual); spdl_rs does the same."""
    lab = Image.merge("LAB", [Image.fromarray(RNG.integers(0, 256, (9, 11), dtype=np.uint8)) for _ in range(3)])
    path = tmp_path / "a.tif"
    lab.save(path)
    check(tmp_path, "b.tif", path.read_bytes())
