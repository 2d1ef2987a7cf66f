"""Download cifar10, mnist and fashion_mnist from their publishers, without TensorFlow or pickle.

The core stays free of TensorFlow, so the Keras loaders are not used. The sources are the ones
Keras reads, in formats that hold only bytes: MNIST's npz (read with ``allow_pickle=False``),
Fashion-MNIST's IDX files, and CIFAR-10's *binary* version (Keras takes the Python version, whose
batches are pickles and would run code from the download). Every file is checked against its
published digest before it is parsed, and the arrays are cached once as
``<cache>/<name>.npz`` (``$EDGESMITH_DATA_DIR``, else ``~/.cache/edgesmith/datasets``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgesmith.core.errors import EdgesmithError

KERAS_BUCKET = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
FASHION_BUCKET = KERAS_BUCKET
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
TIMEOUT_S = 60
CIFAR_RECORD = 1 + 32 * 32 * 3  # label byte, then the red, green and blue 32x32 planes

# file name -> (url, algorithm, digest) as published by the data set's authors (or Keras)
SOURCES: dict[str, dict[str, tuple[str, str, str]]] = {
    "mnist": {
        "mnist.npz": (
            KERAS_BUCKET + "mnist.npz",
            "sha256",
            "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
        ),
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": (
            FASHION_BUCKET + "train-images-idx3-ubyte.gz",
            "md5",
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        ),
        "train-labels-idx1-ubyte.gz": (
            FASHION_BUCKET + "train-labels-idx1-ubyte.gz",
            "md5",
            "25c81989df183df01b3e8a0aad5dffbe",
        ),
        "t10k-images-idx3-ubyte.gz": (
            FASHION_BUCKET + "t10k-images-idx3-ubyte.gz",
            "md5",
            "bef4ecab320f06d8554ea6380940ec79",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            FASHION_BUCKET + "t10k-labels-idx1-ubyte.gz",
            "md5",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
    },
    "cifar10": {
        "cifar-10-binary.tar.gz": (CIFAR_URL, "md5", "c32a1d4ab5d03f1284b67883e8d87530"),
    },
}

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Fetch = Callable[[str], bytes]


def cache_dir() -> Path:
    """Where downloaded sets are kept: ``$EDGESMITH_DATA_DIR``, else the user's cache."""
    folder = os.environ.get("EDGESMITH_DATA_DIR")
    return Path(folder) if folder else Path.home() / ".cache" / "edgesmith" / "datasets"


def fetch_url(url: str) -> bytes:
    """The bytes at ``url`` (with a timeout: a stalled mirror must not hang a CI job)."""
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 (fixed https)
        return response.read()


def download(name: str, fetch: Fetch | None = None) -> Path:
    """Download set ``name``, check its digests, parse it and cache it as ``<name>.npz``.

    Args:
        name: ``cifar10``, ``mnist`` or ``fashion_mnist``.
        fetch: url -> bytes; default :func:`fetch_url` (tests give a fake).

    Returns:
        The cached npz (arrays x_train, y_train, x_test, y_test).

    Raises:
        EdgesmithError: when a download fails, a digest differs, or a file does not parse.
    """
    fetch = fetch or fetch_url
    files = {}
    for file_name, (url, algorithm, digest) in SOURCES[name].items():
        try:
            data = fetch(url)
        except Exception as exc:  # URLError, HTTPError, timeouts, ...: all mean "unavailable"
            raise EdgesmithError(
                f"{name}: downloading {url} failed ({type(exc).__name__}: {exc})"
            ) from None
        actual = hashlib.new(algorithm, data).hexdigest()
        if actual != digest:
            raise EdgesmithError(
                f"{name}: {url} has {algorithm} {actual}, expected {digest}; refusing the file"
            )
        files[file_name] = data
    arrays = PARSERS[name](files)
    target = cache_dir() / f"{name}.npz"
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, staged = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".npz")
    with os.fdopen(handle, "wb") as out:
        np.savez(out, **dict(zip(("x_train", "y_train", "x_test", "y_test"), arrays, strict=True)))
    os.replace(staged, target)
    return target


def parse_mnist(files: dict[str, bytes]) -> Arrays:
    """MNIST's npz: four arrays, no pickled objects."""
    with np.load(io.BytesIO(files["mnist.npz"]), allow_pickle=False) as data:
        return data["x_train"], data["y_train"], data["x_test"], data["y_test"]


def parse_idx(data: bytes, dims: int) -> np.ndarray:
    """One gzipped IDX file (unsigned bytes): a magic number, ``dims`` sizes, then the values."""
    raw = gzip.decompress(data)
    header = 4 + 4 * dims
    if len(raw) < header or raw[:4] != bytes((0, 0, 8, dims)):
        raise EdgesmithError(f"not an IDX file of unsigned bytes with {dims} dimension(s)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    if len(raw) - header != int(np.prod(shape)):
        raise EdgesmithError(f"IDX file holds {len(raw) - header} values, its header says {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def parse_fashion(files: dict[str, bytes]) -> Arrays:
    """Fashion-MNIST's four IDX files."""
    return (
        parse_idx(files["train-images-idx3-ubyte.gz"], 3),
        parse_idx(files["train-labels-idx1-ubyte.gz"], 1),
        parse_idx(files["t10k-images-idx3-ubyte.gz"], 3),
        parse_idx(files["t10k-labels-idx1-ubyte.gz"], 1),
    )


def parse_cifar_records(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 binary records: (N, 32, 32, 3) uint8 images (HWC) and (N,) labels."""
    if len(data) % CIFAR_RECORD:
        raise EdgesmithError(f"a CIFAR-10 batch of {len(data)} bytes is not whole records")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), records[:, 0].copy()


def parse_cifar(files: dict[str, bytes]) -> Arrays:
    """The binary tarball: data_batch_1..5.bin for training, test_batch.bin for test."""
    batches = {}
    with tarfile.open(fileobj=io.BytesIO(files["cifar-10-binary.tar.gz"]), mode="r:gz") as tar:
        for member in tar.getmembers():  # read as bytes, never extracted to disk
            if member.isfile() and member.name.endswith(".bin"):
                batches[Path(member.name).name] = tar.extractfile(member).read()
    names = [f"data_batch_{i}.bin" for i in range(1, 6)]
    missing = [n for n in [*names, "test_batch.bin"] if n not in batches]
    if missing:
        raise EdgesmithError(f"the CIFAR-10 archive lacks {', '.join(missing)}")
    train = [parse_cifar_records(batches[n]) for n in names]
    x_test, y_test = parse_cifar_records(batches["test_batch.bin"])
    return (
        np.concatenate([x for x, _ in train]),
        np.concatenate([y for _, y in train]),
        x_test,
        y_test,
    )


PARSERS: dict[str, Callable[[dict[str, bytes]], Arrays]] = {
    "mnist": parse_mnist,
    "fashion_mnist": parse_fashion,
    "cifar10": parse_cifar,
}
