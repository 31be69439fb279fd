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
