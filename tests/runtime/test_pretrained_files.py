"""The shipped int8 files reproduce their recorded accuracy on MLPerf Tiny's 200 images."""

from pathlib import Path

import numpy as np
import pytest

from edgesmith.core import pretrained
from edgesmith.runtime import evaluate, load

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "cifar10-mlperf200.npz"


@pytest.mark.parametrize("name", sorted(pretrained.entries()))
def test_the_shipped_int8_file_scores_what_its_entry_records(name):
    entry = pretrained.find(name)
    with np.load(SAMPLE) as sample:
        x, y = sample["x"], sample["y"]
    assert x.shape == (200, 32, 32, 3) and np.bincount(y).tolist() == [20] * 10
    model = load(entry.folder("tflite-int8") / "model.tflite", threads=1)
    try:
        correct = round(evaluate(model, x, y)["accuracy"] * len(y))
    finally:
        model.close()
    # one image either way: int8 kernels may round one logit differently on another CPU kind
    assert abs(correct - entry.measured["int8_correct_mlperf200"]) <= 1
