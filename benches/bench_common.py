"""Helpers shared by benches/compare_video.py and benches/compare_image.py.

Standard library only (the drivers may run under any python3; the workers run
under .venv-bench). Imported by script name: both drivers live next to this
file, so ``import bench_common`` resolves through ``sys.path[0]``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def cpu_self() -> tuple[float, float]:
    """(user+sys, sys) CPU seconds of this process, all threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_stime


def timed_runs(run_once: Callable[[], object], repeat: int):
    """Runs ``run_once`` ``repeat`` times in this process; returns the last
    result and per-run wall, CPU (user+sys) and sys seconds. The previous
    result is freed before each run, outside the timed region."""
    times, cpus, syss, result = [], [], [], None
    for _ in range(repeat):
        result = None
        c0, s0 = cpu_self()
        t0 = time.perf_counter()
        result = run_once()
        times.append(time.perf_counter() - t0)
        c1, s1 = cpu_self()
        cpus.append(c1 - c0)
        syss.append(s1 - s0)
    return result, times, cpus, syss


def attach_speedups(cell: list[dict]) -> None:
    """Sets ``speedup`` = peer median / spdl-rs median on every row of a
    table cell that has a spdl-rs reference."""
    ref = next((r for r in cell if r["impl"] == "spdl-rs" and not r.get("error")), None)
    for r in cell:
        if ref and not r.get("error"):
            r["speedup"] = r["summary"]["median_s"] / ref["summary"]["median_s"]


def cpu_children() -> tuple[float, float]:
    """(user+sys, sys) CPU seconds of the reaped children of this process."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime, ru.ru_stime


def peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def last_json_line(out: str) -> dict | None:
    """The last line of ``out`` that parses as a JSON object, or None."""
    for line in reversed(out.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def run_child(cmd: list[str], timeout: float) -> tuple[dict | None, str, dict]:
    """Run cmd, return (last JSON line of stdout or None, stderr, rusage of the child tree)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, f"timeout after {timeout}s\n{err}", {}
    # communicate() already reaped the child; the per-child rusage is therefore
    # not available via wait4 here, so the workers report their own peaks.
    res = last_json_line(out)
    if p.returncode != 0:
        return None, f"exit {p.returncode}\n{err}", {}
    return res, err, {}


def run_child_rusage(cmd: list[str], timeout: float) -> tuple[dict | None, str, dict]:
    """Like run_child but measures the child's own rusage with os.wait4 (for spdl-rs)."""
    with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe, text=True)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                fe.seek(0)
                return None, f"timeout after {timeout}s\n{fe.read()}", {}
            time.sleep(0.01)
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    rus = {"maxrss_kb": ru.ru_maxrss, "cpu_s": ru.ru_utime + ru.ru_stime}
    if p.returncode != 0:
        return None, f"exit {p.returncode}\n{err}", rus
    res = last_json_line(out)
    if res is None:
        err = f"no JSON line on stdout\n{out[-2000:]}\n{err}"
    return res, err, rus


def machine_basics() -> dict:
    """CPU model, CPU counts, kernel, load average, driver Python."""
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": cpu,
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "kernel": platform.release(),
        "loadavg_start": os.getloadavg(),
        "python_driver": sys.version.split()[0],
    }


def fmt_ms(x: float | None) -> str:
    return "—" if x is None else f"{x * 1e3:.0f}" if x >= 0.1 else f"{x * 1e3:.1f}"


def summarize(r: dict, count_key: str = "frames") -> dict:
    """Median/min/max wall time, items per second and median CPU of one result row.

    The rate key stays "fps" (items/s) for both benches so JSON consumers see
    one schema; the tables label it frames/s or images/s.
    """
    t = r["times_s"]
    med = statistics.median(t)
    cpu = r.get("cpu_times_s")
    sys_ = r.get("sys_times_s")
    return {"median_s": med, "min_s": min(t), "max_s": max(t),
            "fps": (r[count_key] / med) if r.get(count_key) and med > 0 else None,
            "cpu_median_s": statistics.median(cpu) if cpu else None,
            "sys_median_s": statistics.median(sys_) if sys_ else None}


def render_table(rows: list[dict], lead: list[tuple[str, Callable[[dict], str]]],
                 count_key: str = "frames", rate_label: str = "frames/s") -> str:
    """Markdown table: lead columns, then count, median (min–max), rate, CPU, RSS, speed-up.

    ``lead`` is [(header, row -> text)]. Rows with "error" get one ERROR cell.
    """
    hdr = [h for h, _ in lead] + [count_key, "median ms (min–max)", rate_label,
                                  "CPU ms/iter (sys)", "peak RSS MB", "spdl-rs speed-up"]
    lines = ["| " + " | ".join(hdr) + " |", "|" + "|".join(["---"] * len(hdr)) + "|"]
    for r in rows:
        head = [fn(r) for _, fn in lead]
        if r.get("error"):
            lines.append("| " + " | ".join(head) +
                         f" | ERROR: {r['error'].splitlines()[0][:60]} | | | | | |")
            continue
        s = r["summary"]
        cpu = s["cpu_median_s"]
        cpu_txt = "—" if cpu is None else (("~" if r.get("cpu_estimated") else "") + fmt_ms(cpu))
        if s.get("sys_median_s") is not None:
            cpu_txt += f" ({fmt_ms(s['sys_median_s'])})"
        rss = r.get("peak_rss_kb")
        sp = r.get("speedup")
        count = str(r.get(count_key))
        if r.get("check") and r["check"] != "ok":
            count += f" ⚠ {r['check']}"
        lines.append("| " + " | ".join(head + [
            count,
            f"{fmt_ms(s['median_s'])} ({fmt_ms(s['min_s'])}–{fmt_ms(s['max_s'])})",
            "—" if s["fps"] is None else f"{s['fps']:.0f}",
            cpu_txt,
            "—" if not rss else f"{rss / 1024:.0f}",
            "—" if sp is None else ("(ref)" if r["impl"] == "spdl-rs" else f"{sp:.2f}×"),
        ]) + " |")
    return "\n".join(lines)
