"""``cifar10?subset=mlperf``: MLPerf Tiny's 200 evaluation images out of CIFAR-10's test set."""

from __future__ import annotations

import numpy as np
import pytest

from edgesmith.core.datasets import load_dataset
from edgesmith.core.datasets.mlperf_tiny import MLPERF_IC_INDICES, MLPERF_IC_LABELS
from edgesmith.core.errors import EdgesmithError


def test_the_list_is_200_distinct_test_images_20_per_class():
    assert len(MLPERF_IC_INDICES) == len(MLPERF_IC_LABELS) == 200
    assert len(set(MLPERF_IC_INDICES)) == 200
    assert 0 <= min(MLPERF_IC_INDICES) and max(MLPERF_IC_INDICES) < 10_000
    assert np.bincount(MLPERF_IC_LABELS, minlength=10).tolist() == [20] * 10
    # the first ones, as in perf_samples_idxs.npy and y_labels.csv (emu_s_002009.bin is a bird)
    assert MLPERF_IC_INDICES[:3] == (7657, 8959, 3596) and MLPERF_IC_LABELS[:3] == (2, 1, 2)


def _fake_cifar(folder, *, order_ok: bool = True):
    """A cifar10.npz whose test image ``i`` is filled with ``i % 256`` and carries its label."""
    y_test = np.arange(10_000) % 10
    y_test[list(MLPERF_IC_INDICES)] = MLPERF_IC_LABELS
    if not order_ok:
        y_test = y_test[::-1].copy()
    x_test = np.broadcast_to(
        (np.arange(10_000) % 256).astype(np.uint8)[:, None, None, None], (10_000, 4, 4, 3)
    ).copy()
    np.savez(
        folder / "cifar10.npz",
        x_train=np.zeros((20, 4, 4, 3), np.uint8),
        y_train=np.arange(20) % 10,
        x_test=x_test,
        y_test=y_test,
    )


def test_the_subset_evaluates_on_exactly_those_images_in_order(tmp_path, monkeypatch):
    _fake_cifar(tmp_path)
    monkeypatch.setenv("EDGESMITH_DATA_DIR", str(tmp_path))
    data = load_dataset("cifar10?subset=mlperf")
    assert len(data.y_eval) == 200 and len(data.y_train) == 20
    assert data.y_eval.tolist() == list(MLPERF_IC_LABELS)
    assert data.x_eval[:, 0, 0, 0].tolist() == [i % 256 for i in MLPERF_IC_INDICES]
    assert data.fingerprint != load_dataset("cifar10").fingerprint


def test_a_test_set_in_another_order_is_refused(tmp_path, monkeypatch):
    _fake_cifar(tmp_path, order_ok=False)
    monkeypatch.setenv("EDGESMITH_DATA_DIR", str(tmp_path))
    with pytest.raises(EdgesmithError, match="not CIFAR-10's test_batch in its original order"):
        load_dataset("cifar10?subset=mlperf")


# A bad subset, or a subset of another dataset: test_datasets.py's bad specs.


def test_real_cifar10_matches_mlperfs_labels(cifar_dir, monkeypatch):
    """On the real test set the 200 labels agree: the indices are in this npz's order."""
    monkeypatch.setenv("EDGESMITH_DATA_DIR", str(cifar_dir))
    data = load_dataset("cifar10?subset=mlperf")
    assert data.y_eval.tolist() == list(MLPERF_IC_LABELS)
