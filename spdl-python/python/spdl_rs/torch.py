"""PyTorch integration: zero-copy tensors, a ``DataLoader`` adapter, host-to-device copies.

PyTorch is optional: ``import spdl_rs`` never imports it, and importing this module
without it raises ``ImportError`` saying so.

- :func:`to_torch`: NumPy arrays (what every spdl_rs pipeline and ``spdl_rs.io``
  function returns) to ``torch.Tensor`` without copying; ``channels_first=True`` gives
  an (N, C, H, W) view of (N, H, W, C) batches, still without a copy.
- :class:`PipelineDataset`: a ``torch.utils.data.IterableDataset`` that builds an
  spdl_rs pipeline over this process's share of a list of items (DataLoader worker x
  distributed rank), optionally shuffled per epoch, and refuses to lose dropped items
  silently.
- :func:`to_device`: a callable (usable as a pipeline stage) that pins host memory and
  copies to a device with ``non_blocking=True``.

Typical use: one process per GPU, the parallelism in the pipeline's Rust threads
rather than in DataLoader worker processes (each worker process would copy every
batch once more, into shared memory, to hand it to the main process)::

    from torch.utils.data import DataLoader
    from spdl_rs.pipeline import PipelineBuilder
    from spdl_rs.torch import PipelineDataset, to_device

    def build(paths):
        return (PipelineBuilder().add_source(paths)
                .decode_image(size=(224, 224), concurrency=8)
                .aggregate(32).collate().add_sink(4).build(num_threads=8))

    dataset = PipelineDataset(paths, build, shuffle=True, channels_first=True)
    loader = DataLoader(dataset, batch_size=None, num_workers=0)
    for epoch in range(10):
        dataset.set_epoch(epoch)
        for batch in map(to_device("cuda"), loader):
            ...  # (32, 3, 224, 224) uint8 on the GPU, channels_last in memory
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Callable, Iterator, Literal, Sequence

try:
    import torch
    import torch.utils.data
except ImportError as _e:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "spdl_rs.torch needs PyTorch, which is not installed (spdl_rs itself does not "
        "depend on it; the rest of spdl_rs works without it). Install it with "
        "`pip install torch`."
    ) from _e

import numpy as np

from ._native import PipelineFailure

__all__ = [
    "to_torch",
    "to_device",
    "PipelineDataset",
    "ItemsDroppedError",
    "ItemsDroppedWarning",
]


# --------------------------------------------------------------------------
# to_torch
# --------------------------------------------------------------------------

def _channels_first(t: torch.Tensor) -> torch.Tensor:
    if t.ndim == 4:  # (N, H, W, C) -> (N, C, H, W)
        return t.permute(0, 3, 1, 2)
    if t.ndim == 3:  # (H, W, C) -> (C, H, W)
        return t.permute(2, 0, 1)
    return t


def _array_to_tensor(a: np.ndarray) -> torch.Tensor:
    if any(s < 0 for s in a.strides):
        # torch.from_numpy refuses negative strides (e.g. a[::-1]); this is the one
        # case that copies.
        a = np.ascontiguousarray(a)
    if not a.flags.writeable:
        # from_numpy shares read-only memory too, but warns that writing through the
        # tensor is undefined. spdl_rs's own arrays are writable; a read-only array
        # the caller made stays shared, and the caller keeps the responsibility.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(a)
    return torch.from_numpy(a)


def _convert(obj: Any, channels_first: bool) -> Any:
    if isinstance(obj, torch.Tensor):
        return _channels_first(obj) if channels_first else obj
    if isinstance(obj, np.ndarray):
        t = _array_to_tensor(obj)
        return _channels_first(t) if channels_first else t
    if isinstance(obj, tuple):
        if hasattr(obj, "_fields"):  # namedtuple
            return type(obj)(*(_convert(x, channels_first) for x in obj))
        return tuple(_convert(x, channels_first) for x in obj)
    if isinstance(obj, list):
        return [_convert(x, channels_first) for x in obj]
    if isinstance(obj, dict):
        return {k: _convert(v, channels_first) for k, v in obj.items()}
    return obj


def to_torch(array: Any, *, channels_first: bool = False) -> Any:
    """NumPy array(s) to ``torch.Tensor`` without copying.

    The tensor shares the array's memory (``torch.from_numpy``) and keeps the array,
    and so the buffer spdl_rs decoded into, alive: a write through either is seen by
    the other. The one exception is an array with negative strides (``a[::-1]``),
    which ``torch`` cannot represent and which is copied.

    Args:
        array: a NumPy array, a ``torch.Tensor`` (returned as is), or a tuple
            (namedtuples kept), list or dict of them, converted element-wise; any
            other object (ints, strings, ...) passes through unchanged.
        channels_first: return a permuted *view* instead of the (…, H, W, C) layout
            spdl_rs produces: (N, H, W, C) -> (N, C, H, W) and (H, W, C) -> (C, H, W).
            Nothing is copied: the result is not ``contiguous()`` but is contiguous in
            ``torch.channels_last`` memory format, which convolutions take directly.
            A bare array that is not 3-D or 4-D raises ``ValueError``; inside a
            container, arrays of other ranks (labels, audio) are left as they are.

    Returns:
        the same structure with tensors in place of arrays.
    """
    if channels_first and isinstance(array, (np.ndarray, torch.Tensor)) and array.ndim not in (3, 4):
        raise ValueError(
            f"channels_first needs an (H, W, C) or (N, H, W, C) array, got shape {tuple(array.shape)}"
        )
    return _convert(array, channels_first)


# --------------------------------------------------------------------------
# to_device
# --------------------------------------------------------------------------

class _ToDevice:
    """The callable :func:`to_device` returns (a class, so that it pickles)."""

    def __init__(self, device: torch.device, pin_memory: bool, non_blocking: bool, channels_first: bool):
        self.device = device
        self.pin_memory = pin_memory
        self.non_blocking = non_blocking
        self.channels_first = channels_first

    def _move(self, t: torch.Tensor) -> torch.Tensor:
        if t.device == self.device:
            return t
        if (
            self.pin_memory
            and t.device.type == "cpu"
            and self.device.type != "cpu"
            and torch.cuda.is_available()
            and not t.is_pinned()
        ):
            # One host copy into page-locked memory (from PyTorch's caching host
            # allocator, which keeps the block alive until the async copy is done).
            t = t.pin_memory()
        return t.to(self.device, non_blocking=self.non_blocking)

    def _walk(self, obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return self._move(obj)
        if isinstance(obj, tuple):
            if hasattr(obj, "_fields"):
                return type(obj)(*(self._walk(x) for x in obj))
            return tuple(self._walk(x) for x in obj)
        if isinstance(obj, list):
            return [self._walk(x) for x in obj]
        if isinstance(obj, dict):
            return {k: self._walk(v) for k, v in obj.items()}
        return obj

    def __call__(self, item: Any) -> Any:
        return self._walk(to_torch(item, channels_first=self.channels_first))

    def __repr__(self) -> str:
        return (f"to_device({str(self.device)!r}, pin_memory={self.pin_memory}, "
                f"non_blocking={self.non_blocking}, channels_first={self.channels_first})")


def to_device(
    device: str | torch.device,
    *,
    pin_memory: bool = True,
    non_blocking: bool = True,
    channels_first: bool = False,
) -> Callable[[Any], Any]:
    """A function that moves an item (arrays, tensors, or a tuple/list/dict of them) to ``device``.

    Arrays are first made tensors by :func:`to_torch` (no copy). For a CUDA device,
    host tensors are copied into pinned memory (``pin_memory=True``) and then copied
    to the device with ``non_blocking=True``, so the host thread does not wait for the
    transfer. Pinning is skipped when the target is the CPU or CUDA is not available;
    tensors already on ``device`` are returned as they are (``to_device("cpu")`` copies
    nothing).

    Use it as a pipeline stage, so the pinning copy and the transfer are issued on a
    pipeline thread, off the training loop::

        builder.aggregate(32).collate().pipe(to_device("cuda"))

    or on the consumer side: ``for batch in map(to_device("cuda"), loader)``.

    A non-blocking copy is issued on the issuing thread's current CUDA stream (the
    default stream unless you set another one); work on the same stream is ordered
    after it. A consumer on another stream must wait for that stream first.

    Returns:
        a picklable callable ``item -> item``.
    """
    return _ToDevice(torch.device(device), pin_memory, non_blocking, channels_first)


# --------------------------------------------------------------------------
# PipelineDataset
# --------------------------------------------------------------------------

class ItemsDroppedError(PipelineFailure):
    """An epoch ended with items that the pipeline dropped (``on_failure="raise"``).

    A ``spdl_rs.PipelineFailure`` (so a ``RuntimeError``). Its message lists every
    dropped item; in the process that raised it, ``failures`` holds them as
    ``(stage, item, reason)`` tuples (a DataLoader worker re-raises it in the main
    process with the message only).
    """

    def __init__(self, message: str, failures: list[tuple[str, Any, str]] | None = None):
        super().__init__(message)
        self.failures = failures or []


class ItemsDroppedWarning(UserWarning):
    """An epoch ended with items that the pipeline dropped (``on_failure="warn"``)."""


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"environment variable {name}={v!r} is not an integer") from None


class PipelineDataset(torch.utils.data.IterableDataset):
    """A ``DataLoader``-compatible dataset running an spdl_rs pipeline over this process's items.

    Each ``iter()`` (one per epoch, in every DataLoader worker) takes this process's
    share of ``items``, calls ``build(share)`` to get a ``spdl_rs.pipeline.Pipeline``
    over it, runs epoch ``epoch`` of it and yields its outputs converted by
    :func:`to_torch`.

    Sharding: the (shuffled, if asked) items are split among ranks with equal counts,
    as ``DistributedSampler`` does (``remainder="pad"`` repeats the first few items so
    every rank gets ``ceil(n / world_size)``, ``"drop"`` leaves out the last few so
    every rank gets ``floor(n / world_size)``): ranks with unequal counts would hang
    DDP's collectives. A rank's items are then split among its DataLoader workers
    (``worker_id::num_workers``). ``num_workers``/``worker_id`` come from
    ``torch.utils.data.get_worker_info()`` (1/0 outside a worker); ``rank``/
    ``world_size`` from ``torch.distributed`` when it is initialized, else from the
    ``RANK``/``WORLD_SIZE`` environment variables that ``torchrun`` sets. With one rank,
    every item is read exactly once.

    Use ``DataLoader(dataset, batch_size=None)``: batches are made by the pipeline
    (``aggregate``/``collate``), not by the DataLoader.

    Args:
        items: the sources (paths, URLs, or any picklable items the pipeline takes).
        build: ``build(share) -> Pipeline``; builds the pipeline over a list of items.
            Called once per ``iter()`` in the process that iterates (so a DataLoader
            worker builds its pipeline after the fork). With ``num_workers > 0`` and the
            ``spawn``/``forkserver`` start methods it must be picklable (a module-level
            function, not a lambda).
        distributed: ``True``: shard by rank (``RANK``/``WORLD_SIZE`` must be set or
            ``torch.distributed`` initialized); ``False``: ignore ranks (every rank gets
            all items, shared only among its DataLoader workers); ``None`` (default):
            shard by rank when ``torch.distributed`` is initialized or both variables
            are set.
        shuffle: permute ``items`` before sharding, with a permutation that depends
            only on ``seed`` and the epoch (the same in every process, so shares stay
            disjoint). Within a share, the pipeline's own output order applies.
        seed: the shuffle's seed.
        remainder: ``"pad"`` (default) or ``"drop"``, when the items do not divide
            evenly among ranks (see above).
        on_failure: when the epoch's run dropped items (``run.failures()``, e.g. an
            undecodable image): ``"raise"`` (default) raises :class:`ItemsDroppedError`
            after the last batch, ``"warn"`` warns (:class:`ItemsDroppedWarning`). Both
            list every dropped item. Never silent.
        channels_first: passed to :func:`to_torch`.

    Call :meth:`set_epoch` before each epoch to change the shuffle and the epoch
    number passed to ``Pipeline.run``. It works with ``persistent_workers=True`` too:
    the epoch lives in shared memory, read by the workers at each ``iter()``.
    """

    def __init__(
        self,
        items: Sequence[Any],
        build: Callable[[list[Any]], Any],
        *,
        distributed: bool | None = None,
        shuffle: bool = False,
        seed: int = 0,
        on_failure: Literal["raise", "warn"] = "raise",
        channels_first: bool = False,
        remainder: Literal["pad", "drop"] = "pad",
    ) -> None:
        super().__init__()
        if remainder not in ("pad", "drop"):
            raise ValueError(f'remainder must be "pad" or "drop", got {remainder!r}')
        self.remainder = remainder
        if on_failure not in ("raise", "warn"):
            raise ValueError(f'on_failure must be "raise" or "warn", got {on_failure!r}')
        if not callable(build):
            raise TypeError(f"build must be callable, got {type(build).__name__}")
        self.items = list(items)
        self.build = build
        self.distributed = distributed
        self.shuffle = shuffle
        self.seed = int(seed)
        self.on_failure = on_failure
        self.channels_first = channels_first
        # Shared memory, so that set_epoch in the main process reaches persistent
        # DataLoader workers (which hold copies of this object).
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()

    # -- epochs ------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch of the next ``iter()``: the shuffle and ``Pipeline.run(epoch)``."""
        self._epoch[0] = int(epoch)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    # -- sharding ----------------------------------------------------------
    def _rank(self) -> tuple[int, int]:
        if self.distributed is False:
            return 0, 1
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
        if rank is None or world is None:
            if self.distributed:
                raise ValueError(
                    "PipelineDataset(distributed=True) needs torch.distributed initialized "
                    "or the RANK and WORLD_SIZE environment variables (torchrun sets them)"
                )
            return 0, 1
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"bad RANK={rank} / WORLD_SIZE={world}")
        return rank, world

    def shard(self, epoch: int | None = None) -> tuple[list[Any], int, int]:
        """This process's share for ``epoch`` (default: the current one), with its
        ``(global_index, global_count)``."""
        epoch = self.epoch if epoch is None else epoch
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        rank, world = self._rank()
        index, count = rank * workers + worker, world * workers
        n = len(self.items)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
        if world > 1 and n > 0:
            per_rank = -(-n // world) if self.remainder == "pad" else n // world
            order = np.resize(order, per_rank * world)  # pads by repeating from the start
        rank_items = order[rank::world]
        share = [self.items[i] for i in rank_items[worker::workers]]
        return share, index, count

    # -- iteration ---------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        epoch = self.epoch
        share, index, count = self.shard(epoch)
        pipeline = self.build(share)
        if hasattr(pipeline, "run"):  # a Pipeline
            run = pipeline.run(epoch)
        elif hasattr(pipeline, "failures"):  # a PipelineRun already started
            run = pipeline
        else:
            raise TypeError(
                f"build(share) must return a spdl_rs.pipeline.Pipeline, got {type(pipeline).__name__}"
            )
        finished = False
        try:
            for item in run:
                yield to_torch(item, channels_first=self.channels_first)
            finished = True
        finally:
            failures = run.failures() if finished else []
            run.close()
        if failures:
            self._report(failures, share, index, count, epoch)

    def _report(self, failures: list[tuple[str, int, str]], share: list[Any], index: int, count: int,
                epoch: int) -> None:
        named = []
        lines = []
        for stage, pos, reason in failures:
            item = share[pos] if isinstance(pos, int) and 0 <= pos < len(share) else None
            named.append((stage, item, reason))
            what = f"item {item!r}" if item is not None else "no item"
            lines.append(f"  stage {stage!r}, position {pos} of the share, {what}: {reason}")
        msg = (
            f"{len(failures)} failure(s) dropped items in epoch {epoch} (share {index} of {count}, "
            f"{len(share)} items); a failure after aggregate() drops the whole group that "
            f"starts at the named item:\n" + "\n".join(lines)
        )
        if self.on_failure == "raise":
            raise ItemsDroppedError(msg, named)
        warnings.warn(msg, ItemsDroppedWarning, stacklevel=2)
