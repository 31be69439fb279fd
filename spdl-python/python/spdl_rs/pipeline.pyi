"""Concurrent data-loading pipelines: Python-callable and native stages."""
from typing import Any, AsyncIterable, Callable, Iterable, Iterator, Literal

class PipelineBuilder:
    """Chain ``add_source``, stages, ``aggregate``/``collate`` and ``build``."""
    def __init__(self) -> None: ...
    def add_source(self, iterable: Iterable[Any] | AsyncIterable[Any]) -> "PipelineBuilder":
        """Items from ``iterable``, sync or async (an async generator is pulled on the
        run's event loop), iterated again every epoch; str and bytes items stay
        native for the decode stages. An exception raised by the iterable ends the run
        with ``PipelineFailure`` after the items produced before it (it is listed by
        ``failures()`` as stage "source"): never a short epoch."""
    # Every stage takes ordered=False: output in completion order; True keeps
    # the input order (at the cost of head-of-line waits).
    def pipe(
        self,
        fn_: Callable[[Any], Any],
        *,
        concurrency: int = 1,
        name: str | None = None,
        ordered: bool = False,
        timeout: float | None = None,
        max_failures: int | None = None,
    ) -> "PipelineBuilder":
        """A Python stage. A plain function runs on the CPU threads, the GIL held only
        while it runs; an ``async def`` function is awaited on the run's event loop
        (one thread, started with the run and stopped with it), ``concurrency``
        coroutines in flight; a generator function, sync or async, passes on every
        item it yields. An exception, a ``timeout`` (seconds) or a cancellation drops
        the item and is listed in ``failures()``; more than ``max_failures`` drops in
        this stage stop the run with ``PipelineFailure``."""
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
    ) -> "PipelineBuilder":
        """A native stage: path/URL/bytes -> (H, W, C) uint8, without the GIL."""
    def decode_video(
        self,
        *,
        size: tuple[int, int] | None = None,
        pix_fmt: str = "rgb24",
        num_threads: int = 1,
        concurrency: int = 1,
        ordered: bool = False,
        name: str = "decode_video",
    ) -> "PipelineBuilder":
        """A native stage: path/URL/bytes -> (N, H, W, C) uint8 frames."""
    def decode_audio(
        self,
        *,
        sample_rate: int | None = None,
        channels: int | None = None,
        backend: str = "auto",
        concurrency: int = 1,
        ordered: bool = False,
        name: str = "decode_audio",
    ) -> "PipelineBuilder":
        """A native stage: path/URL/bytes -> float32 (channels, samples), as ``io.load_audio``."""
    def aggregate(self, n: int, *, drop_last: bool = False) -> "PipelineBuilder":
        """Groups items into lists of ``n``."""
    def disaggregate(self, *, name: str = "disaggregate") -> "PipelineBuilder":
        """Splits each item into its elements: the lists ``aggregate`` makes (no GIL) or any Python iterable a stage returned."""
    def collate(self, *, concurrency: int = 1, ordered: bool = False, name: str = "collate") -> "PipelineBuilder":
        """A native stage stacking each group of images into (N, H, W, C)."""
    def add_sink(self, capacity: int = 16) -> "PipelineBuilder":
        """How many finished items are buffered ahead of the consumer."""
    def build(self, *, num_threads: int = 0, max_failures: int | None = None) -> "Pipeline":
        """Builds it: ``num_threads`` CPU threads (0: one per core); a run stops after
        ``max_failures`` dropped items (default: never)."""

class PipelineRun(Iterator[Any]):
    """One epoch's output; waiting releases the GIL. A context manager."""
    def __iter__(self) -> "PipelineRun": ...
    def __next__(self) -> Any: ...
    def stats(self) -> str:
        """Per-stage items, failures, time and queue waits; names the bottleneck."""
    def failures(self) -> list[tuple[str, int, str]]:
        """Every dropped item: (stage, source position, reason)."""
    def close(self) -> None:
        """Stops the run; idempotent."""
    def __enter__(self) -> "PipelineRun": ...
    def __exit__(self, *args: Any) -> Literal[False]: ...

class Pipeline:
    """A built pipeline; iterate it for epoch 0 or call ``run(epoch)``."""
    def run(self, epoch: int = 0) -> PipelineRun: ...
    def __iter__(self) -> PipelineRun: ...
