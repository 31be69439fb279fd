#!/usr/bin/python3
"""Pillow's decode of an image, as raw bytes on stdout: the oracle for
spdl-io's image tests. Usage:
    pillow_oracle.py FILE MODE TRANSPOSE SIZE FILTER [BOX]
MODE: a Pillow mode (RGB, L, RGBA) or "I16" (16-bit samples, native u16).
TRANSPOSE: 1 to apply EXIF orientation (ImageOps.exif_transpose), else 0.
SIZE: WxH to resize (Image.resize with FILTER: BILINEAR, BICUBIC, BOX,
NEAREST, LANCZOS), or - to keep the size. BOX: left,top,right,bottom of
the (transposed) image to resize from, as Image.resize(box=...).
The shape (height width channels) goes to stderr."""
import sys

import numpy as np
from PIL import Image, ImageOps

path, mode, transpose, size, filt = sys.argv[1:6]
box = tuple(map(int, sys.argv[6].split(","))) if len(sys.argv) > 6 else None
im = Image.open(path)
if transpose == "1":
    im = ImageOps.exif_transpose(im)
if mode == "I16":
    arr = np.asarray(im).astype(np.uint16)
    if arr.ndim == 2:
        arr = arr[:, :, None]
else:
    im = im.convert(mode)
    if size != "-":
        w, h = map(int, size.split("x"))
        im = im.resize((w, h), resample=getattr(Image.Resampling, filt), box=box)
    arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[:, :, None]
sys.stderr.write("\nSHAPE " + " ".join(map(str, arr.shape)))
sys.stdout.buffer.write(np.ascontiguousarray(arr).tobytes())
