"""spdl_rs: GIL-free media decoding and data-loading pipelines with a Rust core.

- ``spdl_rs.io``: ``info``, ``load_image``, ``load_image_batch``, ``load_video``,
  ``sample_frames``, ``stream_video``, ``load_audio``, ``stream_audio``. Each takes a
  path (``str`` or ``os.PathLike``), a URL (``s3://``, ``gs://``, ``az://``,
  ``http(s)://``) or bytes (``bytes``, ``memoryview``, a uint8 NumPy array; not
  copied) and returns NumPy arrays that own the decoded buffer (no copy).
- ``spdl_rs.pipeline``: ``PipelineBuilder`` with Python-callable stages (GIL held only
  while the callable runs), ``async def`` stages on an event loop the run owns, and
  native stages that never take it; ``DistributedSampler``, tar shards, merges.
- ``spdl_rs.torch`` (needs PyTorch, imported on demand): ``to_torch``,
  ``PipelineDataset`` for ``DataLoader``, ``to_device``.

Errors: ``FileNotFoundError`` for a missing file, ``ValueError`` for bad arguments, and
``SpdlError`` subclasses (``DecodeError``, ``LimitError``, ``RemoteError``,
``PipelineFailure``; all ``RuntimeError``) whose message names the source.

No thread starts at import; CPU pools start on first use and are rebuilt in a forked
child.
"""
import atexit as _atexit
import logging as _logging
import os as _os
import sys as _sys

# The native module and the FFmpeg libraries it links resolve symbols in their
# own dependencies first (RTLD_DEEPBIND): a wheel imported earlier that loads
# its bundled FFmpeg, dav1d or libvpx with RTLD_GLOBAL (decord does) would
# otherwise lend its own versions of those functions to ours, and AV1 decoding
# crashed.
_flags = _sys.getdlopenflags()
_sys.setdlopenflags(_flags | getattr(_os, "RTLD_DEEPBIND", 0))
try:
    from . import _native
finally:
    _sys.setdlopenflags(_flags)
from ._native import (
    DecodeError,
    LimitError,
    PipelineFailure,
    RemoteError,
    SpdlError,
    io,
    pipeline,
)

# Rust log records (dropped items, periodic stats reports, FFmpeg's log) go to
# loggers under "spdl_rs"; as a library, nothing is printed unless the
# application configures logging.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())

# Before the interpreter finalizes, stop pipeline threads from calling into Python,
# so exiting in the middle of an iteration neither hangs nor crashes.
_atexit.register(_native.shutdown)

__all__ = ["io", "pipeline", "SpdlError", "DecodeError", "LimitError", "RemoteError", "PipelineFailure"]
