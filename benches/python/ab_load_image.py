"""A/B of `load_image` on the common formats between two installs of spdl_rs
(two Pythons, e.g. a venv with the previous commit's wheel and .venv-test).

    python3 benches/python/ab_load_image.py --a /tmp/oldvenv/bin/python --b .venv-test/bin/python [--rounds 5] [--only] [FILE ...]

Each round runs one process per install that decodes each fixture of
fixtures/images (JPEG, PNG, WebP, GIF, BMP, TIFF) for about 0.3 s and
reports decodes/s per file (FILE arguments are decoded too, by path);
rounds alternate A and B. Prints the medians and B/A per file.
"""
import argparse
import json
import statistics
import subprocess

FILES = [
    "jpeg_baseline_420.jpg",
    "png_rgb8.png",
    "png_rgba8.png",
    "webp_lossy.webp",
    "webp_lossless.webp",
    "gif_transparent.gif",
    "bmp_rgb24.bmp",
    "tiff_rgb_lzw.tif",
]

CODE = """
import json, sys, time
import spdl_rs.io as io
out = {}
for f in sys.argv[1:]:
    data = open(f if "/" in f else "fixtures/images/" + f, "rb").read()
    io.load_image(data)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.3:
        io.load_image(data)
        n += 1
    out[f] = n / (time.perf_counter() - t0)
print(json.dumps(out))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", action="store_true", help="decode only the FILE arguments")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    files = ([] if a.only else FILES) + a.files
    rates = {"A": {f: [] for f in files}, "B": {f: [] for f in files}}
    for _ in range(a.rounds):
        for name, py in (("A", a.a), ("B", a.b)):
            got = json.loads(subprocess.run([py, "-c", CODE, *files], capture_output=True, text=True, check=True).stdout)
            for f, r in got.items():
                rates[name][f].append(r)
    print("| file | A decodes/s | B decodes/s | B/A |")
    print("|---|---|---|---|")
    for f in files:
        ma, mb = statistics.median(rates["A"][f]), statistics.median(rates["B"][f])
        print(f"| {f} | {ma:,.0f} | {mb:,.0f} | {mb / ma:.2f} |")


if __name__ == "__main__":
    main()
