"""The Keras 3 trainer's pieces: settings, schedule, augmentation, distillation, batches, recipes.

Fast: nothing here trains. Keras 3 is imported on JAX where JAX is installed (the backend the
trainer is tested on); the pieces only use ``keras.ops``, so any backend gives the same numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]


def _keras3():
    if "keras" not in sys.modules:
        try:
            import jax  # noqa: F401

            os.environ.setdefault("KERAS_BACKEND", "jax")
        except ImportError:
            pass
    keras = pytest.importorskip("keras")
    if not hasattr(keras, "distribution"):
        pytest.skip("keras is not Keras 3")
    return keras


# --- settings -------------------------------------------------------------------------------


def test_defaults_keep_the_tf_keras_trainer_and_the_plain_recipe():
    config = TrainConfig()
    assert config.backend == "tf_keras"
    assert config.ema is None and config.teacher is None
    assert config.augmentations(flip_ok=True) == ("crop", "flip")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"backend": "mxnet"}, "backend must be one of"),
        ({"ema": 0.999}, "ema needs a Keras 3 backend"),
        ({"teacher": "t.keras"}, "teacher needs a Keras 3 backend"),
        ({"augment": "crop,erase"}, "augment erase needs a Keras 3 backend"),
        ({"backend": "jax", "ema": 1.0}, "ema must be in [0.0, 1.0)"),
        ({"backend": "jax", "ema": -0.1}, "ema must be in"),
        ({"backend": "jax", "alpha": 1.5}, "alpha must be in [0.0, 1.0]"),
        ({"backend": "jax", "temperature": 0.0}, "temperature must be in"),
        ({"backend": "jax", "teacher": ""}, "teacher must be a model file"),
        ({"backend": "jax", "augment": "crop,mixup"}, "crop, flip, erase"),
        ({"backend": "jax", "strategy": "multiworker"}, "tf_keras only"),
        ({"backend": "jax", "augment_on": "host"}, "tf_keras only"),
    ],
)
def test_bad_keras3_settings_are_refused_in_one_line(values, message):
    with pytest.raises(EdgesmithError, match=None) as info:
        TrainConfig(**values)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_keras3_levers_are_accepted_on_a_keras3_backend():
    config = TrainConfig(
        backend="jax",
        augment="crop,flip,erase",
        ema=0.999,
        teacher="runs/teacher",
        alpha=0.3,
        temperature=2.0,
    )
    assert config.augmentations(flip_ok=True) == ("crop", "flip", "erase")
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_the_compress_stage_still_refuses_erase():
    from edgesmith.train.config import resolve_augment

    with pytest.raises(EdgesmithError, match="crop, flip"):
        resolve_augment("crop,erase", flip_ok=True)


def test_cli_refuses_a_keras3_lever_on_tf_keras_with_exit_2(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgesmith.app.cli",
            "train",
            "--ema",
            "0.99",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "ema needs a Keras 3 backend" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


# --- recipe pieces --------------------------------------------------------------------------


def test_schedule_equals_the_tf_keras_schedule_at_every_step():
    _keras3()
    from edgesmith.tfkeras.optimizer import WarmupCosine as TfKerasSchedule
    from edgesmith.train.keras3_recipe import WarmupCosine

    for peak, total, warmup in ((0.8, 1000, 97), (0.2, 30, 0), (1e-3, 12, 11)):
        ours, theirs = WarmupCosine(peak, total, warmup), TfKerasSchedule(peak, total, warmup)
        for step in sorted({0, 1, warmup - 1, warmup, warmup + 1, total // 2, total - 1, total}):
            step = max(0, step)
            got = float(np.asarray(ours(step)))
            want = float(theirs(step).numpy())
            assert got == pytest.approx(want, rel=1e-5, abs=1e-9), (peak, total, warmup, step)
    schedule = WarmupCosine(0.8, 1000, 100)
    assert float(np.asarray(schedule(0))) == pytest.approx(0.8 / 100)  # first step moves
    assert float(np.asarray(schedule(100))) == pytest.approx(0.8)  # peak after warm-up
    assert float(np.asarray(schedule(1000))) == pytest.approx(0.0, abs=1e-9)  # cosine to zero


def test_optimizer_matches_the_recipe():
    keras = _keras3()
    from edgesmith.train.keras3_recipe import make_optimizer

    sgd = make_optimizer("sgd", 0.4, total_steps=100, warmup_steps=10, weight_decay=2.5e-3)
    assert sgd.nesterov and sgd.momentum == pytest.approx(0.9)
    assert sgd.weight_decay == pytest.approx(2.5e-3) and not sgd.use_ema
    from edgesmith.train.zoo import build_model

    model = build_model("resnet8", (8, 8, 1), 10, keras=keras)
    sgd.build(model.trainable_variables)
    decayed = {v.path.split("/")[-1] for v in model.trainable_variables if sgd._use_weight_decay(v)}
    assert decayed == {"kernel"}  # BatchNorm gamma/beta and biases are left alone
    averaged = make_optimizer("adam", 1e-3, total_steps=10, schedule="constant", ema=0.99)
    assert averaged.use_ema and averaged.ema_momentum == pytest.approx(0.99)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_the_weight_average_ramps_up_instead_of_holding_the_initial_weights(name):
    keras = _keras3()
    from edgesmith.train.keras3_recipe import make_optimizer

    optimizer = make_optimizer(name, 0.0, total_steps=100, schedule="constant", ema=0.999)
    weight = keras.Variable(np.zeros(3, "float32"))
    optimizer.build([weight])
    optimizer.apply([keras.ops.zeros(3)], [weight])  # step 0 (learning rate 0: only the
    weight.assign(np.ones(3, "float32"))  # average moves); then the live weights jump to 1
    steps = 20
    for _ in range(steps):
        optimizer.apply([keras.ops.zeros(3)], [weight])
    t = np.arange(1, steps + 1)
    decay = np.minimum(0.999, (1 + t) / (10 + t))
    want = 1.0 - np.prod(decay)  # the average of a constant 1, started from 0
    (average,) = [v for v in optimizer._model_variables_moving_average if v is not None]
    np.testing.assert_allclose(np.asarray(average), want, rtol=1e-4)
    assert want > 0.99  # Keras' plain 0.999 would hold 1 - 0.999**20 = 0.02 of the jump


def test_the_average_reaches_the_full_decay_where_the_rule_says():
    _keras3()
    from edgesmith.train.keras3_recipe import ema_decay

    assert float(ema_decay(0, 0.999)) == pytest.approx(0.1)
    assert float(ema_decay(8989, 0.999)) < 0.999
    assert float(ema_decay(8991, 0.999)) == pytest.approx(0.999)


def test_distillation_loss_is_t2_kl_of_softened_outputs():
    _keras3()
    from edgesmith.train.keras3_recipe import distillation_loss

    rng = np.random.default_rng(0)
    student_logits = rng.normal(size=(4, 10)).astype(np.float32)
    teacher_logits = rng.normal(size=(4, 10)).astype(np.float32)

    def softmax(z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    t = 3.0
    p, q = softmax(teacher_logits / t), softmax(student_logits / t)
    want = t * t * np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=-1))
    got = distillation_loss(student_logits, teacher_logits, temperature=t, from_logits=(True, True))
    assert float(np.asarray(got)) == pytest.approx(want, rel=1e-4)
    probs = distillation_loss(
        softmax(student_logits), softmax(teacher_logits), temperature=t, from_logits=(False, False)
    )
    assert float(np.asarray(probs)) == pytest.approx(want, rel=1e-3)  # softmax outputs alike
    same = distillation_loss(
        student_logits, student_logits, temperature=t, from_logits=(True, True)
    )
    assert float(np.asarray(same)) == pytest.approx(0.0, abs=1e-6)


# --- augmentation ---------------------------------------------------------------------------


def test_crop_shifts_each_image_inside_a_zero_frame():
    keras = _keras3()
    from edgesmith.train.keras3_augment import crop_padding, random_crop

    assert crop_padding((32, 32, 3)) == 4 and crop_padding((8, 8, 1)) == 1
    images = np.arange(1, 1 + 64 * 6 * 6 * 2, dtype=np.float32).reshape(64, 6, 6, 2)
    out = np.asarray(random_crop(images, 1, keras.random.SeedGenerator(3)))
    assert out.shape == images.shape
    padded = np.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    offsets = set()
    for i in range(len(images)):  # each output is one 6x6 window of its own padded image
        matches = [
            (dy, dx)
            for dy in range(3)
            for dx in range(3)
            if np.array_equal(out[i], padded[i, dy : dy + 6, dx : dx + 6])
        ]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > 3  # offsets differ between images of one batch


def test_flip_mirrors_about_half_of_the_images():
    keras = _keras3()
    from edgesmith.train.keras3_augment import random_flip

    images = np.random.default_rng(0).normal(size=(400, 4, 5, 1)).astype(np.float32)
    out = np.asarray(random_flip(images, keras.random.SeedGenerator(1)))
    flipped = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images, strict=True)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, images, strict=True)])
    assert np.all(flipped | kept)
    assert 0.4 < flipped.mean() < 0.6


def test_erase_zeroes_one_square_in_about_half_of_the_images():
    keras = _keras3()
    from edgesmith.train.keras3_augment import random_erase

    images = np.ones((600, 8, 8, 3), np.float32)
    out = np.asarray(random_erase(images, keras.random.SeedGenerator(2)))
    zeroed = (out == 0).all(axis=-1).sum(axis=(1, 2))  # pixels erased per image
    erased = zeroed > 0
    assert 0.4 < erased.mean() < 0.6
    assert zeroed.max() == 16  # a 4x4 square (half the side) when fully inside
    assert np.all(zeroed[erased] >= 4)  # clipped at a border, never less than a quarter
    assert set(np.unique(out)) <= {0.0, 1.0}


def test_trainee_normalises_and_evaluates_without_augmentation():
    keras = _keras3()
    from edgesmith.core.normalization import parse_normalization
    from edgesmith.train.keras3_wrapper import Trainee
    from edgesmith.train.zoo import build_model

    model = build_model("seed_cnn", (8, 8, 1), 10, keras=keras)
    norm = parse_normalization("unit")
    trainee = Trainee(model, norm=norm, augment=("crop", "flip", "erase"), pad=1, seed=0)
    pixels = np.random.default_rng(0).integers(0, 256, size=(5, 8, 8, 1)).astype(np.uint8)
    got = np.asarray(trainee(pixels, training=False))
    want = np.asarray(model(norm.apply(pixels), training=False))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_zoo_builds_the_same_models_in_keras3():
    keras = _keras3()
    from edgesmith.train.zoo import build_model

    assert build_model("resnet8", (32, 32, 3), 10, keras=keras).count_params() == 78_666
    assert build_model("seed_cnn", (32, 32, 3), 10, keras=keras).count_params() == 122_570
    model = build_model("dscnn", (8, 8, 1), 4, keras=keras)
    assert model.get_layer("logits").units == 4


def test_keras3_macs_are_counted_as_the_tf_keras_trainer_counts_them():
    keras = _keras3()
    from edgesmith.core.model_macs import count_macs
    from edgesmith.train.zoo import build_model

    # the tf_keras count of the same network (tests/train/test_zoo.py), MLPerf Tiny's 12.5 M
    assert count_macs(build_model("resnet8", (32, 32, 3), 10, keras=keras)) == 12_501_632
    assert count_macs(build_model("resnet20", (32, 32, 3), 10, keras=keras)) == 40_813_184


def test_a_model_without_known_shapes_has_no_mac_count_in_strict_mode():
    keras = _keras3()
    from edgesmith.core.model_macs import count_macs

    class Head(keras.Model):  # subclassed: its layers' output shapes are never recorded
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(4)

        def call(self, x):
            return self.dense(x)

    head = Head()
    head(np.zeros((1, 8), "float32"))
    with pytest.raises(ValueError, match="no known output shape"):
        count_macs(head, strict=True)
    assert count_macs(head) == 32  # the kernel once: what a shape-less count can say


# --- batches and run recipes ----------------------------------------------------------------


def test_batches_are_full_seeded_and_reshuffled_each_epoch():
    _keras3()
    from edgesmith.train.keras3_data import ShuffledBatches, eval_batch_size

    pixels = np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1)
    labels = np.arange(100) % 10
    batches = ShuffledBatches(pixels, labels, num_classes=10, batch_size=32, seed=5)
    assert len(batches) == 3  # the remainder of 4 is dropped: one compiled step
    first = np.concatenate([batches[i][0].ravel() for i in range(3)])
    assert len(set(first)) == 96
    x, y = batches[0]
    assert y.shape == (32, 10) and np.array_equal(y.argmax(axis=1), x.ravel() % 10)
    batches.on_epoch_end()
    second = np.concatenate([batches[i][0].ravel() for i in range(3)])
    assert not np.array_equal(first, second)  # a new order each epoch
    again = ShuffledBatches(pixels, labels, num_classes=10, batch_size=32, seed=5, first_epoch=1)
    assert np.array_equal(np.concatenate([again[i][0].ravel() for i in range(3)]), second)
    assert eval_batch_size(10_000, 1024) == 1000
    assert eval_batch_size(360, 256) == 180
    assert eval_batch_size(359, 256) == 256  # a prime count: the last batch is smaller
    assert eval_batch_size(10_000, 1024, multiple=8) == 1000


def test_run_recipe_resolves_teachers_and_refuses_bad_references(tmp_path):
    from edgesmith.train.keras3_runs import load_run_recipe

    planned = load_run_recipe(
        ROOT / "src" / "edgesmith" / "recipes" / "train" / "cifar10-best.yaml", {"epochs": 3}
    )
    students = ["resnet8-kd-seed0", "resnet8-kd-seed1", "resnet8-thin-kd-seed0"]
    assert [p.name for p in planned] == ["teacher-resnet20", *students]
    assert [p.teacher_run for p in planned] == [None] + ["teacher-resnet20"] * 3
    assert all(p.settings["epochs"] == 3 and p.settings["backend"] == "jax" for p in planned)
    assert {p.settings["seed"] for p in planned[1:]} == {0, 1}
    assert TrainConfig.from_dict(planned[3].settings).widths["stage3_block1_shortcut"] == 48
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"runs": [{"name": "s", "backend": "jax", "teacher": "@t"}]}))
    with pytest.raises(EdgesmithError, match="no earlier run"):
        load_run_recipe(bad)
    bad.write_text(json.dumps({"runs": [{"name": "s", "ema": 0.9}]}))
    with pytest.raises(EdgesmithError, match="ema needs a Keras 3 backend"):
        load_run_recipe(bad)


def test_selected_runs_bring_their_teachers_in_recipe_order():
    from edgesmith.train.keras3_runs import load_run_recipe, select_runs

    planned = load_run_recipe(
        ROOT / "src" / "edgesmith" / "recipes" / "train" / "cifar10-best.yaml"
    )
    chosen = select_runs(planned, "resnet8-thin-kd-seed0, resnet8-kd-seed1")
    assert [p.name for p in chosen] == [
        "teacher-resnet20",
        "resnet8-kd-seed1",
        "resnet8-thin-kd-seed0",
    ]
    assert [p.name for p in select_runs(planned, ["teacher-resnet20"])] == ["teacher-resnet20"]
    with pytest.raises(EdgesmithError, match="no run named nope: the recipe has teacher-resnet20"):
        select_runs(planned, "nope")


def test_a_finished_run_of_another_seed_is_refused_not_reused(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from edgesmith.train import keras3_runs

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        json.dumps(
            {
                "defaults": {"backend": "jax", "epochs": 15},
                "runs": [{"name": "teacher", "model": "resnet20"}, {"name": "s", "seed": 1}],
            }
        )
    )
    planned = keras3_runs.load_run_recipe(recipe)
    finished = {  # what each folder's manifest says was trained there
        "teacher": {"model": "resnet20", "epochs": 15, "seed": 0, "data": "npz:/elsewhere"},
        "s": {"model": "resnet8", "epochs": 15, "seed": 0},
    }
    for name in finished:
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text("{}")
    monkeypatch.setattr(
        keras3_runs,
        "read_artifact",
        lambda path: SimpleNamespace(
            path=path, manifest=SimpleNamespace(config=finished[Path(path).name])
        ),
    )
    trained = []
    with pytest.raises(EdgesmithError, match="holds a finished run with seed 0, but the recipe"):
        keras3_runs.run_recipe(planned, tmp_path, lambda *a, **k: trained.append(a))
    assert trained == []  # the teacher (other data path, same identity) was read back
    finished["s"]["seed"] = 1
    done = keras3_runs.run_recipe(planned, tmp_path, lambda *a, **k: trained.append(a))
    assert sorted(done) == ["s", "teacher"] and trained == []


@pytest.mark.slow
def test_keras3_with_another_backend_already_loaded_is_refused(run_python):
    code = (
        "import os; os.environ['KERAS_BACKEND'] = 'numpy'; import keras\n"
        "from edgesmith.core.errors import EdgesmithError\n"
        "from edgesmith.train.keras3_env import import_keras\n"
        "try:\n    import_keras('jax')\nexcept EdgesmithError as e:\n    print('refused:', e)\n"
    )
    result = run_python(code)
    assert "refused: Keras 3 is already imported with backend 'numpy'" in result.stdout, (
        result.stdout + result.stderr
    )


def test_the_keras3_trainer_writes_the_model_file_train_artifacts_use():
    pytest.importorskip("tensorflow")
    from edgesmith.tfkeras.model_io import MODEL_FILE
    from edgesmith.train.keras3_trainer import MODEL_FILE as KERAS3_MODEL_FILE

    assert KERAS3_MODEL_FILE == MODEL_FILE


@pytest.mark.slow
def test_keras3_path_imports_no_tensorflow(run_python):
    pytest.importorskip("jax")
    code = (
        "import sys\n"
        "from edgesmith.train.keras3_env import import_keras\n"
        "keras = import_keras('jax', 'cpu')\n"
        "keras.utils.set_random_seed(0)\n"
        "from edgesmith.train import keras3_trainer, keras3_wrapper, keras3_data, zoo\n"
        "from edgesmith.train.keras3_callbacks import EpochHistory\n"
        "zoo.build_model('resnet8', (8, 8, 1), 10, keras=keras)\n"
        "print('tensorflow loaded:', 'tensorflow' in sys.modules)\n"
    )
    result = run_python(code)
    assert "tensorflow loaded: False" in result.stdout, result.stdout + result.stderr


def test_keras3_extras_need_no_tensorflow():
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for name, backend in (("train-jax", "jax"), ("train-torch", "torch")):
        names = [r.split(">")[0].split("=")[0].split("[")[0] for r in extras[name]]
        assert names == ["keras", backend]
        assert not any(n.startswith(("tensorflow", "tf-keras")) for n in names)
