"""spdl_rs.pipeline sources and structure: the distributed sampler, dataset
listing, tar shards, merges, route, profile, stats reports, and collate of
clips, audio and shard samples."""
import io
import json
import logging
import shutil
import tarfile

import numpy as np
import pytest
from PIL import Image

import spdl_rs
from spdl_rs import io as sio
from spdl_rs.pipeline import DistributedSampler, PipelineBuilder

from conftest import FIXTURES

SHARDS = FIXTURES / "shards"


def test_sampler_ranks_are_disjoint_equal_and_reshuffled_per_epoch():
    for remainder, per_rank in (("pad", 4), ("drop", 3)):
        ranks = [DistributedSampler(10, rank=r, world_size=3, seed=5, remainder=remainder) for r in range(3)]
        for epoch in (0, 1):
            shares = [s.indices(epoch) for s in ranks]
            assert [len(x) for x in shares] == [per_rank] * 3
            union = [i for share in shares for i in share]
            if remainder == "drop":
                assert len(set(union)) == len(union) == 9
            else:
                assert set(union) == set(range(10))  # every index, 2 repeated
        assert ranks[0].indices(0) != ranks[0].indices(1)
        assert len(ranks[0]) == per_rank
    with pytest.raises(ValueError, match="rank 3 is not in 0..3"):
        DistributedSampler(10, rank=3, world_size=3)


def test_sampler_reads_torchrun_environment(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    sampler = DistributedSampler(8, seed=3)
    assert (sampler.rank, sampler.world_size) == (1, 2)
    assert sampler.indices(0) == DistributedSampler(8, rank=1, world_size=2, seed=3).indices(0)


def test_sampler_as_a_pipeline_source_follows_the_epoch():
    sampler = DistributedSampler(50, rank=0, world_size=2, seed=9)
    pipeline = PipelineBuilder().add_source(sampler).pipe(lambda i: i * 2, ordered=True).build()
    assert list(pipeline.run(0)) == [2 * i for i in sampler.indices(0)]
    assert list(pipeline.run(4)) == [2 * i for i in sampler.indices(4)]


def test_list_dataset_and_class_folders(tmp_path):
    for cls, names in (("cat", ["a.jpg", "b.JPG", "notes.txt"]), ("dog", ["c.png"])):
        (tmp_path / cls).mkdir()
        for n in names:
            (tmp_path / cls / n).write_bytes(b"x")
    listed = sio.list_dataset(str(tmp_path), ["jpg", "png"])
    assert listed == [str(tmp_path / "cat" / "a.jpg"), str(tmp_path / "cat" / "b.JPG"), str(tmp_path / "dog" / "c.png")]
    assert len(sio.list_dataset(str(tmp_path))) == 4
    classes, items = sio.class_folders(str(tmp_path), ["jpg", "png"])
    assert classes == ["cat", "dog"]
    assert [label for _, label in items] == [0, 0, 1]
    with pytest.raises(FileNotFoundError):
        sio.list_dataset(str(tmp_path / "missing"))


def tar_samples(path):
    """Oracle: the shard's samples read with Python's tarfile."""
    samples = {}
    with tarfile.open(path) as t:
        for m in t.getmembers():
            key, ext = m.name.split(".", 1)
            samples.setdefault(key, {})[ext] = t.extractfile(m).read()
    return samples


def test_shards_yield_every_sample_as_tarfile_reads_it():
    shards = [str(SHARDS / "shard-000.tar"), str(SHARDS / "shard-001.tar")]
    run = PipelineBuilder().add_shards(shards).build().run()
    out = list(run)
    assert run.failures() == []
    expected = {}
    for s in shards:
        expected.update({k: (s, v) for k, v in tar_samples(s).items()})
    assert [o["__key__"] for o in out] == list(expected)  # in shard order
    for o in out:
        url, fields = expected[o["__key__"]]
        assert o["__url__"] == url
        assert {k: v for k, v in o.items() if not k.startswith("__")} == fields


def test_shards_are_split_among_ranks_per_epoch(tmp_path, monkeypatch):
    """1-4 ranks (RANK/WORLD_SIZE as torchrun sets them) over 6 shard copies: every
    rank reads the same number of shards, together every shard once (drop) or every
    shard at least once (pad), a new order each epoch, the same for the same seed."""
    shards = []
    for i in range(6):
        path = tmp_path / f"s{i}.tar"
        shutil.copy(SHARDS / ("shard-000.tar" if i % 2 == 0 else "shard-001.tar"), path)
        shards.append(str(path))
    per_shard = {s: len(tar_samples(s)) for s in shards}

    def urls(epoch, seed=1, remainder="drop"):
        sampler = DistributedSampler(len(shards), seed=seed, remainder=remainder)
        run = PipelineBuilder().add_shards(shards, sampler=sampler).build().run(epoch)
        out = [o["__url__"] for o in run]
        assert run.failures() == []
        return list(dict.fromkeys(out)), len(out)

    for world in (1, 2, 3, 4):
        monkeypatch.setenv("WORLD_SIZE", str(world))
        for remainder in ("drop", "pad"):
            seen = []
            for rank in range(world):
                monkeypatch.setenv("RANK", str(rank))
                order, samples = urls(0, remainder=remainder)
                assert len(order) == (6 // world if remainder == "drop" else -(-6 // world)), (world, rank)
                assert samples == sum(per_shard[u] for u in order)
                seen += order
            if remainder == "drop":
                assert len(seen) == len(set(seen)) == 6 // world * world
            else:
                assert set(seen) == set(shards)
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert urls(0)[0] != urls(1)[0]
    assert urls(2)[0] == urls(2)[0] and urls(2, seed=1)[0] != urls(2, seed=2)[0]
    with pytest.raises(ValueError, match="6 shards"):
        PipelineBuilder().add_shards(shards, sampler=DistributedSampler(5))


def test_shard_fields_decode_natively_and_collate_per_field():
    manifest = json.loads((SHARDS / "manifest.json").read_text())
    batches = list(
        PipelineBuilder()
        .add_shards([str(SHARDS / "shard-000.tar")])
        .decode_image(key="jpg;png", size=(16, 12))
        .aggregate(2)
        .collate()
        .build()
    )
    assert len(batches) == 2
    first = batches[0]
    assert first["jpg"].shape == (2, 12, 16, 3)
    labels = [int(b) for batch in batches for b in batch["cls"]]
    assert labels == [s["label"] for s in manifest["shard-000.tar"]]
    direct = sio.load_image(FIXTURES / "images" / manifest["shard-000.tar"][0]["image"], size=(16, 12))
    np.testing.assert_array_equal(first["jpg"][0], direct)


def test_a_broken_shard_is_reported_and_the_others_are_read(tmp_path):
    missing = str(tmp_path / "missing.tar")
    shards = [str(SHARDS / "broken_truncated.tar"), missing, str(SHARDS / "shard-001.tar")]
    run = PipelineBuilder().add_shards(shards).build().run()
    out = list(run)
    assert [o["__key__"] for o in out][-4:] == list(tar_samples(SHARDS / "shard-001.tar"))
    failures = run.failures()
    assert {f[0] for f in failures} == {"shards"}
    reasons = " ".join(f[2] for f in failures)
    assert "broken_truncated.tar" in reasons and "missing.tar" in reasons


def test_a_sample_without_the_field_is_a_reported_failure():
    run = PipelineBuilder().add_shards([str(SHARDS / "shard-000.tar")]).decode_image(key="webp").build().run()
    assert list(run) == []
    assert len(run.failures()) == 4
    assert 'has no field "webp"' in run.failures()[0][2]
    run = PipelineBuilder().add_shards([str(SHARDS / "shard-000.tar")]).decode_image().build().run()
    assert list(run) == [] and "pass key=" in run.failures()[0][2]


def test_merged_sources_round_robin_and_weighted():
    out = list(PipelineBuilder().add_merged_sources([["a1", "a2", "a3"], ["b1"]]).build())
    assert out == ["a1", "b1", "a2", "a3"]
    weighted = PipelineBuilder().add_merged_sources([range(0, 100), range(1000, 1100)], weights=[3, 1], seed=4).build()
    first, again = list(weighted.run(0)), list(weighted.run(0))
    assert first == again and sorted(first) == list(range(100)) + list(range(1000, 1100))
    assert first != list(weighted.run(1))  # the order follows the epoch
    # Early on, the weight 3 source leads.
    assert sum(x < 1000 for x in first[:40]) > 20
    with pytest.raises(ValueError, match="2 weights for 1 sources"):
        PipelineBuilder().add_merged_sources([[1]], weights=[1, 2])


def test_merged_pipelines_report_what_they_dropped():
    def odd_fails(x):
        if x % 2:
            raise ValueError(f"odd {x}")
        return x

    evens = PipelineBuilder().add_source(range(6)).pipe(odd_fails).build()
    letters = PipelineBuilder().add_source(["x", "y"]).build()
    run = PipelineBuilder().add_merged_pipelines([evens, letters]).build().run()
    out = list(run)
    assert sorted(o for o in out if isinstance(o, int)) == [0, 2, 4]
    assert sorted(o for o in out if isinstance(o, str)) == ["x", "y"]
    failures = run.failures()
    assert len(failures) == 3 and {f[0] for f in failures} == {"merge"}
    assert all("odd" in f[2] for f in failures)


def test_route_sends_items_to_branches():
    small = PipelineBuilder().pipe(lambda x: ("small", x))
    large = PipelineBuilder().pipe(lambda x: ("large", x))
    out = list(PipelineBuilder().add_source(range(20)).route(lambda x: int(x >= 10), [small, large]).build())
    assert sorted(out) == sorted([("small", i) for i in range(10)] + [("large", i) for i in range(10, 20)])
    with pytest.raises(ValueError, match="must not have a source"):
        PipelineBuilder().add_source([1]).route(lambda x: 0, [PipelineBuilder().add_source([2])])
    run = PipelineBuilder().add_source([1, 2]).route(lambda x: 1 // (x - 1), [PipelineBuilder()]).build().run()
    assert list(run) == [2]
    assert run.failures()[0][0] == "route" and "ZeroDivisionError" in run.failures()[0][2]


def test_profile_reports_each_stage_at_each_concurrency():
    import time

    def slow(x):
        time.sleep(0.002)
        return x

    pipeline = PipelineBuilder().add_source(range(1000)).pipe(slow, name="slow").build(num_threads=4)
    report = pipeline.profile([1, 4], items=40)
    assert [(r["stage"], r["concurrency"], r["items"]) for r in report] == [("slow", 1, 40), ("slow", 4, 40)]
    assert report[1]["items_per_sec"] > report[0]["items_per_sec"] * 1.5


def test_periodic_stats_reports_reach_logging(caplog):
    import time

    def slow(x):
        time.sleep(0.02)
        return x

    with caplog.at_level(logging.INFO, logger="spdl_rs"):
        list(PipelineBuilder().add_source(range(10)).pipe(slow).build(report_stats_interval=0.05))
    reports = [r.getMessage() for r in caplog.records if r.name == "spdl_rs.spdl_pipeline"]
    assert reports and "slow" in reports[0] and "bottleneck" in reports[0]


def test_collate_stacks_clips_and_pads_audio():
    video = str(FIXTURES / "h264_yuv420p.mp4")
    clips = list(PipelineBuilder().add_source([video, video]).decode_video(size=(32, 24)).aggregate(2).collate().build())
    frames = sio.load_video(video, size=(32, 24))
    assert clips[0].shape == (2,) + frames.shape
    np.testing.assert_array_equal(clips[0][1], frames)
    audio = FIXTURES / "audio"
    srcs = [str(audio / "pcm_f32le_48000_stereo.wav"), str(audio / "flac_s16_44100_stereo.flac")]
    (batch, lengths), = list(
        PipelineBuilder().add_source(srcs).decode_audio(sample_rate=16000, ordered=True).aggregate(2).collate().build()
    )
    singles = [sio.load_audio(s, sample_rate=16000)[0] for s in srcs]
    assert list(lengths) == [a.shape[1] for a in singles]
    assert batch.shape == (2, 2, max(lengths))
    for i, a in enumerate(singles):
        np.testing.assert_array_equal(batch[i, :, : a.shape[1]], a)
        assert not batch[i, :, a.shape[1]:].any()  # zero padding


def test_the_readme_pipeline_example_runs(tmp_path, monkeypatch):
    """The README's "Python pipelines" example, run as written on a small
    class-folder dataset made from the fixtures."""
    readme = (FIXTURES.parent / "README.md").read_text()
    section = readme.split("### Python pipelines", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    for i, name in enumerate(["jpeg_baseline_420.jpg", "png_rgb8.png", "jpeg_gray.jpg", "jpeg_progressive.jpg"] * 10):
        folder = tmp_path / "imagenet" / "train" / f"class{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FIXTURES / "images" / name, folder / f"{i}_{name}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    scope = {}
    exec(compile(code.replace("for batch in run: ...", "batches = list(run)"), "README.md", "exec"), scope)
    assert [b.shape for b in scope["batches"]] == [(32, 112, 224, 3), (32, 112, 224, 3), (16, 112, 224, 3)]


def test_sample_frames_stage_by_indices_and_evenly_spaced():
    video = str(FIXTURES / "h264_yuv420p.mp4")
    total = len(sio.load_video(video, size=(32, 24)))
    by_index, = list(PipelineBuilder().add_source([video]).sample_frames([0, 5, 2], size=(32, 24)).build())
    np.testing.assert_array_equal(by_index, sio.sample_frames(video, [0, 5, 2], size=(32, 24)))
    clips, = list(
        PipelineBuilder().add_source([video, video]).sample_frames(num_frames=4, size=(32, 24)).aggregate(2).collate().build()
    )
    assert clips.shape == (2, 4, 24, 32, 3)
    expected = [(2 * k + 1) * total // 8 for k in range(4)]  # the middle of 4 equal segments
    np.testing.assert_array_equal(clips[1], sio.sample_frames(video, expected, size=(32, 24)))
    with pytest.raises(ValueError, match="either indices or num_frames"):
        PipelineBuilder().add_source([video]).sample_frames()
    run = PipelineBuilder().add_source([video]).sample_frames([10_000]).build().run()
    assert list(run) == [] and "10000" in run.failures()[0][2]


def test_sample_clips_stage_batches_clips_like_the_reader():
    videos = [str(FIXTURES / "long_h264.mp4"), str(FIXTURES / "h264_yuv420p.mp4")]
    pipe = lambda **kw: PipelineBuilder().add_source(videos).sample_clips(size=(32, 24), ordered=True, **kw)
    batch, = list(pipe(frames_per_clip=4, stride=3).aggregate(2).collate().build())
    assert batch.shape == (2, 4, 24, 32, 3)
    for clip, video in zip(batch, videos):
        np.testing.assert_array_equal(clip, sio.VideoReader(video, size=(32, 24)).get_clips(1, 4, stride=3)[0])
    several = list(pipe(num_clips=3, frames_per_clip=2, seed=9).build())
    assert [c.shape for c in several] == [(3, 2, 24, 32, 3)] * 2
    again = list(pipe(num_clips=3, frames_per_clip=2, seed=9).build())
    assert all(np.array_equal(a, b) for a, b in zip(several, again))
    run = PipelineBuilder().add_source([str(FIXTURES / "not_media.mp4")]).sample_clips().build().run()
    assert list(run) == [] and "not_media.mp4" in run.failures()[0][2]
    with pytest.raises(ValueError, match="at least 1"):
        PipelineBuilder().add_source(videos).sample_clips(num_clips=0)


def test_iterating_a_pipeline_directly_warns_about_dropped_items():
    def fails_on_two(x):
        if x == 2:
            raise ValueError("two")
        return x

    pipeline = PipelineBuilder().add_source(range(5)).pipe(fails_on_two).build()
    with pytest.warns(RuntimeWarning, match=r"dropped 1 item\(s\).*ValueError: two"):
        assert sorted(pipeline) == [0, 1, 3, 4]
    # A run the caller holds reports through failures() and does not warn.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = pipeline.run(1)
        assert sorted(run) == [0, 1, 3, 4] and len(run.failures()) == 1


def test_items_come_back_unchanged_and_decode_stages_take_any_source_object():
    import enum
    import pathlib

    class Kind(str, enum.Enum):
        CAT = "cat"

    items = ["file:///x", Kind.CAT, np.str_("s3://bucket/a.jpg"), "plain/path.jpg", b"raw"]
    out = list(PipelineBuilder().add_source(items).pipe(lambda x: x, ordered=True).build())
    assert out == items
    assert [type(o) for o in out] == [type(i) for i in items]
    path = FIXTURES / "images" / "png_rgb8.png"
    srcs = [path, f"file://{path}", np.fromfile(path, dtype=np.uint8)]
    run = PipelineBuilder().add_source(srcs).decode_image(ordered=True).build().run()
    decoded = list(run)
    assert run.failures() == []
    for image in decoded:
        np.testing.assert_array_equal(image, sio.load_image(path))


def test_npy_fields_of_shard_samples_decode_and_collate(tmp_path):
    shard = tmp_path / "features-000.tar"
    rng = np.random.default_rng(0)
    want = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(4)]
    with tarfile.open(shard, "w") as tar:
        for i, array in enumerate(want):
            for name, value in [("npy", array), ("cls.npy", np.int64(i))]:
                buf = io.BytesIO()
                np.save(buf, value)
                info = tarfile.TarInfo(f"{i:04d}.{name}")
                info.size = len(buf.getvalue())
                tar.addfile(info, io.BytesIO(buf.getvalue()))
    batches = list(
        PipelineBuilder()
        .add_shards([str(shard)])
        .decode_npy(key="npy", ordered=True)
        .decode_npy(key="cls.npy", ordered=True)
        .aggregate(2)
        .collate()
        .build()
    )
    assert [b["npy"].shape for b in batches] == [(2, 3, 4), (2, 3, 4)]
    np.testing.assert_array_equal(np.concatenate([b["npy"] for b in batches]), np.stack(want))
    assert [int(c) for b in batches for c in b["cls.npy"]] == [0, 1, 2, 3]
    run = PipelineBuilder().add_source([b"not an array"]).decode_npy().build().run()
    assert list(run) == [] and "magic" in run.failures()[0][2]


def test_submodules_have_their_full_name():
    """cloudpickle (Ray, multiprocessing helpers) re-imports a module by __name__."""
    import importlib

    assert sio.__name__ == "spdl_rs.io"
    assert importlib.import_module(sio.__name__) is sio


RESUME_SCRIPT = """
import json, sys
from spdl_rs.pipeline import PipelineBuilder, DistributedSampler

def build(ordered):
    async def slow(x):
        import asyncio
        await asyncio.sleep((x * 37 % 7) / 2000)
        if x % 11 == 0:
            raise ValueError(x)
        return x
    return (PipelineBuilder().add_source(DistributedSampler(120, rank=0, world_size=1, seed=3))
            .pipe(slow, concurrency=4, ordered=ordered)
            .aggregate(8)
            .pipe(lambda b: [(x, len(b)) for x in b], ordered=ordered)
            .disaggregate()
            .build(num_threads=2))

mode, k, path, ordered = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
pipeline = build(ordered)
if mode == "first":
    run = pipeline.run(7)
    out = [next(run) for _ in range(k)]
    json.dump({"out": out, "state": run.state_dict()}, open(path, "w"))
    run.close()
elif mode == "rest":
    saved = json.load(open(path))
    run = pipeline.resume(saved["state"])
    json.dump({"out": list(run), "failures": len(run.failures())}, open(path + ".rest", "w"))
else:
    run = pipeline.run(7)
    json.dump({"out": list(run), "failures": len(run.failures())}, open(path, "w"))
"""


@pytest.mark.parametrize("ordered", [True, False])
def test_a_run_resumes_in_a_new_process(tmp_path, ordered):
    """A run stopped after k items (mid-batch, async items in flight), its state saved
    as JSON, resumed by a fresh interpreter: together the uninterrupted epoch (item
    for item when ordered; every item in completion order, the pieces of one partly
    taken batch maybe again)."""
    import subprocess
    import sys

    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT)
    flag = "1" if ordered else "0"

    def py(*args):
        subprocess.run([sys.executable, script, *map(str, args), flag], check=True, timeout=120)

    whole = tmp_path / "whole.json"
    py("whole", 0, whole)
    whole = json.loads(whole.read_text())
    assert whole["failures"] == 11 and len(whole["out"]) == 109
    for k in (0, 5, 41, 108):
        state = tmp_path / f"state{k}.json"
        py("first", k, state)
        py("rest", 0, state)
        first = json.loads(state.read_text())["out"]
        rest = json.loads((tmp_path / f"state{k}.json.rest").read_text())
        got = first + rest["out"]
        if ordered:
            assert got == whole["out"], k
        else:
            # Every item; pieces of one partly taken batch may come again.
            assert sorted({x for x, _ in got}) == sorted(x for x, _ in whole["out"]), k
            assert len(got) - len(whole["out"]) < 8, k
        assert rest["failures"] <= 11
    with pytest.raises(ValueError, match="not a pipeline state"):
        PipelineBuilder().add_source([1]).build().resume({"epoch": 1})
