"""Concurrent data-loading pipelines: Python-callable and native stages."""
from typing import Any, AsyncIterable, Callable, Iterable, Iterator, Literal

class DistributedSampler:
    """Shuffled, rank-sharded dataset indices: the order is a function of (seed,
    epoch, rank, world size) only; ranks get disjoint indices and equal counts
    (``remainder="pad"`` repeats a few, ``"drop"`` drops the tail). ``rank`` and
    ``world_size`` default to torchrun's ``RANK``/``WORLD_SIZE`` (0 and 1 when unset).
    As a pipeline source (``add_source(sampler)``) it yields ``run(epoch)``'s indices."""
    def __init__(
        self,
        length: int,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        seed: int = 0,
        shuffle: bool = True,
        remainder: Literal["pad", "drop"] = "pad",
    ) -> None: ...
    def indices(self, epoch: int = 0) -> list[int]:
        """This rank's indices for ``epoch``."""
    def __len__(self) -> int:
        """Indices per rank and epoch."""
    @property
    def rank(self) -> int: ...
    @property
    def world_size(self) -> int: ...

class PipelineStats:
    """A snapshot of a run's per-stage stats; ``str(stats)`` is the text table."""
    @property
    def stages(self) -> list[dict[str, Any]]:
        """One dict per stage, source first: ``name``, ``items_in``, ``items_out``,
        ``failures``, ``concurrency``, ``occupancy`` (0..1: task time over the
        stage's active time x concurrency), task time ``mean``/``p50``/``p90``/``p99``,
        ``put_wait``/``get_wait`` (total seconds waiting on the next/previous stage),
        ``queue_len``, ``queue_capacity``."""
    @property
    def bottleneck(self) -> str | None:
        """The likely bottleneck stage's name."""

class PipelineBuilder:
    """Chain ``add_source``, stages, ``aggregate``/``collate`` and ``build``."""
    def __init__(self) -> None: ...
    def add_source(self, iterable: Iterable[Any] | AsyncIterable[Any]) -> "PipelineBuilder":
        """Items from ``iterable``, sync or async (an async generator is pulled on the
        run's event loop), iterated again every epoch; str and bytes items stay
        native for the decode stages. An exception raised by the iterable ends the run
        with ``PipelineFailure`` after the items produced before it (it is listed by
        ``failures()`` as stage "source"): never a short epoch."""
    def add_shards(
        self,
        shards: Iterable[str | bytes],
        *,
        max_member_bytes: int = 1 << 30,
        sampler: DistributedSampler | None = None,
    ) -> "PipelineBuilder":
        """The samples of webdataset-style tar shards (paths or URLs, read in order and
        streamed, never extracted): dicts with ``__key__``, ``__url__`` and one bytes
        value per field (``"jpg"``, ``"cls"``); decode stages take a field with
        ``key="jpg"`` (or ``"jpg;png"``: the first the sample has, stored under the
        first name). A shard that cannot be read or a broken member is listed by
        ``failures()`` as stage "shards"; the other shards are still read. With
        ``sampler`` (a ``DistributedSampler(len(shards), seed=...)``, rank and world
        size from ``RANK``/``WORLD_SIZE`` by default), each epoch reads this rank's
        shards in that epoch's order: disjoint across ranks, equal shard counts."""
    def add_merged_sources(
        self, iterables: list[Iterable[Any] | AsyncIterable[Any]], *, weights: list[float] | None = None, seed: int = 0
    ) -> "PipelineBuilder":
        """Several iterables merged into one source: round-robin, or with ``weights`` a
        seeded random pick per item (the order depends only on ``seed`` and the epoch).
        An exception in any of them ends the run with ``PipelineFailure``."""
    def add_merged_pipelines(
        self, pipelines: list["Pipeline"], *, weights: list[float] | None = None, seed: int = 0
    ) -> "PipelineBuilder":
        """Built pipelines merged into one source: epoch ``e`` runs epoch ``e`` of each;
        every item a merged pipeline dropped is listed by ``failures()`` as stage "merge"."""
    def route(self, select: Callable[[Any], int], branches: list["PipelineBuilder"]) -> "PipelineBuilder":
        """Sends each item to ``branches[select(item) % len(branches)]`` (builders without a
        source) and merges their outputs in completion order. ``select`` holds the GIL
        once per item; an exception in it drops the item (stage "route")."""
    # Every stage takes ordered=False: output in completion order; True keeps
    # the input order (at the cost of head-of-line waits).
    def pipe(
        self,
        fn_: Callable[[Any], Any] | dict[Any, Any] | list[Any],
        *,
        concurrency: int = 1,
        name: str | None = None,
        ordered: bool = False,
        timeout: float | None = None,
        max_failures: int | float | None = None,
        output_order: Literal["completion", "input"] | None = None,
    ) -> "PipelineBuilder":
        """A Python stage. A plain function runs on the CPU threads, the GIL held only
        while it runs; an ``async def`` function is awaited on the run's event loop
        (one thread, started with the run and stopped with it), ``concurrency``
        coroutines in flight; a generator function, sync or async, passes on every
        item it yields. An exception, a ``timeout`` (seconds) or a cancellation drops
        the item and is listed in ``failures()``; more than ``max_failures`` drops in
        this stage (a count, or a fraction in [0, 1] as a rate; negative: unlimited)
        stop the run with ``PipelineFailure``. As in SPDL, a container looks items up
        (``fn_[item]``) and ``output_order="input"`` is ``ordered=True``."""
    def sample_frames(
        self,
        indices: list[int] | None = None,
        *,
        num_frames: int | None = None,
        size: tuple[int, int] | None = None,
        pix_fmt: str = "rgb24",
        num_threads: int = 1,
        concurrency: int = 1,
        ordered: bool = False,
        name: str = "sample_frames",
        key: str | None = None,
    ) -> "PipelineBuilder":
        """A native stage: the frames at ``indices`` of each video, or ``num_frames``
        evenly spaced (the middle of equal segments), as (T, H, W, C) uint8."""
    def sample_clips(
        self,
        num_clips: int = 1,
        frames_per_clip: int = 8,
        *,
        stride: int = 1,
        seed: int | None = None,
        size: tuple[int, int] | None = None,
        pix_fmt: str = "rgb24",
        num_threads: int = 1,
        concurrency: int = 1,
        ordered: bool = False,
        name: str = "sample_clips",
        key: str | None = None,
    ) -> "PipelineBuilder":
        """A native stage: ``num_clips`` clips of ``frames_per_clip`` frames, ``stride``
        apart, from each video (spread evenly, or at random from ``seed`` mixed with the
        item's name). One clip is (T, H, W, C), so ``collate`` gives (B, T, H, W, C);
        several are (N, T, H, W, C)."""
    def decode_image(
        self,
        *,
        size: tuple[int, int] | None = None,
        pix_fmt: str = "rgb24",
        interpolation: str = "bilinear",
        fit: Literal["stretch", "cover"] = "stretch",
        apply_orientation: bool = True,
        concurrency: int = 1,
        ordered: bool = False,
        name: str = "decode_image",
        key: str | None = None,
    ) -> "PipelineBuilder":
        """A native stage: path/URL/bytes -> (H, W, C) uint8, without the GIL (for shard
        samples, the field ``key``)."""
    def decode_video(
        self,
        *,
        size: tuple[int, int] | None = None,
        pix_fmt: str = "rgb24",
        num_threads: int = 1,
        concurrency: int = 1,
        ordered: bool = False,
        name: str = "decode_video",
        key: str | None = None,
        filter_desc: str | None = None,
    ) -> "PipelineBuilder":
        """A native stage: path/URL/bytes -> (N, H, W, C) uint8 frames."""
    def decode_npy(
        self,
        *,
        concurrency: int = 1,
        ordered: bool = False,
        name: str = "decode_npy",
        key: str | None = None,
    ) -> "PipelineBuilder":
        """A native stage: a ``.npy`` (path, URL, bytes, or a shard sample's field with
        ``key=``) -> a NumPy array of its own dtype; ``collate`` stacks them."""
    def decode_audio(
        self,
        *,
        sample_rate: int | None = None,
        channels: int | None = None,
        backend: str = "auto",
        concurrency: int = 1,
        ordered: bool = False,
        name: str = "decode_audio",
        key: str | None = None,
        filter_desc: str | None = None,
    ) -> "PipelineBuilder":
        """A native stage: path/URL/bytes -> float32 (channels, samples), as ``io.load_audio``."""
    def aggregate(self, n: int, *, drop_last: bool = False) -> "PipelineBuilder":
        """Groups items into lists of ``n``."""
    def disaggregate(self, *, name: str = "disaggregate") -> "PipelineBuilder":
        """Splits each item into its elements: the lists ``aggregate`` makes (no GIL) or any Python iterable a stage returned."""
    def collate(self, *, concurrency: int = 1, ordered: bool = False, name: str = "collate") -> "PipelineBuilder":
        """A native stage collating each group from ``aggregate``, without the GIL: images
        into (N, H, W, C), clips into (B, T, H, W, C), audio into a tuple of (B, C, N)
        float32 padded with zeros and the int64 lengths (B,), shard samples field by
        field (fields that cannot be stacked become lists)."""
    def add_sink(self, capacity: int = 16) -> "PipelineBuilder":
        """How many finished items are buffered ahead of the consumer."""
    def build(
        self, *, num_threads: int = 0, max_failures: int | None = None, report_stats_interval: float | None = None
    ) -> "Pipeline":
        """Builds it: ``num_threads`` CPU threads (0: one per core); a run stops after
        ``max_failures`` dropped items in all (default: never); every
        ``report_stats_interval`` seconds the stats table is logged (INFO, logger
        ``spdl_rs.spdl_pipeline``)."""

class PipelineRun(Iterator[Any]):
    """One epoch's output; waiting releases the GIL. A context manager."""
    def __iter__(self) -> "PipelineRun": ...
    def __next__(self) -> Any: ...
    def stats(self) -> PipelineStats:
        """Per-stage items, failures, time, queue waits and occupancy; the bottleneck."""
    def failures(self) -> list[tuple[str, int, str]]:
        """Every dropped item: (stage, source position, reason)."""
    def state_dict(self) -> dict[str, Any]:
        """Where the epoch stands, for ``Pipeline.resume`` in this process or a restarted
        one: plain ints and lists (``json``/``pickle``/``torch.save`` it with the
        model's checkpoint). Items taken from the run, and items dropped as failed,
        are finished; items in flight are not (a resumed run makes them again)."""
    def close(self) -> None:
        """Stops the run; idempotent."""
    def __enter__(self) -> "PipelineRun": ...
    def __exit__(self, *args: Any) -> Literal[False]: ...

class Pipeline:
    """A built pipeline; iterate it for epoch 0 or call ``run(epoch)``."""
    def run(self, epoch: int = 0) -> PipelineRun:
        """Starts epoch ``epoch``: the source is iterated again (a ``DistributedSampler``
        gives that epoch's shuffle, weighted merges reseed from it), and the run's
        event loop, if any, starts. Several runs may be alive at once."""
    def resume(self, state: dict[str, Any]) -> PipelineRun:
        """Continues the epoch ``state`` (a run's ``state_dict()``) describes: the source
        skips every item that run finished with, so the concatenated output of both
        runs is the uninterrupted epoch, item for item, when every stage is
        ``ordered``; in completion order every item comes, batches of the rest maybe
        formed differently (pieces of a batch split by ``disaggregate`` and partly
        taken at the checkpoint come again). The source must give the same items in the same
        order for the epoch (a list, a sorted listing, a ``DistributedSampler``).
        Not tracked through ``route`` or merged pipelines."""
    def __iter__(self) -> PipelineRun:
        """``run(0)``; a ``RuntimeWarning`` at the end says if items were dropped (the
        run is not yours to ask ``failures()``)."""
    def profile(self, concurrencies: list[int] = [1, 2, 4, 8], items: int = 256) -> list[dict[str, Any]]:
        """Runs each stage alone at each concurrency on the first ``items`` items of epoch
        0: dicts with ``stage``, ``concurrency``, ``items``, ``seconds``, ``items_per_sec``."""
