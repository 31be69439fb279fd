"""Ray Data reads decoded by spdl_rs (optional: needs ``pip install "ray[data]"``).

Each read task decodes its share of the dataset with spdl_rs inside the Ray worker:
the GIL is released and images are decoded on ``num_threads`` threads per task, so a
2-CPU task uses both cores. Blocks hold NumPy tensors (one row per file or shard
sample) and work with everything downstream in Ray Data (``map_batches``,
``iter_torch_batches``, ``streaming_split``...).

- ``read_images(paths_or_root, size=(224, 224))``: rows ``path``, ``image``
  (H, W, C uint8), ``error``.
- ``read_videos(paths, frames=8)`` / ``clips=(n, t)``: rows ``path``, ``frames``
  ((T, H, W, C) evenly spaced, or (n, t, H, W, C) clips), ``error``.
- ``read_audio(paths, sample_rate=16000)``: rows ``path``, ``samples`` ((C, N)
  float32, lengths vary), ``sample_rate``, ``error``.
- ``read_shards(shards, field="jpg", size=...)``: webdataset tar shards, one task per
  shard; rows ``__key__``, ``__url__``, ``image``, ``error`` and the other fields'
  bytes.
- ``ImageDecoder(size=...)``: a ``map_batches`` callable for datasets that already
  hold encoded bytes (``read_binary_files``, Parquet, ...).

``paths_or_root`` is a list of paths or URLs, or a folder or URL prefix
(``s3://bucket/train/``) listed with ``spdl_rs.io.list_dataset`` on the driver.
Object-storage credentials come from the workers' environment (``AWS_*``; pass them
with ``ray.init(runtime_env={"env_vars": ...})`` on a cluster).

Failures are never dropped silently. ``on_error="raise"`` (the default) fails the read
task with the spdl_rs error naming the file, and Ray Data's error handling applies
(``DataContext.max_errored_blocks``). ``on_error="column"`` keeps the row: its
``error`` holds the message and its tensor is zeros of the output shape (filter with
``ds.filter(lambda r: r["error"] == "")``). ``error`` is ``""`` on every good row.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import DecodeError
from . import io as sio

try:
    import ray.data
    from ray.data.block import BlockAccessor, BlockMetadata
    from ray.data.datasource import Datasource, ReadTask
except ImportError as e:  # pragma: no cover - exercised where Ray is absent
    raise ImportError('spdl_rs.ray needs Ray Data: pip install "ray[data]"') from e

__all__ = ["SpdlDatasource", "ImageDecoder", "read_images", "read_videos", "read_audio", "read_shards"]

IMAGE_EXTENSIONS = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]
VIDEO_EXTENSIONS = ["mp4", "mov", "mkv", "webm", "avi"]
AUDIO_EXTENSIONS = ["wav", "flac", "mp3", "ogg", "opus", "m4a"]


def _check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "column"):
        raise ValueError(f'on_error must be "raise" or "column", not {on_error!r}')


def _list(paths_or_root: str | os.PathLike[str] | Sequence[str], extensions: list[str]) -> list[str]:
    if isinstance(paths_or_root, (str, os.PathLike)):
        root = os.fspath(paths_or_root)
        if "://" in root or os.path.isdir(root):
            return sio.list_dataset(root, extensions)
        return [root]
    return [os.fspath(p) for p in paths_or_root]


class _ImageDecode:
    """Decodes sources to (N, H, W, C) with their errors (one per source, "" when ok)."""

    def __init__(self, size, pix_fmt, fit, apply_orientation, num_threads, on_error):
        _check_on_error(on_error)
        self.size, self.pix_fmt, self.fit = size, pix_fmt, fit
        self.apply_orientation, self.num_threads, self.on_error = apply_orientation, num_threads, on_error

    def __call__(self, srcs: list[Any]) -> tuple[np.ndarray, list[str]]:
        if self.size is None:
            return self._native_sizes(srcs)
        good, failed = sio.load_image_batch(
            srcs, size=self.size, pix_fmt=self.pix_fmt, fit=self.fit,
            apply_orientation=self.apply_orientation, num_threads=self.num_threads, on_error="skip",
        )
        reasons = dict(failed)
        names = [s if isinstance(s, str) else f"<bytes #{i}>" for i, s in enumerate(srcs)]
        errors = [reasons.get(n, "") for n in names]
        if failed and self.on_error == "raise":
            raise DecodeError(next(e for e in errors if e))
        out = np.zeros((len(srcs),) + good.shape[1:], np.uint8)
        out[[i for i, e in enumerate(errors) if not e]] = good
        return out, errors

    def _native_sizes(self, srcs):
        def one(src):
            try:
                return sio.load_image(src, pix_fmt=self.pix_fmt, apply_orientation=self.apply_orientation), ""
            except Exception as e:  # noqa: BLE001 - reported per row or re-raised below
                if self.on_error == "raise":
                    raise
                return np.zeros((0, 0, 3), np.uint8), str(e)

        with ThreadPoolExecutor(max(1, self.num_threads or os.cpu_count() or 1)) as pool:
            done = list(pool.map(one, srcs))
        images = np.empty(len(done), object)
        images[:] = [d[0] for d in done]
        return images, [d[1] for d in done]


def _per_file(decode_one: Callable[[str], dict[str, Any]], on_error: str, empty: Callable[[], dict[str, Any]]):
    """A decoder of paths one by one into rows of ``decode_one``'s columns."""
    _check_on_error(on_error)

    def decode(paths: list[str], num_threads: int) -> dict[str, np.ndarray]:
        def one(path):
            try:
                return decode_one(path), ""
            except Exception as e:  # noqa: BLE001 - reported per row or re-raised
                if on_error == "raise":
                    raise
                return empty(), str(e)

        with ThreadPoolExecutor(max(1, num_threads)) as pool:
            done = list(pool.map(one, paths))
        columns: dict[str, Any] = {"path": np.array(paths, object)}
        for name in done[0][0] if done else []:
            values = [row[name] for row, _ in done]
            shapes = {getattr(v, "shape", None) for v in values}
            if len(shapes) == 1 and isinstance(values[0], np.ndarray):
                columns[name] = np.stack(values)
            else:
                column = np.empty(len(values), object)
                column[:] = values
                columns[name] = column
        columns["error"] = np.array([e for _, e in done], object)
        return columns

    return decode


class SpdlDatasource(Datasource):
    """A Ray Data datasource over ``items`` (paths or URLs; tar shards for
    ``read_shards``): ``ceil(len(items) / rows_per_block)`` read tasks (at most the
    parallelism Ray asks for) take contiguous runs of items, and ``decode(items,
    num_threads)`` turns each ``rows_per_block`` of a run into one block (a dict of
    NumPy columns)."""

    def __init__(self, items: Sequence[str], decode: Callable[[list[str], int], dict[str, np.ndarray]],
                 *, rows_per_block: int = 256, num_threads: int = 0, name: str = "spdl_rs"):
        self.items = list(items)
        self.decode = decode
        self.rows_per_block = max(1, rows_per_block)
        self.num_threads = num_threads
        self.name = name

    def get_name(self) -> str:
        return self.name

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None):
        # Full blocks, not Ray's default of 200+ tasks: a task costs ~10 ms to
        # schedule, more than decoding a few images.
        n = len(self.items)
        tasks = max(1, min(-(-n // self.rows_per_block), parallelism if parallelism > 0 else n))
        bounds = np.linspace(0, n, tasks + 1).astype(int)
        out = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            if hi <= lo:
                continue
            chunk = self.items[lo:hi]
            meta = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=tuple(chunk))
            out.append(ReadTask(self._reader(chunk), meta))
        return out

    def _reader(self, chunk: list[str]) -> Callable[[], Iterable[Any]]:
        decode, per_block, threads = self.decode, self.rows_per_block, self.num_threads

        def read():
            for i in range(0, len(chunk), per_block):
                yield BlockAccessor.batch_to_block(decode(chunk[i:i + per_block], threads))

        return read


def read_images(paths_or_root, *, size: tuple[int, int] | None = (224, 224), pix_fmt: str = "rgb24",
                fit: str = "stretch", apply_orientation: bool = True, num_threads: int = 0,
                on_error: str = "raise", rows_per_block: int = 64, extensions: list[str] | None = None,
                **read_args) -> "ray.data.Dataset":
    """A dataset of decoded images: ``path``, ``image`` ((H, W, C) uint8; native sizes
    when ``size`` is None) and ``error``. ``num_threads`` decode threads per task (0:
    every core); ``read_args`` go to ``ray.data.read_datasource`` (``override_num_blocks``,
    ``num_cpus``, ``concurrency``...)."""
    paths = _list(paths_or_root, extensions or IMAGE_EXTENSIONS)
    images = _ImageDecode(size, pix_fmt, fit, apply_orientation, num_threads, on_error)

    def decode(chunk, threads):
        image, errors = images(chunk)
        return {"path": np.array(chunk, object), "image": image, "error": np.array(errors, object)}

    source = SpdlDatasource(paths, decode, rows_per_block=rows_per_block, num_threads=num_threads, name="SpdlImages")
    return ray.data.read_datasource(source, **read_args)


def read_videos(paths_or_root, *, frames: int | None = None, clips: tuple[int, int] | None = None,
                size: tuple[int, int] | None = (224, 224), seed: int | None = None, num_threads: int = 1,
                on_error: str = "raise", rows_per_block: int = 8, extensions: list[str] | None = None,
                **read_args) -> "ray.data.Dataset":
    """A dataset of decoded videos, one row per file: ``frames`` evenly spaced frames
    ((T, H, W, C); 8 by default), or with ``clips=(n, t)`` n clips of t frames ((n, t, H, W, C),
    spread evenly or drawn from ``seed``), read through ``spdl_rs.io.VideoReader``;
    ``num_threads`` files decoded at once per task."""
    if frames is not None and clips is not None:
        raise ValueError("give frames= or clips=(n, t), not both")
    if clips is None:
        frames = frames or 8
    paths = _list(paths_or_root, extensions or VIDEO_EXTENSIONS)
    shape = (frames,) if clips is None else tuple(clips)

    def one(path):
        reader = sio.VideoReader(path, size=size)
        if clips is None:
            n = len(reader)
            picks = [min(n - 1, (2 * k + 1) * n // (2 * frames)) for k in range(frames)]
            return {"frames": reader.get_frames_at(picks)}
        return {"frames": reader.get_clips(clips[0], clips[1], seed=seed)}

    def empty():
        return {"frames": np.zeros(shape + ((size[1], size[0], 3) if size else (0, 0, 3)), np.uint8)}

    decode = _per_file(one, on_error, empty)
    source = SpdlDatasource(paths, decode, rows_per_block=rows_per_block, num_threads=num_threads, name="SpdlVideos")
    return ray.data.read_datasource(source, **read_args)


def read_audio(paths_or_root, *, sample_rate: int | None = 16000, channels: int | None = None,
               num_threads: int = 2, on_error: str = "raise", rows_per_block: int = 64,
               extensions: list[str] | None = None, **read_args) -> "ray.data.Dataset":
    """A dataset of decoded audio, one row per file: ``samples`` ((C, N) float32;
    lengths vary from file to file), ``sample_rate`` and ``error``."""
    paths = _list(paths_or_root, extensions or AUDIO_EXTENSIONS)

    def one(path):
        samples, rate = sio.load_audio(path, sample_rate=sample_rate, channels=channels)
        return {"samples": samples, "sample_rate": rate}

    def empty():
        return {"samples": np.zeros((channels or 1, 0), np.float32), "sample_rate": sample_rate or 0}

    decode = _per_file(one, on_error, empty)
    source = SpdlDatasource(paths, decode, rows_per_block=rows_per_block, num_threads=num_threads, name="SpdlAudio")
    return ray.data.read_datasource(source, **read_args)


def read_shards(shards: Sequence[str], *, field: str = "jpg", size: tuple[int, int] | None = (224, 224),
                pix_fmt: str = "rgb24", fit: str = "stretch", num_threads: int = 0, on_error: str = "raise",
                **read_args) -> "ray.data.Dataset":
    """A dataset of the samples of webdataset tar shards (one read task per shard,
    read as a stream): ``__key__``, ``__url__``, ``image`` (the ``field`` member
    decoded; ``"jpg;png"`` takes the first the sample has), ``error``, and the other
    fields' bytes. A shard that cannot be read, or a broken member, is an error
    (``"raise"``) or a row with only ``__url__`` and ``error`` set (``"column"``)."""
    _check_on_error(on_error)
    from .pipeline import PipelineBuilder

    images = _ImageDecode(size, pix_fmt, fit, True, num_threads, on_error)
    names = field.split(";")

    def decode(chunk, threads):
        run = PipelineBuilder().add_shards(chunk).build().run()
        samples = list(run)
        failures = [f"{stage}: {reason}" for stage, _, reason in run.failures()]
        if failures and on_error == "raise":
            raise DecodeError(failures[0])
        keyed = [next((s[n] for n in names if n in s), b"") for s in samples]
        image, errors = images(keyed) if samples else (np.zeros((0, 0, 0, 3), np.uint8), [])
        # A failed member's row: only its shard and the reason.
        rows = {
            "__key__": np.array([s["__key__"] for s in samples] + [""] * len(failures), object),
            "__url__": np.array([s["__url__"] for s in samples] + chunk[:1] * len(failures), object),
        }
        for k in sorted({k for s in samples for k in s if not k.startswith("__") and k not in names}):
            rows[k] = np.array([s.get(k, b"") for s in samples] + [b""] * len(failures), object)
        blank = np.zeros((len(failures),) + image.shape[1:], image.dtype)
        if image.dtype == object:
            blank[:] = [np.zeros((0, 0, 3), np.uint8)] * len(failures)
        rows["image"] = np.concatenate([image, blank])
        rows["error"] = np.array(errors + failures, object)
        return rows

    source = SpdlDatasource(list(shards), decode, rows_per_block=1, num_threads=num_threads, name="SpdlShards")
    return ray.data.read_datasource(source, **read_args)


class ImageDecoder:
    """A ``map_batches`` callable: decodes the encoded images of ``column`` (bytes)
    into ``output`` ((N, H, W, C) uint8) and adds ``error``; the other columns pass
    through. Use with ``batch_format="numpy"``:
    ``ds.map_batches(ImageDecoder(size=(224, 224)), batch_format="numpy")``."""

    def __init__(self, *, size: tuple[int, int] | None = (224, 224), column: str = "bytes", output: str = "image",
                 pix_fmt: str = "rgb24", fit: str = "stretch", apply_orientation: bool = True,
                 num_threads: int = 0, on_error: str = "raise"):
        self.column, self.output = column, output
        self.images = _ImageDecode(size, pix_fmt, fit, apply_orientation, num_threads, on_error)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        data = [bytes(b) for b in batch[self.column]]
        image, errors = self.images(data)
        out = {k: v for k, v in batch.items() if k != self.column}
        out[self.output] = image
        out["error"] = np.array(errors, object)
        return out
