import numpy as np
import pytest

from edgesmith.core.datasets import load_dataset, parse_spec
from edgesmith.core.errors import EdgesmithError


def test_digits_is_embedded_stratified_and_stable():
    data = load_dataset("digits")
    assert data.x_train.shape == (1438, 8, 8, 1) and data.x_eval.shape == (359, 8, 8, 1)
    assert data.x_train.dtype == np.uint8 and data.x_train.max() == 255
    assert data.labels == tuple(str(i) for i in range(10))
    counts = np.bincount(data.y_eval, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 37  # 20% of each class's ~180
    assert load_dataset("digits").fingerprint == data.fingerprint
    assert not data.flip_ok


def test_digits_matches_scikit_learn_when_installed():
    sklearn = pytest.importorskip("sklearn.datasets")
    reference = sklearn.load_digits()
    data = load_dataset("digits")
    pixels = np.concatenate([data.x_train, data.x_eval]).astype(np.float64)
    levels = np.round(pixels * 16 / 255).astype(int)
    ours = sorted(map(bytes, levels.reshape(len(levels), -1).astype(np.uint8)))
    theirs = sorted(map(bytes, reference.images.reshape(len(levels), -1).astype(np.uint8)))
    assert ours == theirs


def test_limits_and_fingerprint_change():
    full = load_dataset("digits")
    small = load_dataset("digits?train=100&eval=50")
    assert len(small.y_train) == 100 and len(small.y_eval) == 50
    assert small.fingerprint != full.fingerprint
    assert small.describe()["num_train"] == 100


def test_synthetic_options():
    data = load_dataset("synthetic?classes=3&shape=12x10&n=60")
    assert data.x_train.shape == (60, 12, 10, 1) and data.num_classes == 3
    assert load_dataset("synthetic").input_shape == (16, 16, 3)


def save_npz(path, **arrays):
    np.savez(path, **arrays)
    return f"npz:{path}"


def test_npz_grayscale_float_unit_range_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    spec = save_npz(
        tmp_path / "d.npz",
        x_train=rng.random((20, 6, 6)).astype(np.float32),
        y_train=np.arange(20) % 4,
        x_test=rng.random((8, 6, 6)).astype(np.float32),
        y_test=(np.arange(8) % 4).reshape(-1, 1),
        labels=np.array(["w", "x", "y", "z"]),
    )
    data = load_dataset(spec)
    assert data.input_shape == (6, 6, 1) and data.labels == ("w", "x", "y", "z")
    assert 200 < data.x_train.max() <= 255  # [0, 1] floats are scaled back to pixels
    assert data.y_eval.shape == (8,)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x_train": np.zeros((4, 8, 8)), "y_train": np.zeros(4)}, "lacks array.*x_test, y_test"),
        (
            {
                "x_train": np.zeros((4, 8)),
                "y_train": np.zeros(4),
                "x_test": np.zeros((2, 8)),
                "y_test": np.zeros(2),
            },
            r"expected images shaped \(N, H, W\)",
        ),
        (
            {
                "x_train": np.full((4, 8, 8), -3.0),
                "y_train": np.zeros(4),
                "x_test": np.zeros((2, 8, 8)),
                "y_test": np.zeros(2),
            },
            r"span \[-3, -3\]; expected raw pixels",
        ),
        (
            {
                "x_train": np.zeros((4, 8, 8)),
                "y_train": np.zeros(3),
                "x_test": np.zeros((2, 8, 8)),
                "y_test": np.zeros(2),
            },
            "3 labels for 4 images",
        ),
        (
            {
                "x_train": np.zeros((4, 8, 8)),
                "y_train": np.zeros(4),
                "x_test": np.zeros((2, 9, 9)),
                "y_test": np.zeros(2),
            },
            "train images are",
        ),
        (
            {
                "x_train": np.zeros((4, 8, 8)),
                "y_train": np.zeros(4),
                "x_test": np.zeros((2, 8, 8)),
                "y_test": np.zeros(2),
            },
            "at least 2 classes",
        ),
    ],
)
def test_malformed_npz_is_explained(tmp_path, arrays, message):
    spec = save_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(EdgesmithError, match=message):
        load_dataset(spec)


def test_not_an_npz_and_missing_file(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(EdgesmithError, match="not a readable .npz"):
        load_dataset(f"npz:{tmp_path / 'text.npz'}")
    with pytest.raises(EdgesmithError, match="file not found"):
        load_dataset(f"npz:{tmp_path / 'absent.npz'}")


def write_images(root, classes, count, size=(10, 12), mode="RGB"):
    from PIL import Image

    rng = np.random.default_rng(1)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(count):
            shape = (*size, 3) if mode == "RGB" else size
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(
                root / name / f"{i}.png"
            )


def test_folder_split_given_and_held_out(tmp_path):
    write_images(tmp_path / "a" / "train", ["cat", "dog"], 5)
    write_images(tmp_path / "a" / "test", ["cat", "dog"], 2)
    data = load_dataset(f"folder:{tmp_path / 'a'}")
    assert data.labels == ("cat", "dog") and len(data.y_train) == 10 and len(data.y_eval) == 4
    assert data.input_shape == (10, 12, 3)
    write_images(tmp_path / "b", ["x", "y", "z"], 10)
    data = load_dataset(f"folder:{tmp_path / 'b'}?size=8x8&grayscale=1")
    assert data.input_shape == (8, 8, 1) and len(data.y_eval) == 6


def test_folder_errors(tmp_path):
    write_images(tmp_path / "c" / "one", ["only"], 2)
    with pytest.raises(EdgesmithError, match="one sub-folder per class"):
        load_dataset(f"folder:{tmp_path / 'c' / 'one'}")
    write_images(tmp_path / "d", ["p"], 2, size=(10, 10))
    write_images(tmp_path / "d", ["q"], 2, size=(12, 12))
    with pytest.raises(EdgesmithError, match=r"differ in size.*\?size=HxW"):
        load_dataset(f"folder:{tmp_path / 'd'}")
    assert load_dataset(f"folder:{tmp_path / 'd'}?size=10x10").input_shape == (10, 10, 3)
    with pytest.raises(EdgesmithError, match="not a directory"):
        load_dataset(f"folder:{tmp_path / 'none'}")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("", "a data spec is needed", id="empty"),
        pytest.param("imagenet", "unknown dataset 'imagenet'", id="unknown-dataset"),
        pytest.param("csv:x.csv", "unknown data source 'csv'", id="unknown-source"),
        pytest.param("npz:", "needs a path", id="npz-without-path"),
        pytest.param("digits?size=3", "unknown option 'size=3'", id="unknown-option"),
        pytest.param("digits?train=0", "train must be a whole number >= 1", id="train-0"),
        pytest.param("synthetic?shape=axb", "shape must look like", id="shape-axb"),
        pytest.param("folder:/nonexistent?split=abc", "split must be a number in", id="split-abc"),
        pytest.param("folder:/nonexistent?split=nan", "split must be a number in", id="split-nan"),
        pytest.param("folder:/nonexistent?split=1.5", "split must be a number in", id="split-1.5"),
        pytest.param(
            "folder:/nonexistent?grayscale=maybe", "grayscale must be one of", id="grayscale-maybe"
        ),
        pytest.param("synthetic?n=\u00b2", "n must be a whole number", id="n-superscript-2"),
        pytest.param("synthetic?n=" + "9" * 5000, "n must be a whole number", id="n-5000-digits"),
        pytest.param("synthetic?shape=100000x100000", "each side 1..4096", id="shape-100000"),
        pytest.param("synthetic?seed=-1", "seed must be a whole number >= 0", id="seed-negative"),
        pytest.param("npz:a\0b", "NUL character", id="nul-in-path"),
        # cifar10?subset=mlperf (test_mlperf_subset.py): no other subset, no other dataset
        pytest.param(
            "cifar10?subset=eembc",
            "subset must be one of mlperf. Received: 'eembc'",
            id="subset-eembc",
        ),
        pytest.param("mnist?subset=mlperf", "unknown option 'subset=mlperf'", id="mnist-subset"),
    ],
)
def test_bad_specs_are_refused_when_parsed(spec, message):
    """Before any file is read: issue 14 item 7, ``?split=abc`` failed with a traceback only
    after reading every image. ``load_dataset`` gives the same one-line error."""
    with pytest.raises(EdgesmithError, match=message):
        parse_spec(spec)
    with pytest.raises(EdgesmithError, match=message):
        load_dataset(spec)


def test_keras_sets_read_the_data_dir_first(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "mnist.npz",
        x_train=rng.integers(0, 255, (30, 28, 28), dtype=np.uint8),
        y_train=np.arange(30) % 10,
        x_test=rng.integers(0, 255, (10, 28, 28), dtype=np.uint8),
        y_test=np.arange(10),
    )
    monkeypatch.setenv("EDGESMITH_DATA_DIR", str(tmp_path))
    data = load_dataset("mnist")
    assert data.input_shape == (28, 28, 1) and data.labels[3] == "3"


def test_real_cifar10_slice(cifar_dir, monkeypatch):
    monkeypatch.setenv("EDGESMITH_DATA_DIR", str(cifar_dir))
    data = load_dataset("cifar10?train=500&eval=200")
    assert data.x_train.shape == (500, 32, 32, 3) and data.flip_ok
    assert data.labels[0] == "airplane" and data.labels[-1] == "truck"
    mean, std = data.channel_stats()
    np.testing.assert_allclose(mean, [0.4914, 0.4822, 0.4465], atol=0.02)
    np.testing.assert_allclose(std, [0.2470, 0.2435, 0.2616], atol=0.02)


def test_parse_spec_keeps_paths_with_colons():
    spec = parse_spec("npz:/data/a:b.npz?train=5")
    assert spec.path == "/data/a:b.npz" and spec.options == {"train": "5"}


def test_folder_split_abc_exits_2_before_reading_images(tmp_path, monkeypatch):
    from edgesmith.core.datasets import loaders

    write_images(tmp_path / "b", ["x", "y"], 3)
    monkeypatch.setattr(loaders, "_read_images", lambda *a: pytest.fail("images were read"))
    with pytest.raises(EdgesmithError, match="split must be a number"):
        load_dataset(f"folder:{tmp_path / 'b'}?split=abc")


def test_synthetic_sizes_are_bounded():
    with pytest.raises(EdgesmithError, match="too large for synthetic data"):
        load_dataset("synthetic?n=100000&shape=256x256x3")
    assert load_dataset("synthetic?n=8&classes=2&seed=0").num_classes == 2


def _npz(tmp_path, x_train, y_train, name="d.npz"):
    path = tmp_path / name
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_train[:2], y_test=y_train[:2])
    return f"npz:{path}"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinite_float_pixels_are_refused(tmp_path, bad):
    x = np.full((4, 4, 4, 1), 0.5, np.float32)
    x[1, 2, 2, 0] = bad
    with pytest.raises(EdgesmithError, match="NaN or infinity"):
        load_dataset(_npz(tmp_path, x, np.array([0, 1, 0, 1])))


@pytest.mark.parametrize(
    "labels", [np.array([0, 1, 2**40, 1]), np.array([0, 1, 2**63 + 5, 1], np.uint64)]
)
def test_a_huge_label_value_does_not_build_a_huge_class_list(tmp_path, labels):
    x = np.zeros((4, 4, 4, 1), np.uint8)
    with pytest.raises(EdgesmithError, match="out of range; class indices go up to 99,999"):
        load_dataset(_npz(tmp_path, x, labels))


def test_a_decompression_bomb_image_exits_2(tmp_path, monkeypatch):
    from PIL import Image

    write_images(tmp_path / "b", ["x", "y"], 2, size=(40, 40))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 40x40 = 1600 > 2 x 100: a "bomb"
    with pytest.raises(EdgesmithError, match="decompression bomb"):
        load_dataset(f"folder:{tmp_path / 'b'}")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600 > 1000: Pillow only warns
    with pytest.raises(EdgesmithError, match="decompression bomb"):
        load_dataset(f"folder:{tmp_path / 'b'}")


def test_a_malformed_image_exits_2(tmp_path):
    write_images(tmp_path / "b", ["x", "y"], 2)
    (tmp_path / "b" / "x" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(EdgesmithError, match="cannot read image"):
        load_dataset(f"folder:{tmp_path / 'b'}")
