"""Decode images, video and audio into NumPy arrays with the GIL released."""
import os
from typing import Any, Iterable, Iterator, Literal, overload

import numpy as np
import numpy.typing as npt

Src = str | os.PathLike[str] | bytes | memoryview | bytearray | npt.NDArray[np.uint8]
"""A path, a URL (s3://, gs://, az://, http(s)://) or encoded bytes (not copied)."""

def info(src: Src, *, trusted_input: bool = False) -> dict[str, Any]:
    """An image's header, or a container's and its streams' metadata.

    ``trusted_input`` (here and in every video and audio function): by default only
    the containers a media dataset holds are read, so a file can make the loader read
    nothing but itself (playlists such as HLS or DASH, concat lists, text-as-video and
    device formats raise ``DecodeError`` naming the format). ``True`` reads any format
    FFmpeg has and lets a local HLS playlist open the local files it names (never a
    network URL). Only for inputs you trust."""

def load_image(
    src: Src,
    *,
    size: tuple[int, int] | None = None,
    pix_fmt: str = "rgb24",
    interpolation: str = "bilinear",
    fit: Literal["stretch", "cover"] = "stretch",
    apply_orientation: bool = True,
    dtype: Literal["uint8", "uint16"] = "uint8",
) -> npt.NDArray[np.uint8] | npt.NDArray[np.uint16]:
    """Decodes one image to (H, W, C) uint8; ``size`` is (width, height).

    EXIF orientation is applied unless ``apply_orientation=False``; ``fit="cover"``
    resizes to cover ``size`` and centre-crops (no distortion). ``dtype="uint16"``
    keeps 16-bit samples (8-bit sources are scaled by 257).
    """

@overload
def load_image_batch(
    srcs: Iterable[Src],
    *,
    size: tuple[int, int],
    pix_fmt: str = ...,
    interpolation: str = ...,
    fit: Literal["stretch", "cover"] = ...,
    apply_orientation: bool = ...,
    num_threads: int = ...,
    on_error: Literal["raise"] = ...,
) -> npt.NDArray[np.uint8]: ...
@overload
def load_image_batch(
    srcs: Iterable[Src],
    *,
    size: tuple[int, int],
    pix_fmt: str = ...,
    interpolation: str = ...,
    fit: Literal["stretch", "cover"] = ...,
    apply_orientation: bool = ...,
    num_threads: int = ...,
    on_error: Literal["skip"],
) -> tuple[npt.NDArray[np.uint8], list[tuple[str, str]]]:
    """Decodes images on ``num_threads`` threads (0: one per core) into (N, H, W, C).

    With ``on_error="skip"`` failing images are left out and returned as
    (source, reason) pairs; an in-memory source is named by its position
    in ``srcs`` (``"<bytes #3>"``).
    """

def buffer_pool_stats() -> dict[str, int]:
    """The pool of freed output buffers: ``limit_bytes``, ``idle_bytes``,
    ``idle_buffers``, and ``hits``/``misses`` (requests of 4 MiB or more served
    from it or from fresh memory). Arrays of 4 MiB or more (frames, clips, image
    batches, audio, a pipeline's collated batches) go back to the pool when NumPy
    frees them, and the next output of a similar size reuses one instead of
    first-touching new memory. At most 8 idle buffers per dtype are kept."""

def set_buffer_pool_limit(limit_bytes: int) -> None:
    """Sets the most bytes of freed output buffers kept for reuse (default: 1/8
    of physical memory, at most 2 GiB); 0 turns reuse off and frees them."""

def load_video(
    src: Src,
    *,
    size: tuple[int, int] | None = None,
    pix_fmt: str = "rgb24",
    interpolation: str = "bilinear",
    start: float | None = None,
    end: float | None = None,
    fps: tuple[int, int] | None = None,
    num_threads: int = 1,
    apply_rotation: bool = True,
    return_pts: bool = False,
    trusted_input: bool = False,
    filter_desc: str | None = None,
    device: str = "cpu",
) -> Any:
    """Decodes frames in [start, end) seconds to (N, H, W, C) uint8 (and pts in seconds
    when ``return_pts``); ``fps=(num, den)`` resamples as FFmpeg's fps filter.
    ``filter_desc`` is an FFmpeg filter chain (as ``ffmpeg -vf`` takes it: crop, pad,
    hflip, eq, fps, ...) applied to decoded frames before conversion; its output size
    and timing decide the frames' shape and pts (the pixel format stays ``pix_fmt``).
    A chain that does not parse raises ValueError naming it and the source.
    ``device="cuda"`` or ``"cuda:N"`` decodes on NVDEC GPU N (frames copied to host
    memory); without a usable GPU it decodes on the CPU and logs why as a warning.
    Any other device string raises ValueError."""

def sample_frames(
    src: Src,
    indices: list[int],
    *,
    size: tuple[int, int] | None = None,
    pix_fmt: str = "rgb24",
    interpolation: str = "bilinear",
    num_threads: int = 1,
    apply_rotation: bool = True,
    return_pts: bool = False,
    trusted_input: bool = False,
) -> Any:
    """Decodes only the frames at ``indices`` (presentation order, any order, repeats
    allowed), seeking to the keyframe before each run."""

class VideoReader:
    """A video opened once for many lookups, each decoded with the GIL released; the
    demuxer, decoder and frame index stay open between calls. MP4/MOV files are
    indexed from their sample table (no packet read); other containers by reading
    every packet, or, with ``seek_mode="approximate"``, from the header's frame rate
    and count (no read; exact for constant-rate streams whose header is right).
    ``index`` takes bytes from ``save_index()`` to skip indexing. ``num_threads``
    counts decoder threads; a call for two or more frames also converts them on one
    more thread, beside the decoding (the same work, overlapped)."""

    def __init__(
        self,
        src: Src,
        *,
        size: tuple[int, int] | None = None,
        pix_fmt: str = "rgb24",
        interpolation: str = "bilinear",
        num_threads: int = 1,
        apply_rotation: bool = True,
        seek_mode: Literal["exact", "approximate"] = "exact",
        index: bytes | None = None,
        trusted_input: bool = False,
    ) -> None: ...
    def __len__(self) -> int: ...
    def __getitem__(self, key: int | slice) -> npt.NDArray[np.uint8]:
        """``reader[i]``: (H, W, C), negative from the end; ``reader[a:b:c]``: (N, H, W, C)."""
    def get_frames_at(self, indices: list[int], *, return_pts: bool = False) -> Any:
        """Frames at ``indices`` (any order, repeats allowed): (N, H, W, C)."""
    def get_frames_played_at(self, seconds: list[float], *, return_pts: bool = False) -> Any:
        """The frame shown at each time: the last frame at or before it. ValueError
        for a time before the first frame or past the end."""
    def get_frames_in_range(self, start: int, stop: int, step: int = 1, *, return_pts: bool = False) -> Any:
        """Frames ``range(start, stop, step)``."""
    def get_frames_played_in(self, start: float, end: float, *, return_pts: bool = False) -> Any:
        """Frames shown in ``[start, end)`` seconds."""
    def get_clips(
        self,
        num_clips: int = 1,
        frames_per_clip: int = 8,
        *,
        stride: int = 1,
        seed: int | None = None,
        return_pts: bool = False,
    ) -> Any:
        """(num_clips, frames_per_clip, H, W, C): starts spread evenly, or drawn at
        random from ``seed``; a clip longer than the video repeats its last frame.
        Frames and GOPs shared by clips are decoded once."""
    @property
    def frame_times(self) -> npt.NDArray[np.float64]: ...
    @property
    def keyframe_times(self) -> npt.NDArray[np.float64]: ...
    @property
    def index_origin(self) -> Literal["sample_table", "scan", "header"]: ...
    @property
    def metadata(self) -> dict[str, Any]:
        """The stream's metadata (as ``info``'s streams) plus ``num_frames``."""
    def save_index(self) -> bytes: ...

def encode_image(
    image: npt.NDArray[np.uint8],
    format: Literal["jpeg", "jpg", "png", "webp"],
    *,
    quality: int = 95,
    subsampling: Literal[444, 422, 420] | None = None,
) -> bytes:
    """An (H, W, C) or (H, W) uint8 array as JPEG (libjpeg-turbo; gray or RGB; chroma
    ``subsampling`` 444 from quality 90 up and 420 below unless given), PNG (gray, RGB,
    RGBA) or lossless WebP (RGB, RGBA) bytes. Pixels are written as they are: no EXIF,
    so an image loaded upright is saved upright."""

def save_image(
    path: str | os.PathLike[str],
    image: npt.NDArray[np.uint8],
    *,
    format: Literal["jpeg", "jpg", "png", "webp"] | None = None,
    quality: int = 95,
    subsampling: Literal[444, 422, 420] | None = None,
) -> None:
    """``encode_image`` written to ``path`` (a file or an object URL such as
    ``s3://bucket/out.jpg``); the format from ``format`` or the path's extension."""

def load_npy(src: Src) -> npt.NDArray[Any]:
    """A NumPy ``.npy`` (path, URL, bytes or file-like) as an array of its own dtype,
    shape and order: every numeric dtype and bool, either byte order (big-endian data
    comes back in native order), C or Fortran order, format versions 1-3. Object
    arrays (pickles) raise ``DecodeError``: nothing is ever unpickled. A header whose
    shape is over the output limit raises ``LimitError`` before anything is read."""

def load_npz(src: Src) -> dict[str, npt.NDArray[Any]]:
    """Every array of a ``.npz`` (``savez`` or ``savez_compressed``), by name, in
    archive order; each member as ``load_npy``. Members are read only as far as their
    headers declare (a zip bomb stops at its header)."""

class VideoWriter:
    """A video being written: (N, H, W, 3) uint8 RGB frames in, encoded (``codec`` is
    FFmpeg's encoder name: libx264 by default, libvpx-vp9, libaom-av1, mpeg4...) and
    muxed as they come into the container the extension (or ``format``) names.

    ``path`` is a file, an object URL (``s3://bucket/clip.mp4``: a streaming multipart
    upload; an MP4 is then fragmented, as the upload cannot seek, unless ``movflags``
    is in ``muxer_options``) or None to write into memory (``format`` then names the
    container as an extension would: ``mp4``, ``mkv``, ``webm``). ``audio_rate`` adds
    an audio track of ``audio_channels`` written with ``write_audio`` (encoder
    ``audio_codec``, default the container's: AAC for MP4); video and audio may be
    written in any order. ``close()`` (or the end of a ``with`` block) flushes and
    finishes the output and returns its bytes when it is in memory. A missing encoder
    raises ValueError naming it."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        width: int,
        height: int,
        *,
        fps: tuple[int, int] = (30, 1),
        codec: str = "libx264",
        pix_fmt: str = "yuv420p",
        options: dict[str, str] | None = None,
        format: str | None = None,
        muxer_options: dict[str, str] | None = None,
        audio_rate: int | None = None,
        audio_channels: int = 2,
        audio_codec: str | None = None,
    ) -> None: ...
    def write(self, frames: npt.NDArray[np.uint8]) -> None: ...
    def write_audio(self, samples: npt.NDArray[np.float32]) -> None: ...
    def close(self) -> bytes | None: ...
    def __enter__(self) -> "VideoWriter": ...
    def __exit__(self, *exc: object) -> bool: ...

class AudioWriter:
    """An audio stream being written: (channels, samples) float32 in, encoded (``codec``
    by FFmpeg's name, else the extension's: WAV as float32, FLAC, Opus, AAC, MP3) and
    muxed as it comes into a file, an object URL or memory (``path=None`` with
    ``format`` as an extension: ``flac``, ``wav``); ``close()`` (or the end of a
    ``with`` block) finishes the output and returns its bytes when it is in memory.
    WAV and FLAC round trips are exact (FLAC for samples 16 bits hold)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        sample_rate: int,
        channels: int,
        *,
        codec: str | None = None,
        format: str | None = None,
    ) -> None: ...
    def write(self, samples: npt.NDArray[np.float32]) -> None: ...
    def close(self) -> bytes | None: ...
    def __enter__(self) -> "AudioWriter": ...
    def __exit__(self, *exc: object) -> bool: ...

class ChunkIterator(Iterator[npt.NDArray[Any]]):
    """Chunks of a long stream; each ``next`` decodes with the GIL released."""
    def __iter__(self) -> "ChunkIterator": ...
    def __next__(self) -> npt.NDArray[Any]: ...

def stream_video(
    src: Src,
    chunk_frames: int,
    *,
    size: tuple[int, int] | None = None,
    pix_fmt: str = "rgb24",
    interpolation: str = "bilinear",
    start: float | None = None,
    end: float | None = None,
    fps: tuple[int, int] | None = None,
    num_threads: int = 1,
    apply_rotation: bool = True,
    trusted_input: bool = False,
    filter_desc: str | None = None,
) -> ChunkIterator:
    """Frames in chunks of ``chunk_frames``, (n, H, W, C) uint8 each."""

def load_audio(
    src: Src,
    *,
    sample_rate: int | None = None,
    channels: int | None = None,
    start: float | None = None,
    end: float | None = None,
    layout: Literal["channels_first", "interleaved"] = "channels_first",
    backend: Literal["auto", "ffmpeg", "symphonia", "pcm"] = "auto",
    trusted_input: bool = False,
    filter_desc: str | None = None,
) -> tuple[npt.NDArray[np.float32], int]:
    """Decodes audio to float32 (channels, samples) (or (samples, channels) when
    interleaved) and returns it with its sample rate. ``backend="auto"`` uses the direct
    PCM reader for PCM WAV and symphonia for FLAC (same samples as FFmpeg, faster) and
    FFmpeg otherwise."""

def stream_audio(
    src: Src,
    chunk_samples: int,
    *,
    sample_rate: int | None = None,
    channels: int | None = None,
    start: float | None = None,
    end: float | None = None,
    layout: Literal["channels_first", "interleaved"] = "channels_first",
    trusted_input: bool = False,
    filter_desc: str | None = None,
) -> ChunkIterator:
    """Audio in chunks of ``chunk_samples`` samples per channel."""

def list_dataset(root: str, extensions: list[str] | None = None, *, external_links: bool = False) -> list[str]:
    """The files under ``root`` (a folder or a URL prefix such as ``s3://bucket/train/``),
    recursively, whose names end with one of ``extensions`` (case-insensitive; None
    keeps all), sorted. Unreadable entries (dangling or out-of-root symlinks) are listed
    too, so a decode stage reports them instead of losing them silently."""

def class_folders(root: str, extensions: list[str] | None = None) -> tuple[list[str], list[tuple[str, int]]]:
    """``root/<class>/<file>`` as ``(classes, [(path, label), ...])``, classes sorted and
    labels their index (torchvision's ImageFolder)."""
