"""spdl_rs.io.load_npy / load_npz against NumPy's own writer and reader: every
numeric dtype and bool, both byte orders, C and Fortran order, scalars and empty
arrays, stored and deflated archives; hostile files give clean errors."""

import io
import zipfile

import numpy as np
import pytest

import spdl_rs
from spdl_rs import io as sio

DTYPES = ["?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16"]


def sample(dtype, shape=(3, 4, 5)):
    rng = np.random.default_rng(0)
    values = rng.standard_normal(shape) * 100
    if np.dtype(dtype).kind == "c":
        return (values + 1j * values[::-1]).astype(dtype)
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("fortran", [False, True])
def test_npy_matches_numpy(tmp_path, dtype, order, fortran):
    dt = np.dtype(dtype).newbyteorder(order) if np.dtype(dtype).itemsize > 1 else np.dtype(dtype)
    a = sample(dt)
    if fortran:
        a = np.asfortranarray(a)
    path = tmp_path / "a.npy"
    np.save(path, a)
    got = sio.load_npy(path)
    want = np.load(path)
    assert got.dtype == want.dtype.newbyteorder("=") and got.shape == want.shape
    assert got.flags.f_contiguous == want.flags.f_contiguous
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(sio.load_npy(path.read_bytes()), want)


def test_scalars_empty_arrays_and_format_2(tmp_path):
    for a in [np.float64(3.5), np.zeros((0, 7), np.int32), np.arange(5)]:
        buf = io.BytesIO()
        np.save(buf, a)
        got = sio.load_npy(buf.getvalue())
        assert got.shape == np.shape(a) and np.array_equal(got, a)
    path = tmp_path / "v2.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array(f, np.arange(6.0).reshape(2, 3), version=(2, 0))
    assert np.array_equal(sio.load_npy(path), np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_matches_numpy(tmp_path, compressed):
    arrays = {f"x_{d}": sample(d, (4, 6)) for d in DTYPES}
    arrays["labels"] = np.arange(10, dtype=np.int64)
    path = tmp_path / "a.npz"
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    got = sio.load_npz(path)
    assert list(got) == list(arrays)
    for name, want in np.load(path).items():
        np.testing.assert_array_equal(got[name], want)


def test_hostile_files_are_clean_errors(tmp_path):
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(spdl_rs.DecodeError, match="obj.npy.*object array"):
        sio.load_npy(obj)
    good = io.BytesIO()
    np.save(good, np.arange(1000, dtype=np.float32))
    data = good.getvalue()
    with pytest.raises(spdl_rs.DecodeError, match="truncated"):
        sio.load_npy(data[:-10])
    huge = data.replace(b"(1000,)", b"(10**9,)".replace(b"10**9", b"999999999999"), 1)
    with pytest.raises((spdl_rs.DecodeError, spdl_rs.LimitError)):
        sio.load_npy(huge)
    with pytest.raises(spdl_rs.DecodeError, match="magic"):
        sio.load_npy(b"not an array at all")
    # A zip bomb: a member whose header declares 80 GB (over the 16 GiB output
    # limit) over megabytes of zeros stops at its header, before inflating.
    bomb = tmp_path / "bomb.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**10,)})
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.npy", header.getvalue() + b"\0" * (8 << 20))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(spdl_rs.LimitError, match="bomb.npz!big.npy"):
        sio.load_npz(bomb)
    with pytest.raises(spdl_rs.DecodeError, match="not a readable .npz"):
        sio.load_npz(data)
