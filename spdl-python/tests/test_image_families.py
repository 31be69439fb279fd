"""Image families where spdl_rs once differed from Pillow (issue 17), each on files
written here by Pillow and checked against Pillow's own decode."""
import numpy as np
import pytest
from PIL import Image, ImageOps, features

from spdl_rs import io as sio


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def gradient(mode, w=61, h=37):
    y, x = np.mgrid[0:h, 0:w]
    bands = [(x * 4 + y) % 256, (y * 7) % 256, (x * 3 + y * 2) % 256, (x + 5 * y) % 256]
    return Image.fromarray(np.stack(bands[: len(mode)], -1).astype(np.uint8).squeeze(), mode)


@pytest.mark.parametrize("compression", [None, "tga_rle"])
@pytest.mark.parametrize("orientation", [-1, 1])
def test_gray_alpha_tga_matches_pillow(tmp_path, compression, orientation):
    path = tmp_path / "la.tga"
    gradient("LA").save(path, compression=compression, orientation=orientation)
    want = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(sio.load_image(path), want)


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF support")
@pytest.mark.parametrize("orientation", [2, 3, 5, 6, 8])
def test_avif_rotation_and_mirror_match_pillow(tmp_path, orientation):
    """Pillow writes the EXIF orientation as AVIF irot/imir boxes; both readers
    apply them (FFmpeg alone would not)."""
    path = tmp_path / "o.avif"
    image = gradient("RGB", 96, 64)
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, exif=exif, quality=95)
    want = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    got = sio.load_image(path)
    assert got.shape == want.shape
    assert psnr(got, want) > 30, f"orientation {orientation}: {psnr(got, want):.1f} dB"


def exif_block(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


@pytest.mark.parametrize("orientation", [3, 6, 8])
@pytest.mark.parametrize("carrier", ["xmp", "xmp_element", "imagemagick"])
def test_png_orientation_outside_exif_matches_pillow(tmp_path, orientation, carrier):
    """PNG orientation in an XMP iTXt chunk (attribute or element form) or in
    ImageMagick's hex "Raw profile type exif" text chunk: Pillow applies both."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if carrier == "xmp":
        info.add_itxt("XML:com.adobe.xmp", f'<x:xmpmeta><rdf:Description tiff:Orientation="{orientation}"/></x:xmpmeta>')
    elif carrier == "xmp_element":
        info.add_itxt("XML:com.adobe.xmp", f"<x:xmpmeta><tiff:Orientation>{orientation}</tiff:Orientation></x:xmpmeta>")
    else:
        data = exif_block(orientation).hex()
        lines = "\n".join(data[i:i + 72] for i in range(0, len(data), 72))
        info.add_text("Raw profile type exif", f"\nexif\n{len(data) // 2:8d}\n{lines}\n")
    path = tmp_path / "o.png"
    gradient("RGB").save(path, pnginfo=info)
    want = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert want.shape[:2] != (37, 61) or orientation == 3  # Pillow did rotate it
    assert np.array_equal(sio.load_image(path), want)


def test_gif_transparent_pixels_show_their_palette_colour_as_in_pillow(tmp_path):
    """A GIF's first frame is a palette image in Pillow: a transparent pixel's RGB is
    its palette entry (here red), not black."""
    index = (np.arange(40 * 30).reshape(30, 40) % 3).astype(np.uint8)
    image = Image.fromarray(index, "P")
    image.putpalette([0, 255, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    path = tmp_path / "t.gif"
    image.save(path, transparency=1)
    want = np.asarray(Image.open(path).convert("RGB"))
    assert (want[index == 1] == [255, 0, 0]).all()
    assert np.array_equal(sio.load_image(path), want)


def tiff_bytes(width, height, bits, photometric, data):
    """A little-endian, single-strip, uncompressed one-sample TIFF (Pillow
    cannot write 2- and 4-bit gray)."""
    import struct

    entries = [(256, width), (257, height), (258, bits), (259, 1), (262, photometric),
               (273, 0), (277, 1), (278, height), (279, len(data))]
    data_at = 8 + 2 + 12 * len(entries) + 4
    ifd = struct.pack("<H", len(entries))
    for tag, value in entries:
        ifd += struct.pack("<HHII", tag, 4, 1, data_at if tag == 273 else value)
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + data


@pytest.mark.parametrize("bits", [1, 2, 4])
@pytest.mark.parametrize("photometric", [0, 1])
def test_low_bit_gray_tiff_matches_pillow(tmp_path, bits, photometric):
    """1/2/4-bit gray, black or white as zero: levels spread over 0..255 as
    Pillow (and libtiff) spread them."""
    width, height = 13, 5
    row_bytes = (width * bits + 7) // 8
    rng = np.random.default_rng(bits * 10 + photometric)
    path = tmp_path / f"gray{bits}.tif"
    path.write_bytes(tiff_bytes(width, height, bits, photometric, rng.bytes(row_bytes * height)))
    want = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(sio.load_image(path), want)


@pytest.mark.parametrize(
    "mode, options",
    [
        ("YCbCr", {}),  # photometric YCbCr, uncompressed: converted as libtiff converts it
        ("RGB", {"compression": "jpeg"}),  # JPEG-in-TIFF, decoded by libtiff's libjpeg
        ("P", {}),  # palette
        ("L", {"tiffinfo": {266: 2}}),  # FillOrder 2: bits least significant first
        ("1", {"compression": "group4", "tiffinfo": {274: 6}}),  # fax, rotated by its orientation tag
    ],
)
def test_tiff_variants_the_tiff_crate_lacks_match_pillow(tmp_path, mode, options):
    path = tmp_path / "v.tif"
    image = gradient("RGB", 61, 37)
    image = image.quantize(17) if mode == "P" else image.convert(mode)
    image.save(path, "TIFF", **options)
    want = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    got = sio.load_image(path)
    assert got.shape == want.shape
    if mode == "YCbCr":
        # libtiff's YCbCr-to-RGB (float, with ReferenceBlackWhite) and
        # Pillow's own (fixed point) round a few samples apart.
        assert psnr(got, want) > 45, f"{psnr(got, want):.1f} dB"
    else:
        assert np.array_equal(got, want), f"{mode} {options}: {psnr(got, want):.1f} dB"


def test_cursor_decodes_as_pillow_shows_it(tmp_path):
    """A CUR is an ICO with type 2 and hot spots where planes and bit counts
    were: Pillow shows its largest image, and so does spdl_rs."""
    ico = tmp_path / "c.ico"
    gradient("RGBA", 32, 32).save(ico, sizes=[(16, 16), (32, 32)], bitmap_format="bmp")
    data = bytearray(ico.read_bytes())
    data[2] = 2
    for i in range(data[4]):
        data[6 + 16 * i + 4 : 6 + 16 * i + 8] = bytes([3, 0, 5, 0])  # hot spot (3, 5)
    cur = tmp_path / "c.cur"
    cur.write_bytes(bytes(data))
    want = np.asarray(Image.open(cur).convert("RGB"))
    assert want.shape == (32, 32, 3)
    assert np.array_equal(sio.load_image(cur), want)
    assert sio.info(cur)["format"] == "cur"


def test_bmp_with_a_bad_plane_count_decodes_as_in_pillow(tmp_path):
    path = tmp_path / "planes.bmp"
    gradient("RGB").save(path)
    data = bytearray(path.read_bytes())
    data[26:28] = (3).to_bytes(2, "little")
    path.write_bytes(bytes(data))
    assert np.array_equal(sio.load_image(path), np.asarray(Image.open(path).convert("RGB")))


@pytest.mark.parametrize("mode, ext", [("I;16", "pgm"), ("L", "pgm"), ("RGB", "ppm"), ("1", "pbm")])
def test_netpbm_matches_pillow(tmp_path, mode, ext):
    """16-bit PGM to its high byte, as spdl_rs's 8-bit output takes every
    16-bit image (FFmpeg's conversion rounded instead)."""
    path = tmp_path / f"n.{ext}"
    if mode == "I;16":
        values = (np.arange(37 * 61, dtype=np.uint32).reshape(37, 61) * 29) % 65536
        Image.fromarray(values.astype(np.uint16)).save(path)
        want = np.repeat((np.asarray(Image.open(path), dtype=np.uint16) >> 8).astype(np.uint8)[..., None], 3, -1)
    else:
        gradient("RGB").convert(mode).save(path)
        want = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(sio.load_image(path), want)
    assert sio.info(path)["format"] == ext


def test_icon_whose_directory_size_disagrees_with_its_bmp_matches_pillow(tmp_path):
    """Writers put the BMP's doubled height (image plus mask) in the
    directory; Pillow reads the entry at its BMP's size."""
    path = tmp_path / "i.ico"
    gradient("RGBA", 16, 16).save(path, sizes=[(16, 16)], bitmap_format="bmp")
    data = bytearray(path.read_bytes())
    data[7] = 32  # the first entry's height
    path.write_bytes(bytes(data))
    want = np.asarray(Image.open(path).convert("RGB"))
    assert want.shape == (16, 16, 3)
    assert np.array_equal(sio.load_image(path), want)


def test_qoi_without_its_end_marker_matches_pillow(tmp_path):
    path = tmp_path / "q.qoi"
    gradient("RGB").save(path)
    path.write_bytes(path.read_bytes()[:-8])
    assert np.array_equal(sio.load_image(path), np.asarray(Image.open(path).convert("RGB")))


@pytest.mark.parametrize("mode", ["RGB", "P", "1"])
def test_dib_matches_pillow(tmp_path, mode):
    """A BMP without its file header, recognised by its .dib name."""
    path = tmp_path / "d.dib"
    image = gradient("RGB")
    (image.quantize(16) if mode == "P" else image.convert(mode)).save(path, "DIB")
    assert not path.read_bytes().startswith(b"BM")
    assert np.array_equal(sio.load_image(path), np.asarray(Image.open(path).convert("RGB")))
    assert sio.info(path)["format"] == "dib"


def rle8_bmp(width, height, rle, palette, top_down=False):
    """An 8-bit run-length encoded BMP (Pillow writes none)."""
    import struct

    pal = b"".join(bytes([b, g, r, 0]) for r, g, b in palette)
    offset = 14 + 40 + len(pal)
    info = struct.pack("<IiiHHIIiiII", 40, width, -height if top_down else height, 1, 8, 1, len(rle),
                       2835, 2835, len(palette), 0)
    return b"BM" + struct.pack("<IHHI", offset + len(rle), 0, 0, offset) + info + pal + rle


@pytest.mark.parametrize("top_down", [False, True])
def test_rle_bmp_with_skipped_pixels_matches_pillow(tmp_path, top_down):
    """Pixels that delta and end-of-line codes skip show palette index 0 in
    Pillow (not black); top-down RLE is read too."""
    rle = bytes([3, 1, 0, 2, 2, 1, 2, 2, 0, 0, 1, 3, 0, 0, 8, 1, 0, 1])
    palette = [(200, 10, 10), (10, 200, 10), (10, 10, 200), (240, 240, 0)]
    path = tmp_path / "rle.bmp"
    path.write_bytes(rle8_bmp(8, 4, rle, palette, top_down))
    want = np.asarray(Image.open(path).convert("RGB"))
    assert (want == [200, 10, 10]).all(-1).any(), "the file has skipped pixels"
    assert np.array_equal(sio.load_image(path), want)
