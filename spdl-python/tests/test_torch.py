"""spdl_rs.torch: zero-copy tensors, the DataLoader adapter, host-to-device copies.

Skipped where PyTorch is not installed (CI's venv has none); run with the venv
benches/python/run_torch.sh makes:

    PYTHONPATH=spdl-python/python:spdl-python/tests .venv-torch/bin/python -m pytest -q spdl-python/tests/test_torch.py
"""
import pickle
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed; spdl_rs.torch is optional")

import spdl_rs  # noqa: E402
from spdl_rs import io as sio  # noqa: E402
from spdl_rs.pipeline import PipelineBuilder  # noqa: E402
from spdl_rs.torch import (  # noqa: E402
    ItemsDroppedError,
    ItemsDroppedWarning,
    PipelineDataset,
    to_device,
    to_torch,
)
from torch.utils.data import DataLoader  # noqa: E402

from conftest import FIXTURES  # noqa: E402

PNG = str(FIXTURES / "images" / "png_rgb8.png")
JPEG = str(FIXTURES / "images" / "jpeg_baseline_420.jpg")


# Module-level (picklable) build functions for the DataLoader tests.
def wrap(x):
    return np.array([x], dtype=np.int64)


def build_ints(share):
    return PipelineBuilder().add_source(share).pipe(wrap, concurrency=2).build(num_threads=1)


def fail_on_13(x):
    if x == 13:
        raise ValueError("thirteen is unlucky")
    return np.array([x], dtype=np.int64)


def build_failing(share):
    return PipelineBuilder().add_source(share).pipe(fail_on_13).build(num_threads=1)


def ints(batches):
    return sorted(int(v) for b in batches for v in b.reshape(-1).tolist())


@pytest.fixture
def no_dist_env(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)


# -- to_torch ------------------------------------------------------------------

def test_to_torch_shares_memory_with_the_array():
    a = sio.load_image(PNG)
    t = to_torch(a)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.uint8
    assert tuple(t.shape) == a.shape
    assert t.data_ptr() == a.ctypes.data
    a[0, 0, 0] = 7
    assert int(t[0, 0, 0]) == 7
    t[1, 2, 1] = 201
    assert a[1, 2, 1] == 201


def test_to_torch_channels_first_is_a_view():
    batch = sio.load_image_batch([PNG, PNG], size=(40, 30))
    assert batch.shape == (2, 30, 40, 3)
    t = to_torch(batch, channels_first=True)
    assert tuple(t.shape) == (2, 3, 30, 40)
    assert t.data_ptr() == batch.ctypes.data
    assert t.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(t, torch.from_numpy(batch.copy()).permute(0, 3, 1, 2))
    batch[1, 5, 6, 2] = 3  # (n, h, w, c) in the array is (n, c, h, w) in the view
    assert int(t[1, 2, 5, 6]) == 3
    single = to_torch(batch[0], channels_first=True)
    assert tuple(single.shape) == (3, 30, 40)
    with pytest.raises(ValueError, match="channels_first"):
        to_torch(np.zeros((4, 5), np.uint8), channels_first=True)


def test_to_torch_converts_containers_and_passes_other_objects():
    img, label = np.zeros((2, 4, 4, 3), np.uint8), np.arange(2)
    out = to_torch({"img": img, "meta": (label, "name", 3)}, channels_first=True)
    assert tuple(out["img"].shape) == (2, 3, 4, 4)
    assert torch.equal(out["meta"][0], torch.arange(2))  # 1-D: left as it is
    assert out["meta"][1:] == ("name", 3)
    # Negative strides cannot be shared: the only copy.
    rev = np.arange(6)[::-1]
    assert to_torch(rev).tolist() == [5, 4, 3, 2, 1, 0]


def test_image_pipeline_to_torch():
    pipeline = (
        PipelineBuilder()
        .add_source([PNG, JPEG] * 5)
        .decode_image(size=(64, 48), concurrency=2, ordered=True)
        .aggregate(4)
        .collate()
        .build(num_threads=2)
    )
    dataset = PipelineDataset([PNG, JPEG] * 5, lambda share: pipeline, channels_first=True)
    batches = list(dataset)
    assert [tuple(b.shape) for b in batches] == [(4, 3, 48, 64), (4, 3, 48, 64), (2, 3, 48, 64)]
    assert all(b.dtype == torch.uint8 for b in batches)
    want = torch.from_numpy(sio.load_image_batch([PNG, JPEG] * 5, size=(64, 48))).permute(0, 3, 1, 2)
    assert torch.equal(torch.cat(batches), want)


# -- PipelineDataset -------------------------------------------------------------

@pytest.mark.parametrize("persistent", [False, True])
def test_dataloader_workers_yield_every_item_once(persistent, no_dist_env):
    items = list(range(103))
    dataset = PipelineDataset(items, build_ints)
    loader = DataLoader(dataset, batch_size=None, num_workers=2, persistent_workers=persistent)
    for epoch in range(2):
        dataset.set_epoch(epoch)
        got = list(loader)
        assert all(isinstance(b, torch.Tensor) for b in got)
        assert ints(got) == items, f"epoch {epoch}"


def build_tagged(share):
    """Tags every item with the DataLoader worker that produced it."""
    worker = torch.utils.data.get_worker_info().id
    return PipelineBuilder().add_source(share).pipe(lambda x: np.array([x, worker])).build(num_threads=1)


def test_shuffle_follows_set_epoch_in_persistent_workers(no_dist_env):
    items = list(range(64))
    dataset = PipelineDataset(items, build_tagged, shuffle=True, seed=5)
    perm = {e: np.random.default_rng([5, e]).permutation(64).tolist() for e in (0, 1)}
    # The shares do change from epoch to epoch.
    assert set(perm[0][0::2]) != set(perm[1][0::2])
    loader = DataLoader(dataset, batch_size=None, num_workers=2, persistent_workers=True)
    for epoch in (0, 1, 0):
        dataset.set_epoch(epoch)  # must reach the workers started in epoch 0
        got = [b.tolist() for b in loader]
        assert sorted(x for x, _ in got) == items
        for w in (0, 1):
            # Worker w's share is the permuted list [w::2]; within a share the
            # pipeline's (completion) order applies, so compare sets.
            assert {x for x, wid in got if wid == w} == set(perm[epoch][w::2]), (epoch, w)


def test_ranks_get_equal_shares_covering_everything(monkeypatch):
    items = [f"item{i}" for i in range(50)]
    for remainder, per_rank in (("pad", 17), ("drop", 16)):
        for shuffle in (False, True):
            seen = []
            for rank in range(3):
                monkeypatch.setenv("RANK", str(rank))
                monkeypatch.setenv("WORLD_SIZE", "3")
                ds = PipelineDataset(items, lambda s: None, shuffle=shuffle, remainder=remainder)
                share, index, count = ds.shard()
                assert (index, count) == (rank, 3)
                assert len(share) == per_rank  # equal counts: DDP never waits on a rank
                seen.extend(share)
            if remainder == "pad":
                assert set(seen) == set(items)  # every item, one repeated
            else:
                assert len(set(seen)) == len(seen) == 48
    # distributed=False ignores the variables; distributed=True requires them.
    assert PipelineDataset(items, lambda s: None, distributed=False).shard()[0] == items
    monkeypatch.delenv("RANK")
    with pytest.raises(ValueError, match="RANK"):
        PipelineDataset(items, lambda s: None, distributed=True).shard()
    assert PipelineDataset(items, lambda s: None).shard()[0] == items  # auto: unset -> all


def test_ranks_times_workers_through_dataloader(monkeypatch):
    items = list(range(97))
    got = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        ds = PipelineDataset(items, build_ints, shuffle=True, seed=1)
        got[rank] = ints(DataLoader(ds, batch_size=None, num_workers=2))
    assert len(got[0]) == len(got[1]) == 49  # 97 padded to 98
    assert set(got[0] + got[1]) == set(items)
    assert len(set(got[0]) & set(got[1])) == 1  # the one padded item


def test_a_dropped_item_raises_and_is_named(no_dist_env):
    items = list(range(20))
    ds = PipelineDataset(items, build_failing)
    got = []
    with pytest.raises(ItemsDroppedError, match="thirteen is unlucky") as exc:
        for b in ds:
            got.append(b)
    assert "item 13" in str(exc.value)
    assert exc.value.failures == [("fail_on_13", 13, "ValueError: thirteen is unlucky")]
    assert isinstance(exc.value, spdl_rs.PipelineFailure)
    assert ints(got) == [x for x in items if x != 13]  # every other item came first


def test_a_dropped_item_raises_through_dataloader_workers(no_dist_env):
    loader = DataLoader(PipelineDataset(list(range(40)), build_failing), batch_size=None, num_workers=2)
    with pytest.raises(ItemsDroppedError, match=r"item 13\b"):
        list(loader)


def test_on_failure_warn_lists_the_item(no_dist_env):
    ds = PipelineDataset(list(range(20)), build_failing, on_failure="warn")
    with pytest.warns(ItemsDroppedWarning, match="item 13"):
        got = list(ds)
    assert len(got) == 19
    with pytest.raises(ValueError, match="on_failure"):
        PipelineDataset([1], build_ints, on_failure="ignore")


def test_a_dropped_image_is_named_by_path(no_dist_env):
    srcs = [PNG, "/no/such/dir/missing.jpg", JPEG]

    def build(share):
        return PipelineBuilder().add_source(share).decode_image(size=(32, 32)).build(num_threads=1)

    with pytest.raises(ItemsDroppedError, match="missing.jpg"):
        list(PipelineDataset(srcs, build))


def test_stopping_early_closes_the_run_without_failure_report(no_dist_env):
    ds = PipelineDataset(list(range(1000)), build_failing)
    it = iter(ds)
    next(it)
    it.close()  # no ItemsDroppedError from a run abandoned on purpose


def test_build_must_return_a_pipeline(no_dist_env):
    with pytest.raises(TypeError, match="Pipeline"):
        list(PipelineDataset([1, 2], lambda share: share))
    with pytest.raises(TypeError, match="callable"):
        PipelineDataset([1, 2], None)


# -- to_device -------------------------------------------------------------------

def test_to_device_cpu_equals_input():
    batch = sio.load_image_batch([PNG, JPEG], size=(32, 24))
    move = to_device("cpu")
    out = move(batch)
    assert isinstance(out, torch.Tensor) and out.device.type == "cpu"
    assert torch.equal(out, torch.from_numpy(batch.copy()))
    labels = np.arange(2)
    pair = move((batch, labels))
    assert torch.equal(pair[0], out) and torch.equal(pair[1], torch.arange(2))
    cf = to_device("cpu", channels_first=True)(batch)
    assert tuple(cf.shape) == (2, 3, 24, 32)
    assert pickle.loads(pickle.dumps(move)).device == torch.device("cpu")


def test_to_device_as_a_pipeline_stage():
    pipeline = (
        PipelineBuilder()
        .add_source([PNG, JPEG] * 3)
        .decode_image(size=(32, 24), ordered=True)
        .aggregate(3)
        .collate()
        .pipe(to_device("cpu"), ordered=True)
        .build(num_threads=2)
    )
    out = list(pipeline)
    assert all(isinstance(b, torch.Tensor) for b in out)
    want = torch.from_numpy(sio.load_image_batch([PNG, JPEG] * 3, size=(32, 24)))
    assert torch.equal(torch.cat(out), want)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_to_device_cuda_pins_and_copies():
    batch = sio.load_image_batch([PNG, JPEG], size=(32, 24))
    out = to_device("cuda")(batch)
    assert out.device.type == "cuda"
    torch.cuda.synchronize()
    assert torch.equal(out.cpu(), torch.from_numpy(batch.copy()))


# -- optional import ---------------------------------------------------------------

HIDE_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch' (hidden)")
sys.meta_path.insert(0, Block())
import spdl_rs, spdl_rs.pipeline
print("spdl_rs ok")
try:
    import spdl_rs.torch
except ImportError as e:
    print("ImportError:", e)
"""


def test_spdl_rs_imports_without_torch():
    out = subprocess.run([sys.executable, "-c", HIDE_TORCH], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "spdl_rs ok" in out.stdout
    assert "ImportError: spdl_rs.torch needs PyTorch" in out.stdout
