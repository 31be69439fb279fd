#!/usr/bin/env python3
"""Side-by-side video decode benchmark: spdl-rs vs ffmpeg CLI vs SPDL 0.8 vs PyAV.

Usage (from the repo root)::

    bash benches/setup_python.sh        # .venv-bench with spdl 0.8.0, av, numpy
    bash benches/make_media.sh          # bench-out/h264_{720p,1080p,10s}.mp4
    .venv-bench/bin/python benches/compare_video.py --repeat 5 --json bench-out/compare.json

Every (file, workload, threads) cell runs each contender in its own fresh
subprocess; the contender does all ``--repeat`` iterations inside that process
and reports one JSON line, so interpreter/library start-up is not timed
(except for the ffmpeg CLI, which is one process per iteration; see caveats
printed with the table). The table shows the median wall time, frames/s, the
median CPU time (user+sys, all threads) per iteration, the process peak RSS,
and the speed-up of spdl-rs over each peer (peer median / spdl-rs median;
> 1 means spdl-rs is faster).

Contender protocol (what ``--spdl-rs-cmd`` must implement)::

    CMD --file F --workload native|resize224|sample8 --threads N --repeat R

prints exactly one JSON line on stdout::

    {"impl":"spdl-rs","workload":"native","threads":1,"frames":300,"times_s":[...]}

Optional extra keys the table uses when present: "cpu_times_s" (per-iteration
CPU seconds), "shape" (shape of one output frame, e.g. [720,1280,3]),
"peak_rss_kb". The Python contenders below emit the same shape.

Workloads:
  native     decode every frame, convert to rgb24 at the native size.
  resize224  decode every frame, convert+resize to 224x224 rgb24 (bicubic).
  sample8    8 frame indices spread uniformly over the file (np.linspace
             rounded), opening the file anew on every iteration. CLI skipped.

Threads (``--threads 1,2``) are decoder threads per file.
``--convert-threads`` (default 1) pins the threads used by the rgb24
conversion/scaling where a contender lets us choose (ffmpeg CLI
``-filter_threads``; PyAV ``reformat(threads=)``). SPDL 0.8 always runs its
filter graph with ``nb_threads = 1``; spdl-rs is not told (its own choice).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

import bench_common
from bench_common import (cpu_children as _cpu_children,
                          run_child, run_child_rusage)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MEDIA = ROOT / "bench-out"
DEFAULT_SPDL_RS_CMD = str(ROOT / "target" / "release" / "examples" / "bench_video")
_VENV_PY = ROOT / ".venv-bench" / "bin" / "python"
DEFAULT_PYTHON = str(_VENV_PY) if _VENV_PY.exists() else sys.executable

WORKLOADS = ("native", "resize224", "sample8")
CONTENDERS = ("spdl-rs", "ffmpeg-cli", "spdl", "pyav")
RESIZE = 224
SAMPLE_N = 8

# Which file each workload runs on by default.
DEFAULT_FILES = {
    "native": ["h264_720p.mp4", "h264_1080p.mp4"],
    "resize224": ["h264_720p.mp4", "h264_1080p.mp4"],
    "sample8": ["h264_10s.mp4"],
}


def sample_indices(num_frames: int, n: int = SAMPLE_N) -> list[int]:
    """n frame indices spread uniformly over [0, num_frames-1], endpoints included."""
    if num_frames <= 0:
        raise ValueError("num_frames must be positive")
    if n == 1:
        return [0]
    return [round(i * (num_frames - 1) / (n - 1)) for i in range(n)]


def _crc_frames(arr) -> list[int]:
    return [zlib.crc32(memoryview(arr[i]).cast("B") if arr[i].flags["C_CONTIGUOUS"]
                       else arr[i].tobytes()) for i in range(arr.shape[0])]


# --------------------------------------------------------------------------
# Workers: each runs in its own process (python compare_video.py --worker X).
# --------------------------------------------------------------------------

def worker_ffmpeg_cli(a) -> dict:
    if a.workload == "sample8":
        raise SystemExit("ffmpeg-cli does not run sample8")
    cmd = [a.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats",
           "-progress", "pipe:1"]
    if a.convert_threads != "auto":
        cmd += ["-filter_threads", str(a.convert_threads)]
    cmd += ["-threads", str(a.threads), "-i", a.file]
    if a.workload == "resize224":
        cmd += ["-vf", f"scale={RESIZE}:{RESIZE}"]
    cmd += ["-pix_fmt", "rgb24", "-f", "null", "-"]
    times, cpus, syss, frames = [], [], [], None
    for _ in range(a.repeat):
        c0, s0 = _cpu_children()
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        t1 = time.perf_counter()
        if p.returncode != 0:
            raise SystemExit(f"ffmpeg failed ({p.returncode}): {p.stderr.strip()}\n{shlex.join(cmd)}")
        times.append(t1 - t0)
        c1, s1 = _cpu_children()
        cpus.append(c1 - c0)
        syss.append(s1 - s0)
        m = re.findall(r"^frame=(\d+)$", p.stdout, re.M)
        frames = int(m[-1]) if m else None
    size = (RESIZE, RESIZE) if a.workload == "resize224" else None
    return {"impl": "ffmpeg-cli", "workload": a.workload, "threads": a.threads,
            "frames": frames, "times_s": times, "cpu_times_s": cpus, "sys_times_s": syss,
            "shape": [size[1], size[0], 3] if size else None,
            "peak_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
            "cmd": shlex.join(cmd)}


def worker_spdl(a) -> dict:
    import numpy as np
    import spdl.io

    # Documented decoder-thread knob: DecodeConfig.decoder_options["threads"]
    # (SPDL defaults to "1" when absent).
    dc = spdl.io.decode_config(decoder_options={"threads": str(a.threads)})
    if a.workload == "resize224":
        fdesc = spdl.io.get_video_filter_desc(
            scale_width=RESIZE, scale_height=RESIZE, scale_mode=None, scale_algo="bicubic",
            pix_fmt="rgb24")
    else:
        fdesc = spdl.io.get_video_filter_desc(pix_fmt="rgb24")  # "format=pix_fmts=rgb24"

    def run_once():
        if a.workload == "sample8":
            packets = spdl.io.demux_video(a.file)
            idx = sample_indices(len(packets))
            frames = spdl.io.sample_decode_video(packets, idx, decode_config=dc,
                                                 filter_desc=fdesc)
            return spdl.io.to_numpy(spdl.io.convert_frames(frames))
        buf = spdl.io.load_video(a.file, decode_config=dc, filter_desc=fdesc)
        return spdl.io.to_numpy(buf)

    arr, times, cpus, syss = bench_common.timed_runs(run_once, a.repeat)
    assert isinstance(arr, np.ndarray) and arr.ndim == 4 and arr.dtype == np.uint8, arr
    out = {"impl": "spdl", "workload": a.workload, "threads": a.threads,
           "frames": int(arr.shape[0]), "times_s": times, "cpu_times_s": cpus, "sys_times_s": syss,
           "shape": list(arr.shape[1:]), "filter_desc": fdesc,
           "decoder_options": {"threads": str(a.threads)},
           "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    if a.verify:
        out["frame_crc"] = _crc_frames(arr)
    return out


def worker_pyav(a) -> dict:
    import av
    import numpy as np

    conv = {"format": "rgb24", "interpolation": "BICUBIC",
            "threads": 0 if a.convert_threads == "auto" else int(a.convert_threads)}
    if a.workload == "resize224":
        conv.update(width=RESIZE, height=RESIZE)

    def open_stream(container):
        s = container.streams.video[0]
        s.thread_type = "AUTO"  # FRAME|SLICE, same as libavcodec's default
        s.thread_count = a.threads
        return s

    def run_all():
        with av.open(a.file) as c:
            s = open_stream(c)
            frames = [f.to_ndarray(**conv) for f in c.decode(s)]
        return np.stack(frames)

    def run_sample():
        with av.open(a.file) as c:
            s = open_stream(c)
            n = s.frames
            if not n:
                raise SystemExit("pyav sample8 needs the container's frame count")
            idx = sample_indices(n)
            rate = s.average_rate
            tb = s.time_base
            start = s.start_time or 0
            out = []
            for i in idx:
                # CFR: pts of display frame i. Seek to the keyframe at or before
                # it, then decode forward until we reach it.
                target = start + int(round(i / rate / tb))
                c.seek(target, stream=s, backward=True, any_frame=False)
                got = None
                for f in c.decode(s):
                    if f.pts is not None and f.pts >= target:
                        got = f
                        break
                if got is None:
                    raise SystemExit(f"pyav: frame {i} (pts {target}) not found")
                out.append(got.to_ndarray(**conv))
        return np.stack(out)

    run_once = run_sample if a.workload == "sample8" else run_all
    arr, times, cpus, syss = bench_common.timed_runs(run_once, a.repeat)
    out = {"impl": "pyav", "workload": a.workload, "threads": a.threads,
           "frames": int(arr.shape[0]), "times_s": times, "cpu_times_s": cpus, "sys_times_s": syss,
           "shape": list(arr.shape[1:]),
           "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    if a.verify:
        out["frame_crc"] = _crc_frames(arr)
    return out


def worker_info(a) -> dict:
    import importlib.metadata as md
    info = {"python": sys.version.split()[0], "packages": {}}
    for p in ("spdl", "spdl-io", "spdl-core", "av", "numpy"):
        try:
            info["packages"][p] = md.version(p)
        except md.PackageNotFoundError:
            info["packages"][p] = None
    try:
        import av
        info["pyav_ffmpeg"] = getattr(av, "ffmpeg_version_info", None)
        info["pyav_libs"] = {k: ".".join(map(str, v)) for k, v in av.library_versions.items()}
    except Exception as e:  # noqa: BLE001
        info["pyav_error"] = repr(e)
    try:
        import spdl.io
        spdl.io.demux_video(a.file)  # forces the native extension (and libav*) to load
        libs = {}
        maps = Path("/proc/self/maps").read_text()
        for name in ("libspdl_ffmpeg", "libavcodec", "libavfilter", "libswscale"):
            m = re.search(rf"(/\S*{name}[^/\s]*\.so[.\d]*)", maps)
            libs[name] = m.group(1) if m else None
        info["spdl_loaded_libs"] = libs
    except Exception as e:  # noqa: BLE001
        info["spdl_error"] = repr(e)
    return info


WORKERS = {"ffmpeg-cli": worker_ffmpeg_cli, "spdl": worker_spdl, "pyav": worker_pyav,
           "info": worker_info}


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def probe(ffprobe: str, path: Path) -> dict:
    out = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,width,height,nb_frames,r_frame_rate,bit_rate",
         "-of", "json", str(path)], check=True, capture_output=True, text=True).stdout
    s = json.loads(out)["streams"][0]
    return {"codec": s.get("codec_name"), "width": int(s["width"]), "height": int(s["height"]),
            "frames": int(s.get("nb_frames", 0) or 0), "fps": s.get("r_frame_rate"),
            "bit_rate": int(s.get("bit_rate", 0) or 0)}


def machine_info(args, info: dict | None) -> dict:
    try:
        ffv = subprocess.run([args.ffmpeg, "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        ffv = None
    meta = bench_common.machine_basics()
    meta.update({"ffmpeg_cli": ffv, "python_env": info})
    return meta


def cli_startup_s(ffmpeg: str, n: int = 5) -> float:
    """Median wall time of a near-empty ffmpeg run: the per-iteration process cost."""
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi",
           "-i", "color=s=16x16:d=0.04", "-f", "null", "-"]
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def summarize(r: dict) -> dict:
    return bench_common.summarize(r, "frames")


def render_table(rows: list[dict]) -> str:
    lead = [("file", lambda r: r["file"]), ("workload", lambda r: r["workload"]),
            ("thr", lambda r: str(r["threads"])), ("impl", lambda r: r["impl"])]
    return bench_common.render_table(rows, lead, "frames", "frames/s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--media-dir", type=Path, default=DEFAULT_MEDIA)
    ap.add_argument("--files", default=None,
                    help="comma-separated files for native/resize224 (default: h264_720p.mp4,h264_1080p.mp4 "
                         "in --media-dir); sample8 always uses --sample-file")
    ap.add_argument("--sample-file", default="h264_10s.mp4")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--contenders", default=",".join(CONTENDERS))
    ap.add_argument("--threads", default="1,2", help="decoder threads, comma-separated")
    ap.add_argument("--convert-threads", default="1",
                    help="threads for rgb24 conversion/scaling in ffmpeg-cli (-filter_threads) and PyAV "
                         "(reformat threads=); 'auto' = library default (all cores). SPDL is fixed at 1.")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--spdl-rs-cmd", default=DEFAULT_SPDL_RS_CMD)
    ap.add_argument("--ffmpeg", default="ffmpeg")
    ap.add_argument("--ffprobe", default="ffprobe")
    ap.add_argument("--python", default=DEFAULT_PYTHON,
                    help="interpreter for the SPDL/PyAV workers (default: .venv-bench/bin/python if present)")
    ap.add_argument("--timeout", type=float, default=600.0, help="per contender×cell, seconds")
    ap.add_argument("--verify", action="store_true",
                    help="also CRC every output frame (untimed) and cross-check sample8 against native "
                         "decode of the same file by the same contender")
    ap.add_argument("--json", type=Path, default=None, help="write full results here")
    # internal
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.worker:
        if a.worker != "info":
            a.threads = int(a.threads)
        print(json.dumps(WORKERS[a.worker](a)), flush=True)
        return 0

    workloads = [w for w in a.workloads.split(",") if w]
    for w in workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w}")
    contenders = [c for c in a.contenders.split(",") if c]
    for c in contenders:
        if c not in CONTENDERS:
            ap.error(f"unknown contender {c}")
    threads = [int(t) for t in a.threads.split(",") if t]

    spdl_rs = shlex.split(a.spdl_rs_cmd)
    if "spdl-rs" in contenders:
        exe = spdl_rs[0] if spdl_rs else ""
        if not (shutil.which(exe) or (Path(exe).is_file() and os.access(exe, os.X_OK))):
            print(f"WARNING: spdl-rs command not found ({a.spdl_rs_cmd}); skipping spdl-rs. "
                  "Build it with `cargo build --release --example bench_video`.", file=sys.stderr)
            contenders.remove("spdl-rs")

    files = {}
    main_files = a.files.split(",") if a.files else None
    for w in workloads:
        names = [a.sample_file] if w == "sample8" else (main_files or DEFAULT_FILES[w])
        files[w] = [(a.media_dir / n if not os.path.isabs(n) and not Path(n).exists() else Path(n))
                    for n in names]
    all_paths = sorted({p for ps in files.values() for p in ps})
    missing = [str(p) for p in all_paths if not p.is_file()]
    if missing:
        print(f"ERROR: missing media {missing}; run benches/make_media.sh", file=sys.stderr)
        return 2
    probes = {str(p): probe(a.ffprobe, p) for p in all_paths}
    for p in all_paths:  # warm the page cache so no contender pays the first read
        p.read_bytes()

    me = [a.python, str(Path(__file__).resolve())]
    info, err, _ = run_child(me + ["--worker", "info", "--file", str(all_paths[0])], a.timeout)
    if info is None:
        print(f"WARNING: could not collect Python package info: {err.strip()[:500]}", file=sys.stderr)
    meta = machine_info(a, info)
    meta["ffmpeg_cli_startup_s"] = cli_startup_s(a.ffmpeg) if "ffmpeg-cli" in contenders else None
    meta["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()
                    if k not in ("worker", "file", "workload")}
    meta["media"] = {Path(k).name: v for k, v in probes.items()}

    rows: list[dict] = []
    t_start = time.perf_counter()
    for w in workloads:
        for path in files[w]:
            pr = probes[str(path)]
            for th in threads:
                cell = []
                for impl in contenders:
                    if impl == "ffmpeg-cli" and w == "sample8":
                        continue
                    common = ["--file", str(path), "--workload", w, "--threads", str(th),
                              "--repeat", str(a.repeat)]
                    print(f"[{time.perf_counter() - t_start:6.1f}s] {path.name} {w} threads={th} {impl} ...",
                          file=sys.stderr, flush=True)
                    if impl == "spdl-rs":
                        res, err, rus = run_child_rusage(spdl_rs + common, a.timeout)
                    else:
                        extra = ["--convert-threads", str(a.convert_threads), "--ffmpeg", a.ffmpeg]
                        if a.verify:
                            extra.append("--verify")
                        res, err, rus = run_child(me + ["--worker", impl] + common + extra, a.timeout)
                    row = {"file": path.name, "workload": w, "threads": th, "impl": impl}
                    if res is None or not res.get("times_s"):
                        row["error"] = (err or "no result").strip() or "no result"
                        print(f"  -> ERROR: {row['error'][:2000]}", file=sys.stderr)
                        cell.append(row)
                        continue
                    row.update({k: v for k, v in res.items() if k not in ("impl", "workload", "threads")})
                    if "peak_rss_kb" not in row and rus.get("maxrss_kb"):
                        row["peak_rss_kb"] = rus["maxrss_kb"]
                    if not row.get("cpu_times_s") and rus.get("cpu_s") is not None:
                        # includes process start-up and all repeats: an upper bound
                        row["cpu_times_s"] = [rus["cpu_s"] / len(res["times_s"])]
                        row["cpu_estimated"] = True
                    # sanity checks
                    want = SAMPLE_N if w == "sample8" else pr["frames"]
                    want_shape = ([RESIZE, RESIZE, 3] if w == "resize224"
                                  else [pr["height"], pr["width"], 3])
                    problems = []
                    if want and row.get("frames") != want:
                        problems.append(f"frames {row.get('frames')}≠{want}")
                    if row.get("shape") is not None and list(row["shape"]) != want_shape:
                        problems.append(f"shape {row['shape']}≠{want_shape}")
                    row["check"] = "ok" if not problems else "; ".join(problems)
                    if problems:
                        print(f"  -> CHECK FAILED: {row['check']}", file=sys.stderr)
                    row["summary"] = summarize(row)
                    print(f"  -> median {row['summary']['median_s'] * 1e3:.0f} ms, frames={row.get('frames')}",
                          file=sys.stderr)
                    cell.append(row)
                bench_common.attach_speedups(cell)
                rows.append(cell)
    flat = [r for cell in rows for r in cell]
    meta["loadavg_end"] = os.getloadavg()
    meta["total_wall_s"] = time.perf_counter() - t_start

    verify = None
    if a.verify:
        verify = cross_check(flat, a.sample_file)
        for line in verify:
            print("verify:", line, file=sys.stderr)

    print(render_report(meta, flat, a, verify))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"meta": meta, "results": flat, "verify": verify}, indent=2))
        print(f"wrote {a.json}", file=sys.stderr)
    bad = [r for r in flat if r.get("error") or r.get("check", "ok") != "ok"]
    return 1 if bad else 0


def cross_check(flat: list[dict], sample_file: str) -> list[str]:
    """sample8 frames must equal the same contender's native decode at those indices."""
    msgs = []
    for r in flat:
        if r["workload"] != "sample8" or "frame_crc" not in r:
            continue
        nat = next((x for x in flat if x["impl"] == r["impl"] and x["workload"] == "native"
                    and x["file"] == r["file"] and "frame_crc" in x), None)
        if nat is None:
            msgs.append(f"{r['impl']} t={r['threads']}: no native run of {r['file']} to compare "
                        f"(add it with --files {sample_file} --workloads native,sample8)")
            continue
        idx = sample_indices(len(nat["frame_crc"]))
        ok = [nat["frame_crc"][i] for i in idx] == r["frame_crc"]
        msgs.append(f"{r['impl']} t={r['threads']}: sample8 frames {idx} "
                    f"{'match' if ok else 'DO NOT match'} native decode")
    # cross-contender equality of native output (informational)
    for w in ("native", "resize224"):
        by = {}
        for r in flat:
            if r["workload"] == w and "frame_crc" in r:
                by.setdefault((r["file"], r["threads"]), {})[r["impl"]] = r["frame_crc"]
        for (f, th), d in sorted(by.items()):
            if len(d) >= 2:
                names = sorted(d)
                same = all(d[n] == d[names[0]] for n in names)
                msgs.append(f"{w} {f} t={th}: {'/'.join(names)} outputs "
                            f"{'bit-identical' if same else 'differ (different FFmpeg build/swscale)'}")
    return msgs


def render_report(meta: dict, flat: list[dict], a, verify) -> str:
    env = meta.get("python_env") or {}
    pk = env.get("packages", {})
    out = ["## Video decode: spdl-rs vs peers", ""]
    out.append(f"- CPU: {meta['cpu_model']} — {meta['logical_cpus']} logical CPUs "
               f"({meta['affinity_cpus']} usable); kernel {meta['kernel']}")
    out.append(f"- load average at start {tuple(round(x, 2) for x in meta['loadavg_start'])}, "
               f"end {tuple(round(x, 2) for x in meta['loadavg_end'])}")
    out.append(f"- ffmpeg CLI: {meta['ffmpeg_cli']}")
    if env:
        out.append(f"- Python {env.get('python')}: " + ", ".join(f"{k} {v}" for k, v in pk.items()))
        if env.get("pyav_ffmpeg") or env.get("pyav_libs"):
            out.append(f"- PyAV's bundled FFmpeg: {env.get('pyav_ffmpeg')} "
                       f"(libavcodec {env.get('pyav_libs', {}).get('libavcodec')})")
        if env.get("spdl_loaded_libs"):
            libs = env["spdl_loaded_libs"]
            out.append(f"- SPDL binds: {libs.get('libspdl_ffmpeg')} → {libs.get('libavcodec')}")
    out.append(f"- repeats per cell: {a.repeat}; decoder threads: {a.threads}; "
               f"conversion threads (CLI/PyAV): {a.convert_threads}; SPDL filter graph: 1 thread")
    if meta.get("ffmpeg_cli_startup_s") is not None:
        out.append(f"- ffmpeg CLI is one process per iteration; its bare start-up+teardown is "
                   f"~{meta['ffmpeg_cli_startup_s'] * 1e3:.0f} ms and is included in its times")
    out.append("- speed-up = peer median / spdl-rs median (> 1: spdl-rs faster); "
               "CPU = user+sys of all threads per iteration, sys part in parentheses "
               "(~ = whole-process estimate)")
    out.append("")
    out.append(render_table(flat))
    if verify:
        out.append("")
        out += [f"- verify: {m}" for m in verify]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
