"""The TensorFlow-free downloader: digests checked before parsing, formats parsed exactly."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import numpy as np
import pytest

from edgesmith.core.datasets import download as dl
from edgesmith.core.datasets import load_dataset
from edgesmith.core.errors import EdgesmithError


def _cifar_records(count: int, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=count, dtype=np.uint8)
    planes = images.transpose(0, 3, 1, 2).reshape(count, -1)
    return np.concatenate([labels[:, None], planes], axis=1).tobytes(), images, labels


def _cifar_tarball() -> tuple[bytes, dict]:
    buffer, arrays = io.BytesIO(), {"x": [], "y": []}
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for index, name in enumerate(
            [*(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin"]
        ):
            data, images, labels = _cifar_records(4, seed=index)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            arrays["x"].append(images)
            arrays["y"].append(labels)
    return buffer.getvalue(), arrays


def _serve(monkeypatch, name: str, files: dict[str, bytes]) -> list[str]:
    """Point SOURCES[name] at in-memory files with their true digests; return the URLs asked."""
    asked = []
    sources = {}
    for file_name, data in files.items():
        url, algorithm, _ = dl.SOURCES[name][file_name]
        sources[file_name] = (url, algorithm, hashlib.new(algorithm, data).hexdigest())
    monkeypatch.setitem(dl.SOURCES, name, sources)
    by_url = {sources[f][0]: data for f, data in files.items()}

    def fetch(url: str) -> bytes:
        asked.append(url)
        return by_url[url]

    monkeypatch.setattr(dl, "fetch_url", fetch)
    return asked


def test_cifar_binary_records_become_hwc_images(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESMITH_DATA_DIR", str(tmp_path))
    tarball, arrays = _cifar_tarball()
    _serve(monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": tarball})
    data = load_dataset("cifar10")
    np.testing.assert_array_equal(data.x_train, np.concatenate(arrays["x"][:5]))
    np.testing.assert_array_equal(data.y_train, np.concatenate(arrays["y"][:5]))
    np.testing.assert_array_equal(data.x_eval, arrays["x"][5])
    assert (tmp_path / "cifar10.npz").is_file()  # cached: the next load reads it


def test_a_cached_set_is_not_downloaded_again(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESMITH_DATA_DIR", str(tmp_path))
    tarball, _ = _cifar_tarball()
    asked = _serve(monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": tarball})
    load_dataset("cifar10")
    load_dataset("cifar10")
    assert len(asked) == 1


def test_fashion_idx_files_parse(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESMITH_DATA_DIR", str(tmp_path))
    rng = np.random.default_rng(0)

    def idx(array: np.ndarray) -> bytes:
        header = bytes((0, 0, 8, array.ndim)) + b"".join(
            int(n).to_bytes(4, "big") for n in array.shape
        )
        return gzip.compress(header + array.astype(np.uint8).tobytes())

    x_train = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    y_train = np.arange(6, dtype=np.uint8) % 10
    x_test = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    y_test = np.arange(3, dtype=np.uint8)
    _serve(
        monkeypatch,
        "fashion_mnist",
        {
            "train-images-idx3-ubyte.gz": idx(x_train),
            "train-labels-idx1-ubyte.gz": idx(y_train),
            "t10k-images-idx3-ubyte.gz": idx(x_test),
            "t10k-labels-idx1-ubyte.gz": idx(y_test),
        },
    )
    data = load_dataset("fashion_mnist")
    np.testing.assert_array_equal(data.x_train[..., 0], x_train)
    np.testing.assert_array_equal(data.y_eval, y_test)


def test_a_file_with_another_digest_is_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESMITH_DATA_DIR", str(tmp_path))
    tarball, _ = _cifar_tarball()
    monkeypatch.setattr(dl, "fetch_url", lambda url: tarball)  # the published digest differs
    with pytest.raises(EdgesmithError, match="md5 .* expected c32a1d4ab5d03f1284b67883e8d87530"):
        load_dataset("cifar10")
    assert not (tmp_path / "cifar10.npz").exists()


def test_an_unreachable_mirror_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESMITH_DATA_DIR", str(tmp_path))

    def offline(url: str) -> bytes:
        raise OSError("network is unreachable")

    monkeypatch.setattr(dl, "fetch_url", offline)
    with pytest.raises(EdgesmithError, match="downloading .* failed .*set EDGESMITH_DATA_DIR"):
        load_dataset("mnist")


def test_truncated_records_are_refused():
    with pytest.raises(EdgesmithError, match="not whole records"):
        dl.parse_cifar_records(b"\x00" * (dl.CIFAR_RECORD + 5))
