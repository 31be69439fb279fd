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


@pytest.mark.parametrize(
    "mode,pixel_format",
    [("RGBA", "DXT1"), ("RGBA", "DXT3"), ("RGBA", "DXT5"), ("RGBA", "BC2"), ("RGBA", "BC3"), ("RGB", "BC5"),
     ("L", None), ("LA", None), ("RGB", None), ("RGBA", None)],
)
def test_dds_matches_pillow(tmp_path, mode, pixel_format):
    """DDS block formats (interpolation truncated as Pillow truncates it, blocks
    clipped at a 61x37 image's edges; BC2/BC3/BC5 with a DX10 header) and
    uncompressed L, LA, RGB and RGBA masks."""
    path = tmp_path / "t.dds"
    options = {"pixel_format": pixel_format} if pixel_format else {}
    gradient(mode).save(path, **options)
    for fmt, pil_mode in [("rgb24", "RGB"), ("rgba", "RGBA")]:
        want = np.asarray(Image.open(path).convert(pil_mode))
        assert np.array_equal(sio.load_image(path, pix_fmt=fmt), want), (fmt, pixel_format)


def bmp_16_bit(pixels, masks):
    """A bottom-up 16-bit BMP with BI_BITFIELDS `masks` (red, green, blue)."""
    import struct

    h, w = pixels.shape
    rows = [pixels[y].astype("<u2").tobytes().ljust((w * 2 + 3) & ~3, b"\0") for y in reversed(range(h))]
    body = b"".join(rows)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 16, 3, len(body), 2835, 2835, 0, 0) + struct.pack("<3I", *masks)
    offset = 14 + len(info)
    return struct.pack("<2sIHHI", b"BM", offset + len(body), 0, 0, offset) + info + body


@pytest.mark.parametrize("masks", [(0xF800, 0x7E0, 0x1F), (0x7C00, 0x3E0, 0x1F)])
def test_16_bit_bmp_levels_match_pillow(tmp_path, masks):
    """5:6:5 and 5:5:5 BMPs: Pillow expands a 5-bit level v to v * 255 // 31 (the
    image crate rounds); every 16-bit value appears."""
    path = tmp_path / "t.bmp"
    path.write_bytes(bmp_16_bit(np.arange(65536, dtype=np.uint32).reshape(256, 256), masks))
    want = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(sio.load_image(path), want)


@pytest.mark.parametrize("ext", ["xbm", "msp"])
def test_one_bit_formats_match_pillow(tmp_path, ext):
    """XBM (set bits white in Pillow, black in FFmpeg's reader) and MSP, both
    written by Pillow."""
    path = tmp_path / f"t.{ext}"
    gradient("L", 64, 40).convert("1").save(path)
    want = np.asarray(Image.open(path).convert("RGB"))
    assert 0 < want.mean() < 255
    assert np.array_equal(sio.load_image(path), want)


@pytest.mark.parametrize("mode,ext", [("F", "tif"), ("I", "tif"), ("F", "pfm")])
def test_gray_numbers_match_pillow_or_the_16_bit_rule(tmp_path, mode, ext):
    """32-bit float gray TIFFs and gray PFM (Pillow's mode F): each value is an
    8-bit level, clipped and truncated, as Pillow's convert("L") does. 32-bit
    integers (mode I) are 16-bit levels: clipped to 0..65535, then the high byte,
    as the conformance script reads mode I and as 16-bit gray is read."""
    y, x = np.mgrid[0:37, 0:61]
    scale = 1.0 if mode == "F" else 300.0
    values = ((x * 5.3 - y * 2.1 - 20) * scale).astype(np.float32 if mode == "F" else np.int32)
    path = tmp_path / f"n.{ext}"
    Image.fromarray(values, mode).save(path)
    image = Image.open(path)
    if mode == "I":
        gray = (np.asarray(image, dtype=np.int64).clip(0, 65535) >> 8).astype(np.uint8)
        want = np.stack([gray] * 3, -1)
        wide = sio.load_image(path, dtype="uint16")
        assert np.array_equal(wide[..., 0], np.asarray(image, dtype=np.int64).clip(0, 65535))
    else:
        want = np.asarray(image.convert("RGB"))
    assert 0 < want.mean() < 255
    assert np.array_equal(sio.load_image(path), want)


@pytest.mark.parametrize("compression", [None, "tiff_lzw"])
def test_premultiplied_alpha_tiff_is_made_straight_as_in_pillow(tmp_path, compression):
    """A TIFF with associated alpha (ExtraSamples = 1): Pillow divides the colour by
    alpha (v * 255 // a, clipped; 0 where a is 0)."""
    rgba = np.asarray(gradient("RGBA")).copy()
    rgba[..., :3] = (rgba[..., :3].astype(np.uint16) * rgba[..., 3:] // 255).astype(np.uint8)
    path = tmp_path / "a.tif"
    Image.fromarray(rgba, "RGBA").save(path, compression=compression)
    # Pillow writes straight alpha (ExtraSamples 2); the entry becomes 1.
    entry = b"\x52\x01\x03\x00\x01\x00\x00\x00\x02\x00"
    data = path.read_bytes()
    assert data.count(entry) == 1
    path.write_bytes(data.replace(entry, entry[:8] + b"\x01\x00"))
    from PIL import TiffImagePlugin

    image = Image.open(path)
    assert image.tag_v2.get(TiffImagePlugin.EXTRASAMPLES) in (1, (1,))
    want = np.asarray(image.convert("RGB"))
    assert not np.array_equal(want, rgba[..., :3])
    assert np.array_equal(sio.load_image(path), want)


def test_icns_gives_its_largest_png_as_pillow(tmp_path):
    """An Apple icon written by Pillow (PNG entries from 16 to 1024 pixels): Pillow
    and spdl_rs show the largest."""
    path = tmp_path / "i.icns"
    gradient("RGBA", 64, 64).resize((1024, 1024)).save(path)
    want = np.asarray(Image.open(path).convert("RGB"))
    assert want.shape == (1024, 1024, 3)
    assert np.array_equal(sio.load_image(path), want)


def test_dcx_gives_its_first_pcx_page_as_pillow(tmp_path):
    """A DCX (a page table, then PCX pages) around two PCX files written by
    Pillow: the first page is the image."""
    import io
    import struct

    pages = []
    for mode in ("RGB", "L"):
        buf = io.BytesIO()
        gradient(mode).save(buf, "PCX")
        pages.append(buf.getvalue())
    table = 4 + 4 * 3
    offsets = [table, table + len(pages[0]), 0]
    path = tmp_path / "p.dcx"
    path.write_bytes(struct.pack("<4I", 0x3ADE68B1, *offsets) + b"".join(pages))
    want = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(sio.load_image(path), want)


def test_16_bit_tga_levels_match_pillow(tmp_path):
    """True-colour TGA in 16 bits (5:5:5): Pillow expands a level v to v * 255 // 31
    where FFmpeg repeats its high bits; every 15-bit value appears."""
    import struct

    w, h = 256, 128
    header = struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, w, h, 16, 0x20)
    path = tmp_path / "t.tga"
    path.write_bytes(header + np.arange(w * h, dtype="<u2").tobytes())
    want = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(sio.load_image(path), want)


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF support")
def test_avif_orientation_in_xmp_matches_pillow(tmp_path):
    """An AVIF whose only orientation is XMP's tiff:Orientation: Pillow applies it."""
    path = tmp_path / "x.avif"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
    gradient("RGB", 96, 64).save(path, xmp=xmp, quality=95)
    want = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert want.shape[:2] == (96, 64)
    got = sio.load_image(path)
    assert got.shape == want.shape
    assert psnr(got, want) > 30


def test_16_bit_images_through_ffmpeg_keep_the_high_byte_as_pillow(tmp_path):
    """A 16-bit SGI (FFmpeg decodes it to rgb48): 8-bit output is each sample's
    high byte, as Pillow reads it (swscale would round); dtype="uint16" gives the
    samples themselves."""
    import struct

    w, h = 61, 37
    rng = np.random.default_rng(3)
    samples = rng.integers(0, 65536, (h, w, 3), dtype=np.uint16)
    header = struct.pack(">hbbHHHHii4x80si", 474, 0, 2, 3, w, h, 3, 0, 65535, b"", 0).ljust(512, b"\0")
    # Planes one after the other, rows bottom up, big-endian samples.
    planes = b"".join(samples[::-1, :, c].astype(">u2").tobytes() for c in range(3))
    path = tmp_path / "t.sgi"
    path.write_bytes(header + planes)
    want = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(want, (samples >> 8).astype(np.uint8))
    assert np.array_equal(sio.load_image(path), want)
    assert np.array_equal(sio.load_image(path, dtype="uint16"), samples)


def tiled_planar_tiff(samples, tile=16, extra=None):
    """An uncompressed little-endian TIFF of (H, W, C) uint16 `samples`, tiled,
    each sample in a plane of its own (the layout the tiff crate panics on)."""
    import struct

    h, w, c = samples.shape
    across, down = -(-w // tile), -(-h // tile)
    tiles = []
    for p in range(c):
        for ty in range(down):
            for tx in range(across):
                block = np.zeros((tile, tile), "<u2")
                part = samples[ty * tile:(ty + 1) * tile, tx * tile:(tx + 1) * tile, p]
                block[: part.shape[0], : part.shape[1]] = part
                tiles.append(block.tobytes())
    n = len(tiles)
    entries = [(256, 3, [w]), (257, 3, [h]), (258, 3, [16] * c), (259, 3, [1]), (262, 3, [2]),
               (277, 3, [c]), (284, 3, [2]), (322, 3, [tile]), (323, 3, [tile]),
               (324, 4, None), (325, 4, [len(t) for t in tiles])]
    if extra is not None:
        entries.append((338, 3, [extra]))
    entries.sort()
    ifd_at = 8
    data_at = ifd_at + 2 + 12 * len(entries) + 4
    blobs, body = [], b""
    offsets_at = None
    for tag, typ, values in entries:
        size = 2 if typ == 3 else 4
        count = n if values is None else len(values)
        if count * size <= 4:
            blobs.append((tag, typ, count, None, values))
        else:
            if values is None:
                offsets_at = data_at + len(body)
                values = [0] * n
            blobs.append((tag, typ, count, data_at + len(body), values))
            body += struct.pack(f"<{count}{'H' if typ == 3 else 'I'}", *values)
    pixels_at = data_at + len(body)
    tile_offsets = [pixels_at + sum(len(t) for t in tiles[:i]) for i in range(n)]
    body = bytearray(body)
    struct.pack_into(f"<{n}I", body, offsets_at - data_at, *tile_offsets)
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, at, values in blobs:
        if at is None:
            inline = struct.pack(f"<{count}{'H' if typ == 3 else 'I'}", *values).ljust(4, b"\0")
            ifd += struct.pack("<HHI", tag, typ, count) + inline
        else:
            ifd += struct.pack("<HHII", tag, typ, count, at)
    ifd += b"\0\0\0\0"
    return b"II*\0" + struct.pack("<I", ifd_at) + ifd + bytes(body) + b"".join(tiles)


@pytest.mark.parametrize("channels,extra", [(3, None), (4, 1), (4, 2)])
@pytest.mark.parametrize("size", [(48, 32), (45, 37)])  # whole and partial edge tiles
def test_tiled_planar_16_bit_tiff_gives_the_high_bytes(tmp_path, channels, extra, size):
    """Tiled TIFFs with separate 16-bit planes (the tiff crate panics on them):
    libtiff's tile reader gives the samples as stored, so 8-bit output is their
    high byte, as Pillow reads 16-bit RGB (premultiplied alpha made straight as
    Pillow does, on the high bytes), and dtype="uint16" the samples themselves.
    The oracle is the samples written (Pillow 13 reads these files a pixel off
    and refuses the RGBA ones; its own tiled planar 16-bit test files, which it
    reads, are matched in the conformance run)."""
    w, h = size
    rng = np.random.default_rng(5)
    samples = rng.integers(0, 65536, (h, w, channels), dtype=np.uint16)
    if extra == 1:  # premultiplied: colour <= alpha
        samples[..., :3] = (samples[..., :3].astype(np.uint32) * samples[..., 3:] // 65535).astype(np.uint16)
    path = tmp_path / "p.tif"
    path.write_bytes(tiled_planar_tiff(samples, extra=extra))
    high = (samples >> 8).astype(np.int64)
    want = high[..., :3]
    if extra == 1:
        a = high[..., 3:]
        want = np.where(a == 0, 0, np.minimum(255, want * 255 // np.maximum(a, 1)))
    assert np.array_equal(sio.load_image(path), want.astype(np.uint8))
    if extra != 1:
        wide = sio.load_image(path, dtype="uint16", pix_fmt="rgba" if channels == 4 else "rgb24")
        assert np.array_equal(wide, samples)
