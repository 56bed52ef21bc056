import gzip
import os
import re
import struct

import numpy as np
import pytest

from skal import datasets
from skal.datasets import (
    DATASETS,
    _read_idx,
    load_dataset,
    load_digits_images,
    load_fashion_mnist,
)

SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
HAVE_REAL = all(
    os.path.isfile(os.path.join(SYSTEM_DIR, f))
    for f in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
)

STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_bytes(array, code=0x08, dtype=">u1"):
    array = np.asarray(array)
    header = bytes([0, 0, code, array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    return header + array.astype(dtype).tobytes()


def write(path, payload, compress):
    if compress:
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


def tiny_data(n=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, size=n).astype(np.uint8)
    return X, y


def write_split(directory, split="train", n=5, compress=True, seed=0):
    directory.mkdir(parents=True, exist_ok=True)
    X, y = tiny_data(n, seed)
    suffix = ".gz" if compress else ""
    images_stem, labels_stem = STEMS[split]
    write(directory / (images_stem + suffix), idx_bytes(X), compress)
    write(directory / (labels_stem + suffix), idx_bytes(y), compress)
    return X, y


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No SKAL_DATA from the caller, and no system-wide files by default."""
    monkeypatch.delenv("SKAL_DATA", raising=False)
    monkeypatch.setattr(
        datasets, "_SYSTEM_FASHION_MNIST_DIR", str(tmp_path / "no-system-dir")
    )


def check_loaded(X, y, X_ref, y_ref):
    assert X.shape == (len(X_ref), 1, 28, 28)
    assert X.dtype == np.uint8
    assert y.shape == (len(y_ref),)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(X[:, 0], X_ref)
    np.testing.assert_array_equal(y, y_ref)


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("split", ["train", "test"])
def test_data_home(tmp_path, compress, split):
    X_ref, y_ref = write_split(tmp_path / "data", split, compress=compress)
    X, y = load_fashion_mnist(split, data_home=tmp_path / "data")
    check_loaded(X, y, X_ref, y_ref)
    X, y = load_dataset("fashion-mnist", split, data_home=str(tmp_path / "data"))
    check_loaded(X, y, X_ref, y_ref)


def test_skal_data_env(tmp_path, monkeypatch):
    X_ref, y_ref = write_split(tmp_path / "env", "test", n=3)
    monkeypatch.setenv("SKAL_DATA", str(tmp_path / "env"))
    check_loaded(*load_fashion_mnist("test"), X_ref, y_ref)
    check_loaded(*load_dataset("fmnist", "test"), X_ref, y_ref)


def test_data_home_before_env(tmp_path, monkeypatch):
    X_home, y_home = write_split(tmp_path / "home", seed=1)
    write_split(tmp_path / "env", seed=2)
    monkeypatch.setenv("SKAL_DATA", str(tmp_path / "env"))
    check_loaded(*load_fashion_mnist(data_home=tmp_path / "home"), X_home, y_home)


@pytest.mark.parametrize("via_env", [False, True])
def test_torchvision_layout(tmp_path, monkeypatch, via_env):
    X_ref, y_ref = write_split(tmp_path / "root" / "FashionMNIST" / "raw", n=4)
    if via_env:
        monkeypatch.setenv("SKAL_DATA", str(tmp_path / "root"))
        X, y = load_fashion_mnist()
    else:
        X, y = load_fashion_mnist(data_home=tmp_path / "root")
    check_loaded(X, y, X_ref, y_ref)


def test_system_dir(tmp_path, monkeypatch):
    X_ref, y_ref = write_split(tmp_path / "system")
    monkeypatch.setattr(datasets, "_SYSTEM_FASHION_MNIST_DIR", str(tmp_path / "system"))
    check_loaded(*load_fashion_mnist(), X_ref, y_ref)


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_other_dtypes(tmp_path, compress):
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 7
    path = write(tmp_path / "a", idx_bytes(a, 0x0C, ">i4"), compress)
    out = _read_idx(path)
    assert out.dtype == np.int32 and out.dtype.isnative
    np.testing.assert_array_equal(out, a)
    out[0, 0, 0] = 1  # writable
    f = np.linspace(0, 1, 5, dtype=np.float32)
    out = _read_idx(write(tmp_path / "f", idx_bytes(f, 0x0D, ">f4"), compress))
    np.testing.assert_array_equal(out, f)


def test_truncated_payload(tmp_path):
    X, y = tiny_data()
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write(path, idx_bytes(X)[:-10], compress=True)
    write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(y), compress=True)
    msg = f"{path} is not a valid IDX file: expected 3920 bytes of data, found 3910"
    with pytest.raises(ValueError, match=re.escape(msg)):
        load_fashion_mnist(data_home=tmp_path)


def test_extra_payload(tmp_path):
    path = write(tmp_path / "x", idx_bytes(np.zeros(3)) + b"\0", compress=False)
    with pytest.raises(ValueError, match="expected 3 bytes of data, found 4"):
        _read_idx(path)


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x00", "bad magic number 0x01000801"),
        (b"PK\x03\x04rest", "bad magic number"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "unknown data type code 0x07"),
        (b"\x00\x00\x08\x00", "number of dimensions is zero"),
        (b"\x00\x00", "expected a 4-byte magic number, found 2 bytes"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x01", "expected a 16-byte header"),
    ],
)
def test_bad_header(tmp_path, payload, match):
    path = write(tmp_path / "bad-idx", payload, compress=False)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + match):
        _read_idx(path)


def test_bad_magic_through_loader(tmp_path):
    write_split(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    write(path, b"\xff\xff\x08\x01" + b"\x00" * 8, compress=True)
    with pytest.raises(ValueError, match=re.escape(f"{path} is not a valid IDX")):
        load_fashion_mnist(data_home=tmp_path)


def test_truncated_gzip(tmp_path):
    write_split(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    msg = f"{path} could not be decompressed"
    with pytest.raises(ValueError, match=re.escape(msg)):
        load_fashion_mnist(data_home=tmp_path)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "x.gz"
    data = bytearray(gzip.compress(idx_bytes(np.arange(200) % 256)))
    data[3] = 0xFF  # reserved flag bits set: BadGzipFile
    path.write_bytes(bytes(data))
    msg = f"{path} could not be decompressed"
    with pytest.raises(ValueError, match=re.escape(msg)):
        _read_idx(path)


def test_count_mismatch(tmp_path):
    X, y = tiny_data(5)
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(X), compress=False)
    write(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(y[:4]), compress=True)
    with pytest.raises(ValueError, match=r"number of images \(5 .*labels \(4 "):
        load_fashion_mnist("test", data_home=tmp_path)


def test_wrong_image_shape(tmp_path):
    write(tmp_path / "train-images-idx3-ubyte", idx_bytes(np.zeros((2, 8, 8))), False)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(2)), False)
    with pytest.raises(ValueError, match="does not hold 28x28 uint8 images"):
        load_fashion_mnist(data_home=tmp_path)


def test_missing_files(tmp_path, monkeypatch):
    env = tmp_path / "env"
    # Only the labels: an incomplete directory is skipped.
    env.mkdir()
    write(env / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(2)), True)
    monkeypatch.setenv("SKAL_DATA", str(env))
    with pytest.raises(FileNotFoundError) as excinfo:
        load_fashion_mnist()
    msg = str(excinfo.value)
    for d in (env, env / "FashionMNIST" / "raw", tmp_path / "no-system-dir"):
        assert f"- {d}\n" in msg + "\n"
    assert "train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]" in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "data_home=" in msg and "SKAL_DATA" in msg


@pytest.mark.parametrize("exists", [False, True])
@pytest.mark.parametrize("split", ["train", "test"])
def test_explicit_data_home_never_falls_back(tmp_path, monkeypatch, exists, split):
    # Complete copies in $SKAL_DATA and the system folder must not replace the one named.
    write_split(tmp_path / "env", split)
    write_split(tmp_path / "system", split)
    monkeypatch.setenv("SKAL_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(datasets, "_SYSTEM_FASHION_MNIST_DIR", str(tmp_path / "system"))
    home = tmp_path / "nonexistent"
    if exists:
        home.mkdir()
        # Only the labels: an incomplete data_home is still an error.
        write(home / (STEMS[split][1] + ".gz"), idx_bytes(np.zeros(2)), True)
    images_stem, labels_stem = STEMS[split]
    msg = (
        f"Fashion-MNIST {split!r} files ({images_stem}[.gz] and {labels_stem}[.gz]) "
        f"were not found in data_home={str(home)!r}"
        + ("" if exists else " (the folder does not exist)")
        + f". Searched:\n  - {home}\n  - {home / 'FashionMNIST' / 'raw'}\n"
    )
    with pytest.raises(FileNotFoundError, match=re.escape(msg)) as excinfo:
        load_fashion_mnist(split, data_home=home)
    assert str(tmp_path / "env") not in str(excinfo.value).split("Searched:")[1].split("Put")[0]
    with pytest.raises(FileNotFoundError, match=re.escape(msg)):
        load_dataset("fashion_mnist", split, data_home=str(home))


def test_data_home_literal_nonexistent(monkeypatch):
    # The exact call of the bug report, with the real system copy (if any) in reach.
    monkeypatch.setattr(datasets, "_SYSTEM_FASHION_MNIST_DIR", SYSTEM_DIR)
    with pytest.raises(FileNotFoundError, match=r"data_home='/nonexistent' \(the folder"):
        load_fashion_mnist(data_home="/nonexistent")


def test_data_home_expands_user(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    X_ref, y_ref = write_split(tmp_path / "fm", "test", n=3)
    check_loaded(*load_fashion_mnist("test", data_home="~/fm"), X_ref, y_ref)


@pytest.mark.parametrize("bad", [3, ["/tmp"], b"/tmp"])
def test_bad_data_home_type(bad):
    msg = (
        "The 'data_home' parameter of load_fashion_mnist must be a str, a path-like "
        f"object or None. Got {bad!r} instead."
    )
    with pytest.raises(TypeError, match=re.escape(msg)):
        load_fashion_mnist(data_home=bad)


def test_missing_files_default_dirs(tmp_path):
    match = "(?s)not found.*no-system-dir.*as root"
    with pytest.raises(FileNotFoundError, match=match):
        load_fashion_mnist("test")


@pytest.mark.parametrize("split", ["foo", "TRAIN", None, "validation"])
def test_bad_split(split):
    msg = (
        "The 'split' parameter of load_fashion_mnist must be one of "
        f"{{'train', 'test'}}. Got {split!r} instead."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        load_fashion_mnist(split)
    with pytest.raises(ValueError, match="'split' parameter of load_dataset"):
        load_dataset("digits", split)


def test_digits():
    X, y = load_digits_images()
    assert X.shape == (1797, 1, 8, 8)
    assert X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(np.unique(y), np.arange(10))
    X2, y2 = load_dataset("digits")
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)


def test_digits_no_test_split():
    with pytest.raises(ValueError, match="digits dataset has no official test split"):
        load_dataset("digits", "test")


@pytest.mark.parametrize("name", ["foo", "mnist", "Digits", None])
def test_unknown_dataset(name):
    msg = f"Unknown dataset {name!r}. Expected one of: 'digits', 'fashion_mnist'."
    with pytest.raises(ValueError, match=re.escape(msg)):
        load_dataset(name)


def test_datasets_constant():
    assert DATASETS == ("digits", "fashion_mnist")
    assert set(datasets.__all__) >= {
        "DATASETS",
        "load_dataset",
        "load_digits_images",
        "load_fashion_mnist",
    }


@pytest.mark.skipif(not HAVE_REAL, reason="Fashion-MNIST is not installed")
@pytest.mark.parametrize("split, n", [("test", 10000), ("train", 60000)])
def test_real_fashion_mnist(monkeypatch, split, n):
    monkeypatch.setattr(datasets, "_SYSTEM_FASHION_MNIST_DIR", SYSTEM_DIR)
    X, y = load_fashion_mnist(split)
    assert X.shape == (n, 1, 28, 28)
    assert X.dtype == np.uint8
    assert y.shape == (n,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y, minlength=10), [n // 10] * 10)
    assert X.max() == 255 and X.min() == 0
