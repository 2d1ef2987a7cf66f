import numpy as np
import pytest

from edgesmith.compress.config import DistillConfig, PruneConfig
from edgesmith.core.errors import EdgesmithError


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize(("alpha", "temperature"), [(0.5, 4.0), (0.1, 2.0), (1.0, 3.0), (0.0, 1.0)])
def test_kd_loss_matches_the_formula(alpha, temperature):
    from edgesmith.compress.distillation import distillation_loss

    rng = np.random.default_rng(1)
    student = rng.normal(size=(6, 5)).astype(np.float32) * 3
    teacher = rng.normal(size=(6, 5)).astype(np.float32) * 3
    labels = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 6)]
    p_s = _softmax(student)
    hard = -(labels * np.log(p_s)).sum(-1)
    pt, ps = _softmax(teacher / temperature), _softmax(student / temperature)
    kl = (pt * (np.log(pt) - np.log(ps))).sum(-1)
    expected = np.mean(alpha * hard + (1 - alpha) * temperature**2 * kl)
    got = float(distillation_loss(labels, student, teacher, alpha=alpha, temperature=temperature))
    assert got == pytest.approx(expected, rel=1e-5)


def test_kd_loss_soft_term_vanishes_when_student_equals_teacher():
    from edgesmith.compress.distillation import distillation_loss

    logits = np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32)
    labels = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    assert float(
        distillation_loss(labels, logits, logits, alpha=0.0, temperature=4.0)
    ) == pytest.approx(0.0, abs=1e-6)


def test_logits_of_steps_over_the_softmax():
    from edgesmith.compress.distillation import logits_of
    from edgesmith.train.zoo import build_model

    model = build_model("resnet8", (8, 8, 1), 4)
    x = np.random.default_rng(3).normal(size=(2, 8, 8, 1)).astype(np.float32)
    logits = logits_of(model, "probabilities")(x).numpy()
    np.testing.assert_allclose(_softmax(logits), model(x).numpy(), atol=1e-5)
    assert logits_of(model, "logits") is model


def test_teacher_must_match_the_student():
    from types import SimpleNamespace

    from edgesmith.compress.source import check_teacher_fits
    from edgesmith.core.manifest import InputRecord
    from edgesmith.core.normalization import Normalization

    def manifest(shape, labels, norm=None):  # what the check reads of a Manifest
        record = InputRecord(shape=shape, normalization=norm or Normalization())
        return SimpleNamespace(input=record, labels=labels)

    student = manifest((8, 8, 1), ("a", "b"))
    other_shape = manifest((32, 32, 3), ("a", "b"))
    other_classes = manifest((8, 8, 1), ("a", "c"))
    other_norm = manifest((8, 8, 1), ("a", "b"), Normalization("raw", 1.0))
    with pytest.raises(EdgesmithError, match=r"takes inputs shaped \(32, 32, 3\)"):
        check_teacher_fits(other_shape, student, "t")
    with pytest.raises(EdgesmithError, match="expected the same classes"):
        check_teacher_fits(other_classes, student, "t")
    with pytest.raises(EdgesmithError, match="expects normalization raw but the student unit"):
        check_teacher_fits(other_norm, student, "t")
    check_teacher_fits(student, student, "t")


def test_distill_zoo_student(digits_artifact, tmp_path, quiet):
    from edgesmith.compress.distillation import distill
    from edgesmith.core.artifacts import read_artifact

    config = DistillConfig(student="resnet8", epochs=2, alpha=0.3)
    artifact = distill(digits_artifact, config, tmp_path / "kd", report=quiet)
    manifest = artifact.manifest
    teacher = read_artifact(digits_artifact)
    assert manifest.technique == "distill"
    assert manifest.distillation.teacher == teacher.id == manifest.parent
    assert manifest.metrics.teacher_accuracy == teacher.metrics.accuracy
    assert manifest.config["learning_rate"] == pytest.approx(0.2)
    assert manifest.metrics.accuracy > 0.3  # far above chance (0.1) after 2 epochs
    assert manifest.output.kind == "probabilities"


def test_pruning_can_be_distilled(digits_artifact, tmp_path, quiet):
    from edgesmith.compress.pruning import prune

    config = PruneConfig(sparsity=0.5, epochs=2, teacher=str(digits_artifact), alpha=0.5)
    artifact = prune(digits_artifact, config, tmp_path / "pkd", report=quiet)
    assert artifact.metrics.sparsity == pytest.approx(0.5, abs=0.005)
    assert artifact.manifest.config["teacher"] == str(digits_artifact)


def test_student_artifact_with_other_classes_is_refused(digits_artifact, tmp_path, quiet):
    from edgesmith.compress.distillation import distill
    from edgesmith.train import TrainConfig, train

    other = tmp_path / "five"
    train(TrainConfig(data="synthetic", model="resnet8", epochs=1), other, report=quiet)
    config = DistillConfig(student=str(other), epochs=1)
    with pytest.raises(EdgesmithError, match="--teacher"):
        distill(digits_artifact, config, tmp_path / "x", report=quiet)
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()
