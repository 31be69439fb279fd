"""The GIL is released during decodes: Python threads keep running, and decoding
threads scale."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from spdl_rs import io as sio

from conftest import FIXTURES

VIDEO = FIXTURES / "long_h264.mp4"


def decode_for(seconds):
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        sio.load_video(VIDEO, size=(64, 64))
        n += 1
    return n


def test_a_python_thread_keeps_running_during_decodes():
    counts = []
    stop = threading.Event()

    def count():
        n = 0
        while not stop.is_set():
            n += 1
        counts.append(n)

    t0 = time.perf_counter()
    t = threading.Thread(target=count)
    t.start()
    time.sleep(0.3)
    stop.set()
    t.join()
    alone = counts.pop() / (time.perf_counter() - t0)

    stop.clear()
    t0 = time.perf_counter()
    t = threading.Thread(target=count)
    t.start()
    decode_for(1.0)
    stop.set()
    t.join()
    during = counts.pop() / (time.perf_counter() - t0)
    # With the GIL held by decodes the counter would crawl (switch interval
    # 5 ms against decodes of tens of ms); released, it keeps most of its rate.
    assert during > 0.3 * alone, f"{during:.0f}/s during decodes vs {alone:.0f}/s alone"


def test_two_threads_decode_more_than_one():
    files = [str(FIXTURES / "images" / "jpeg_baseline_444.jpg")] * 64

    def work(_):
        for f in files:
            sio.load_image(f, size=(224, 224))

    def rate(threads):
        with ThreadPoolExecutor(threads) as pool:
            t0 = time.perf_counter()
            list(pool.map(work, range(threads * 2)))
            return threads * 2 * len(files) / (time.perf_counter() - t0)

    rate(1)  # warm up
    # Held GIL: two threads never beat one. Other load on a shared machine
    # can hide the gain once, so the best of three attempts counts.
    tries = []
    for _ in range(3):
        one, two = rate(1), rate(2)
        tries.append(f"1 thread {one:.0f}/s, 2 threads {two:.0f}/s")
        if two > 1.2 * one:
            break
    else:
        raise AssertionError("two threads never beat one by 1.2x: " + "; ".join(tries))
    assert np.all(sio.load_image(files[0]) >= 0)
