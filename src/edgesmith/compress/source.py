"""Reading the artifact a technique starts from, checked without TensorFlow.

Every command checks its ``--from`` (and ``--teacher``) here first, so a wrong directory or a
TFLite artifact fails in milliseconds with a one-line message instead of after TensorFlow loads.
"""

from __future__ import annotations

from pathlib import Path

from edgesmith.core.artifacts import Artifact, read_artifact
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import Manifest
from edgesmith.tfkeras.model_safety import check_model_file


def read_keras_source(
    path: str | Path,
    *,
    role: str = "--from",
    allow_qat: bool = False,
    trust_model: bool | None = None,
) -> Artifact:
    """Open a Keras artifact to compress, and check its model file runs no code when loaded.

    The model file is inspected (:func:`~edgesmith.tfkeras.model_safety.check_model_file`)
    whatever the manifest says: an artifact folder may come from anyone, so its
    ``trusted_model_code`` record is never taken as permission.

    Args:
        path: the artifact directory.
        role: how the argument is called in messages (``--from``, ``--teacher``...).
        allow_qat: accept a QAT artifact (its fake-quantised layers cannot be pruned, clustered
            or quantised again, but they can teach or be evaluated).
        trust_model: accept a model file that runs code when loaded (``--trust-model``);
            ``None`` follows :func:`edgesmith.tfkeras.model_safety.trusting_model_code`.

    Returns:
        The verified artifact.

    Raises:
        EdgesmithError: for a missing or non-artifact directory, a non-Keras artifact, a QAT
            artifact where a float one is needed, or a model file that would run code.
    """
    artifact = read_artifact(path)
    if artifact.format != "keras":
        raise EdgesmithError(
            f"{role} {path} is a {artifact.format} artifact ({artifact.technique}); "
            "compression needs a Keras artifact (from edgesmith train, import or compress)"
        )
    if artifact.is_qat and not allow_qat:
        raise EdgesmithError(
            f"{role} {path} is a QAT artifact (fake-quantised layers); compress its float parent "
            f"{artifact.parent} instead, then run qat last"
        )
    check_model_file(artifact.model_path, trust_model=trust_model)
    return artifact


def source_sparsity(artifact: Artifact) -> float:
    """The overall sparsity a pruned ancestor recorded (0.0 for a dense artifact)."""
    return float(artifact.metrics.sparsity or 0.0)


def check_teacher_fits(teacher: Manifest, student: Manifest, where: str | Path) -> None:
    """Refuse a teacher whose input shape, class list or normalisation differ from the student's.

    Args:
        teacher: the teacher's manifest.
        student: the student's manifest (anything with its ``input`` and ``labels``).
        where: the teacher's path, for the message.

    Raises:
        EdgesmithError: naming the mismatch.
    """
    t_shape, s_shape = teacher.input.shape, student.input.shape
    if tuple(t_shape) != tuple(s_shape):
        raise EdgesmithError(
            f"--teacher {where} takes inputs shaped {tuple(t_shape)} but the student takes "
            f"{tuple(s_shape)}; expected the same input shape"
        )
    t_labels, s_labels = list(teacher.labels), list(student.labels)
    if t_labels != s_labels:
        raise EdgesmithError(
            f"--teacher {where} has {len(t_labels)} classes {t_labels[:5]}... "
            f"but the student has {len(s_labels)} {s_labels[:5]}...; "
            "expected the same classes in the same order"
        )
    t_norm, s_norm = teacher.input.normalization, student.input.normalization
    if t_norm != s_norm:
        raise EdgesmithError(
            f"--teacher {where} expects normalization {t_norm.name if t_norm else None} "
            f"but the student {s_norm.name if s_norm else None}; expected the same"
        )


def check_inputs(source: str | Path, config: object, out: str | Path, *, role: str = "--from"):
    """Everything a technique's run can be refused for without TensorFlow, before it loads.

    The output folder, the source artifact (as ``role``: ``--teacher`` for distillation), the
    config's data spec, its teacher, and a distillation's artifact student against its teacher.

    Raises:
        EdgesmithError: for the first of them that is wrong.
    """
    from edgesmith.core.artifacts import check_output_dir
    from edgesmith.core.datasets import parse_spec

    check_output_dir(out)
    origin = read_keras_source(source, role=role, allow_qat=role == "--teacher")
    if getattr(config, "data", None):
        parse_spec(config.data)
    teacher = getattr(config, "teacher", None)
    if teacher:
        read_keras_source(teacher, role="--teacher", allow_qat=True)
    student = getattr(config, "student", None)
    if role == "--teacher" and student is not None:
        from edgesmith.train import MODEL_NAMES

        if student not in MODEL_NAMES:
            fitted = read_keras_source(student, role="--student")
            check_teacher_fits(origin.manifest, fitted.manifest, source)


def check_sensitivity_outputs(out: str | Path, *, overwrite: bool = False) -> None:
    """``--out`` must name a .json file, and it and its .md/.png siblings be ours to replace.

    Raises:
        EdgesmithError: for another suffix, or a file edgesmith did not write (without
            ``overwrite``).
    """
    from edgesmith.core.outputs import check_files_writable

    out = Path(out)
    if out.suffix.lower() != ".json":
        raise EdgesmithError(f"--out must be a .json file. Received: {out}")
    check_files_writable(
        [out, out.with_suffix(".md"), out.with_suffix(".png")], overwrite=overwrite
    )
