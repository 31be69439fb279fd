"""What first touch of a fresh output buffer costs on this machine: an 829 MB
anonymous mapping (a 10 s 720p clip as RGB) written once, with and without the
transparent huge page hint spdl-io gives its outputs, then written again.

    python3 benches/python/first_touch.py [--rounds 5]

Prints per mapping: the first pass (ms, kernel seconds, page faults, huge pages
allocated) and the second pass (the memory bandwidth floor). Only the standard
library: mmap/madvise/memset through ctypes, counters from getrusage and
/proc/vmstat.
"""
import argparse
import ctypes
import resource
import time

MADV_HUGEPAGE = 14
SIZE = 829_440_000  # 300 x 720 x 1280 x 3

libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def thp_faults():
    for line in open("/proc/vmstat"):
        key, value = line.split()
        if key == "thp_fault_alloc":
            return int(value)
    return 0


def one(huge):
    p = libc.mmap(None, SIZE, 3, 0x22, -1, 0)  # PROT_READ|WRITE, MAP_PRIVATE|ANONYMOUS
    if huge:
        libc.madvise(p, SIZE, MADV_HUGEPAGE)
    thp, r0, t0 = thp_faults(), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    ctypes.memset(p, 1, SIZE)
    first, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    ctypes.memset(p, 2, SIZE)
    second = time.perf_counter() - t0
    libc.munmap(p, SIZE)
    print(f"{'huge pages' if huge else '4 KiB pages':11} first {first * 1e3:6.0f} ms "
          f"(kernel {r1.ru_stime - r0.ru_stime:.2f} s, {r1.ru_minflt - r0.ru_minflt} faults, "
          f"{thp_faults() - thp} huge) second {second * 1e3:4.0f} ms", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    for huge in (True, False, True, False):
        for _ in range(a.rounds):
            one(huge)


if __name__ == "__main__":
    main()
