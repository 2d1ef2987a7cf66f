"""Knowledge distillation: a student learns from a teacher's softened outputs as well as labels.

tfmot has no distillation. The loss is Hinton's:
``alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(softmax(teacher/T) || softmax(student/T))``
(the ``T^2`` keeps the soft term's gradients on the hard term's scale as ``T`` grows). The
:class:`Distiller` wraps any student, so pruning, clustering or QAT of the student can be
distilled too (every technique's config takes ``teacher``); :func:`distill` trains a zoo model
from scratch, or fine-tunes a student artifact, under a teacher artifact.
"""

from __future__ import annotations

from pathlib import Path

from edgesmith.compress import finetune, measure
from edgesmith.compress.config import DistillConfig
from edgesmith.compress.source import read_keras_source
from edgesmith.core.artifacts import Artifact, check_output_dir
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import Distillation
from edgesmith.core.progress import Reporter, stderr_reporter
from edgesmith.tfkeras.backend import keras, tf
from edgesmith.tfkeras.model_safety import trusting_model_code
from edgesmith.train import ZOO, build_model

FINETUNE_LEARNING_RATE = 0.02


def distillation_loss(
    labels: tf.Tensor,
    student_logits: tf.Tensor,
    teacher_logits: tf.Tensor,
    *,
    alpha: float,
    temperature: float,
    label_smoothing: float = 0.0,
) -> tf.Tensor:
    """The mean distillation loss over a batch.

    Args:
        labels: one-hot labels, (N, K).
        student_logits: (N, K).
        teacher_logits: (N, K).
        alpha: weight of the hard-label cross-entropy.
        temperature: softening temperature ``T``.
        label_smoothing: of the hard-label term.

    Returns:
        ``alpha * CE + (1 - alpha) * T^2 * KL(teacher_T || student_T)``, a scalar.
    """
    hard = keras.losses.categorical_crossentropy(
        labels, student_logits, from_logits=True, label_smoothing=label_smoothing
    )
    t = float(temperature)
    teacher_log = tf.nn.log_softmax(teacher_logits / t, axis=-1)
    student_log = tf.nn.log_softmax(student_logits / t, axis=-1)
    kl = tf.reduce_sum(tf.exp(teacher_log) * (teacher_log - student_log), axis=-1)
    return tf.reduce_mean(alpha * hard + (1.0 - alpha) * t * t * kl)


def logits_of(model: keras.Model, kind: str) -> keras.Model:
    """A model giving the logits that ``model`` turns into probabilities, sharing its weights.

    A final softmax layer (plain or QAT-wrapped) is stepped over; a softmax folded into a dense
    layer is undone with a log, which equals the logits up to a per-image constant (all that
    softmax sees).
    """
    if kind == "logits":
        return model
    last = model.outputs[0]._keras_history.layer
    inner = measure.unwrap(last)
    is_softmax = isinstance(inner, keras.layers.Softmax) or (
        isinstance(inner, keras.layers.Activation)
        and getattr(inner.activation, "__name__", "") == "softmax"
    )
    if is_softmax and len(last._inbound_nodes) == 1:
        return keras.Model(model.inputs, last.input, name=f"{model.name}_logits")
    log = keras.layers.Lambda(lambda p: tf.math.log(tf.clip_by_value(p, 1e-7, 1.0)))
    return keras.Model(model.inputs, log(model.outputs[0]), name=f"{model.name}_logits")


class Distiller(keras.Model):
    """Trains ``student`` on :func:`distillation_loss` against a frozen ``teacher``.

    Only the student's variables are updated; metrics are the student's. Its layers (pruning,
    clustering or QAT wrappers included) run in training mode, so their own updates happen.
    """

    def __init__(
        self,
        student: keras.Model,
        teacher: keras.Model,
        *,
        student_kind: str,
        teacher_kind: str,
        alpha: float,
        temperature: float,
        label_smoothing: float = 0.0,
    ):
        super().__init__(name="distiller")
        teacher.trainable = False
        self.student = student
        self.teacher = teacher
        self.student_logits = logits_of(student, student_kind)
        self.teacher_logits = logits_of(teacher, teacher_kind)
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.label_smoothing = float(label_smoothing)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        """The loss, then the compiled metrics (reset by Keras every epoch)."""
        return [self.loss_tracker, *self.compiled_metrics.metrics]

    def call(self, inputs, training=None):
        """The student's outputs."""
        return self.student(inputs, training=training)

    def train_step(self, data):
        """One step on the distillation loss (plus the student's own regularisation losses)."""
        x, y = data
        teacher = self.teacher_logits(x, training=False)
        with tf.GradientTape() as tape:
            student = self.student_logits(x, training=True)
            loss = distillation_loss(
                y,
                student,
                teacher,
                alpha=self.alpha,
                temperature=self.temperature,
                label_smoothing=self.label_smoothing,
            )
            if self.student.losses:
                loss += tf.add_n(self.student.losses)
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        self.loss_tracker.update_state(loss)
        self.compiled_metrics.update_state(y, tf.nn.softmax(student))
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        """The student's accuracy (and the distillation loss) on held-out data."""
        x, y = data
        student = self.student_logits(x, training=False)
        teacher = self.teacher_logits(x, training=False)
        self.loss_tracker.update_state(
            distillation_loss(y, student, teacher, alpha=self.alpha, temperature=self.temperature)
        )
        self.compiled_metrics.update_state(y, tf.nn.softmax(student))
        return {m.name: m.result() for m in self.metrics}


def distill(
    source: str | Path | Artifact,
    config: DistillConfig,
    out: str | Path,
    *,
    report: Reporter | None = None,
    trust_model: bool | None = None,
) -> Artifact:
    """Train ``config.student`` under the teacher ``source`` and write the student's artifact.

    Args:
        source: the teacher, a Keras artifact (``config.teacher``, if set, must name the same).
        config: the student (zoo name, trained from scratch on the teacher's data and
            normalisation; or an artifact, fine-tuned), ``alpha``, ``temperature`` and training
            settings.
        out: the new artifact directory.
        report: receives progress lines.
        trust_model: accept teacher/student model files that run code when loaded
            (``--trust-model``); ``None`` follows
            :func:`edgesmith.tfkeras.model_safety.trusting_model_code` (off by default).

    Returns:
        The student's artifact; its manifest names the teacher and both accuracies.

    Raises:
        EdgesmithError: for a student whose classes or input shape differ from the teacher's,
            an unknown zoo name, or a non-Keras artifact.
    """
    if trust_model is not None:
        with trusting_model_code(trust_model):
            return distill(source, config, out, report=report)
    report = report or stderr_reporter()
    check_output_dir(out)
    teacher_artifact = read_keras_source(source, role="--teacher", allow_qat=True)
    if config.teacher and Path(config.teacher).resolve() != teacher_artifact.path.resolve():
        raise EdgesmithError(
            f"distill: teacher {config.teacher} differs from the source {source}; give one teacher"
        )
    teacher = finetune.load_source(
        teacher_artifact, data=config.data, role="--teacher", allow_qat=True
    )
    from_zoo = config.student in ZOO
    if from_zoo:
        student = finetune.Source(
            artifact=teacher_artifact,
            model=_zoo_student(config, teacher),
            dataset=teacher.dataset,
            norm=teacher.norm,
            kind="probabilities",
        )
        learning_rate = config.peak_learning_rate
        warmup = config.warmup_epochs
    else:
        student_artifact = read_keras_source(config.student, role="--student")
        finetune.check_teacher_fits(
            teacher_artifact.manifest, student_artifact.manifest, teacher_artifact.path
        )
        student = finetune.load_source(
            student_artifact, data=teacher.dataset.spec, dataset=teacher.dataset
        )
        learning_rate = (
            config.learning_rate if config.learning_rate is not None else FINETUNE_LEARNING_RATE
        )
        warmup = 0.0
    report(
        f"distill {config.student} from teacher {teacher_artifact.path} "
        f"(accuracy {teacher.accuracy}): alpha {config.alpha}, temperature {config.temperature}"
    )
    history = finetune.fit(
        student.model,
        student,
        config,
        label="distill",
        report=report,
        teacher=teacher,
        warmup_epochs=warmup,
        learning_rate=learning_rate,
    )
    metrics = finetune.measure(student.model, student)
    if from_zoo:  # a new model: "drop" from the teacher is not what it means
        metrics.pop("source_accuracy", None)
        metrics.pop("accuracy_drop", None)
    metrics["teacher_accuracy"] = teacher.accuracy
    resolved = finetune.resolved_config(config, student, learning_rate=learning_rate)
    resolved["teacher"] = str(teacher_artifact.path)
    return finetune.publish(
        out,
        student.model,
        student,
        technique="distill",
        config=resolved,
        metrics=metrics,
        distillation=Distillation(
            teacher=teacher_artifact.id,
            teacher_path=str(teacher_artifact.path),
            student=config.student,
            alpha=config.alpha,
            temperature=config.temperature,
        ),
        history=history,
        report=report,
    )


def _zoo_student(config: DistillConfig, teacher: finetune.Source) -> keras.Model:
    keras.utils.set_random_seed(config.seed)
    dataset = teacher.dataset
    return build_model(config.student, dataset.input_shape, dataset.num_classes)
