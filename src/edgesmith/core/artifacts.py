"""The artifact directory: the only door between stages.

One model in one format per directory: the model file(s) plus ``manifest.json``. The manifest is
written last and atomically, and the whole directory appears under its final name by one rename,
so a half-finished stage never looks complete. Readers check the schema version and every file's
sha256 before trusting the contents.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.manifest import (
    FORMATS,
    MANIFEST_NAME,
    REQUIRED_KEYS,
    SCHEMA_VERSION,
    STAGES,
    DatasetRecord,
    InputRecord,
    Manifest,
    Metrics,
    check_member_name,
)
from edgesmith.core.outputs import (
    MARKER_NAME,
    STAGE_SUFFIX,
    OutputLock,
    is_stage_of,
    mark_staging_dir,
    seal_owned_dir,
    sha256_file,
)
from edgesmith.core.wrappers import forwarded

if TYPE_CHECKING:
    from edgesmith.core.normalization import Normalization

__all__ = [
    "FORMATS",
    "MANIFEST_NAME",
    "REQUIRED_KEYS",
    "SCHEMA_VERSION",
    "STAGES",
    "Artifact",
    "ArtifactWriter",
    "Manifest",
    "artifact_id",
    "check_inside",
    "check_member_name",
    "check_output_dir",
    "read_artifact",
    "sha256_file",
    "validate_manifest",
    "verify_files",
]

# Sub-directories that hold run by-products (TensorBoard logs, resume checkpoints), not the model.
UNHASHED_DIRS = ("logs", "backup")
# Far above any real manifest (training history included); a bound on what a hostile one costs.
MAX_MANIFEST_BYTES = 32 << 20


def artifact_id(model_hashes: dict[str, str]) -> str:
    """Content address of an artifact: sha256 over its model files' names and hashes."""
    digest = hashlib.sha256()
    for name in sorted(model_hashes):
        digest.update(f"{name}\0{model_hashes[name]}\n".encode())
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A finished artifact directory and its manifest (as read from disk)."""

    path: Path
    manifest: Manifest

    id = forwarded("manifest.id", "The content address (sha256 over the model files).")
    format = forwarded("manifest.format", "``keras``, ``tflite`` or ``onnx``.")
    stage = forwarded("manifest.stage", "``train``, ``compress`` or ``export``.")
    technique = forwarded(
        "manifest.technique",
        "What produced the artifact (``resnet8``, ``import``, ``prune``, ``tflite-int8``...).",
    )
    parent = forwarded(
        "manifest.parent",
        "The id of the artifact this one came from (``None`` for a trained or imported one).",
    )
    input_spec = forwarded(
        "manifest.input",
        "The input record: ``shape``, ``dtype``, ``normalization``, ``quantization``.",
    )
    output_spec = forwarded(
        "manifest.output", "The output record (``kind``, ``shape``), or None for older manifests."
    )
    data_spec = forwarded(
        "manifest.dataset.spec",
        "The data spec the model was trained or evaluated on (``dataset.spec``).",
    )
    metrics = forwarded(
        "manifest.metrics",
        "The recorded metrics (``accuracy`` is a fraction of ``num_eval`` images).",
    )

    @property
    def model_path(self) -> Path:
        """The main model file (or SavedModel directory) inside the artifact."""
        return self.path / self.manifest.model_file

    @property
    def labels(self) -> list[str]:
        """Class names, in output order."""
        return list(self.manifest.labels)

    @property
    def normalization(self) -> Normalization:
        """The input normalisation the model expects from raw pixels.

        Raises:
            EdgesmithError: when the manifest's input record has none.
        """
        norm = self.manifest.input.normalization
        if norm is None:
            raise EdgesmithError(
                f"{self.path}: the manifest's input record has no normalization; re-create the "
                "artifact with this edgesmith"
            )
        return norm

    @property
    def kind(self) -> str:
        """What the model outputs: ``probabilities`` (the default) or ``logits``."""
        output = self.manifest.output
        return output.kind if output is not None else "probabilities"

    @property
    def is_qat(self) -> bool:
        """Whether the model holds quantisation-aware (tfmot fake-quant) layers.

        The one place this is decided: a ``qat`` technique, a ``qat`` flag in the manifest (what
        compress writes after QAT, also for pruning-preserving QAT) or in its config.
        """
        return (
            self.manifest.technique == "qat"
            or bool(self.manifest.qat)
            or bool(self.manifest.config.get("qat"))
        )

    @property
    def files(self) -> dict[str, str]:
        """The hashed files: relative name -> sha256 (``model_file`` is one of them)."""
        return dict(self.manifest.files)

    @property
    def trusted_model_code(self) -> bool:
        """Whether the user accepted model code when this artifact was made.

        Informative only: a manifest is never taken as permission to run code.
        """
        return self.manifest.trusted_model_code is True


def check_output_dir(out: str | Path, *, staged: bool = True) -> Path:
    """Refuse an ``--out`` that already holds something, before any work starts.

    Args:
        out: the directory about to be written.
        staged: the writer stages ``out`` in ``<out>.partial`` (:class:`ArtifactWriter`): a
            folder of that name that edgesmith did not make as staging of ``out`` is refused
            now, not after minutes of work when the writer would refuse it.

    Raises:
        EdgesmithError: when ``out`` is a file, a non-empty directory, a symbolic link, or the
            current folder (or one holding it: ``--out .``), which cannot be replaced by a rename;
            or, for a staged ``out``, when ``<out>.partial`` is not edgesmith's staging of it.
    """
    out = Path(out)
    absolute = Path(os.path.abspath(out))
    cwd = Path(os.path.abspath(os.getcwd()))
    if absolute == cwd or absolute in cwd.parents:
        raise EdgesmithError(
            f"--out {out} is the current folder or holds it; expected a new directory "
            "such as runs/r8"
        )
    if out.is_symlink():
        raise EdgesmithError(f"--out {out} is a symbolic link; expected a new or empty directory")
    if out.is_file():
        raise EdgesmithError(f"--out {out} is a file; expected a new or empty directory")
    if out.is_dir() and any(out.iterdir()):
        raise EdgesmithError(f"--out {out} is not empty; choose a new directory or remove it first")
    stage = out.with_name(out.name + STAGE_SUFFIX)
    if staged and (stage.is_symlink() or (stage.exists() and not is_stage_of(stage, out))):
        raise EdgesmithError(foreign_stage_message(stage, out))
    return out


def foreign_stage_message(stage: Path, out: Path) -> str:
    """Why a ``<out>.partial`` that edgesmith did not make as staging of ``out`` stays."""
    return (
        f"{stage} exists and edgesmith did not create it as staging of {out.name} (an "
        "unfinished run's leftover); refusing to replace it: move it away or choose another --out"
    )


class ArtifactWriter:
    """Stage an artifact in ``<out>.partial`` and publish it by rename once complete.

    Use as a context manager: write model files into :attr:`dir`, then call :meth:`commit`. If the
    block raises, the staging directory is removed, unless it holds the ``keep_if`` entry
    (training's ``backup`` checkpoint, which a ``--resume`` continues from); ``out`` is never
    created.

    While the block runs, ``<out>.lock`` is held (:class:`edgesmith.core.outputs.OutputLock`): a
    second writer to the same ``out`` exits 2 at once instead of removing this one's staging
    folder. A leftover ``<out>.partial`` is removed only when it carries edgesmith's staging
    mark for this ``out`` (an interrupted run of ours); anyone else's, and a published artifact
    that is merely named ``<out>.partial``, is refused, never deleted. Just before publishing,
    the folder's ledger (``.edgesmith-owned``, not hashed) is sealed with the exact entries
    written, so that a later edgesmith run (a build reusing its work folder) may replace what
    edgesmith wrote and nothing a user added.
    """

    def __init__(self, out: str | Path, *, keep_if: str | None = None, resume: bool = False):
        self.out = check_output_dir(out)
        self.dir = self.out.with_name(self.out.name + ".partial")
        self.keep_if = keep_if
        self.resume = resume
        self.manifest: Manifest | None = None
        self._lock = OutputLock(self.out)

    def __enter__(self) -> ArtifactWriter:
        self._lock.acquire()
        try:
            self._prepare()
        except BaseException:
            self._lock.release()
            raise
        return self

    def _prepare(self) -> None:
        if self.dir.exists() or self.dir.is_symlink():
            if not self.resume and self.keep_if:
                raise EdgesmithError(
                    f"an interrupted run is in {self.dir}; pass --resume to continue it, "
                    "or remove that directory to start over"
                )
            if self.dir.is_symlink() or not is_stage_of(self.dir, self.out):  # resume: ours only
                raise EdgesmithError(foreign_stage_message(self.dir, self.out))
            if not self.resume:
                shutil.rmtree(self.dir)  # an interrupted run of ours (ownership marker inside)
        if self.resume and not self.dir.is_dir():
            raise EdgesmithError(f"--resume: nothing to resume, {self.dir} does not exist")
        self.dir.mkdir(parents=True, exist_ok=True)
        mark_staging_dir(self.dir, self.out, purpose="artifact")

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            resumable = self.keep_if is not None and (self.dir / self.keep_if).exists()
            if exc_type is not None and not resumable:  # nothing a --resume could continue
                shutil.rmtree(self.dir, ignore_errors=True)
        finally:
            self._lock.release()

    def commit(
        self,
        *,
        model_files: Iterable[str],
        stage: str,
        technique: str,
        fmt: str,
        config: dict[str, Any],
        input_spec: InputRecord,
        labels: list[str],
        dataset: DatasetRecord,
        metrics: Metrics,
        parent: str | None = None,
        tool_versions: dict[str, str] | None = None,
        **sections: Any,
    ) -> Artifact:
        """Hash the files, write ``manifest.json`` atomically, and publish the directory.

        The manifest is built as a :class:`~edgesmith.core.manifest.Manifest` and read back
        through :meth:`~edgesmith.core.manifest.Manifest.from_dict` before it is written, so
        nothing is published that a reader would refuse.

        Args:
            model_files: relative names of the files that make up the model (the first is the
                main one); they define the artifact's id.
            stage: ``train``, ``compress`` or ``export``.
            technique: what produced it, e.g. ``resnet8``, ``prune``, ``tflite-int8``.
            fmt: ``keras``, ``tflite`` or ``onnx``.
            config: the fully resolved config, defaults included.
            input_spec: shape, dtype, normalization, quantization.
            labels: class names in output order.
            dataset: spec, fingerprint, num_train, num_eval.
            metrics: at least ``accuracy`` and ``num_eval``.
            parent: id of the artifact this one came from.
            tool_versions: package versions; collected from the environment when omitted.
            **sections: the manifest's optional sections by name (``output``, ``target``,
                ``history``, ``pruning`` ...; None leaves one out), passed on as they are:
                :class:`~edgesmith.core.manifest.Manifest` declares and documents each.

        Returns:
            The published artifact.

        Raises:
            EdgesmithError: for an unknown stage or format, a model file that is missing, or a
                section value the manifest's reader would refuse.
        """
        from edgesmith.core.versions import tool_versions as collect_versions

        model_files = list(model_files)
        if stage not in STAGES:
            raise EdgesmithError(f"stage must be one of {STAGES}. Received: {stage!r}")
        if fmt not in FORMATS:
            raise EdgesmithError(f"format must be one of {FORMATS}. Received: {fmt!r}")
        if not model_files:
            raise EdgesmithError("an artifact needs at least one model file")
        files = _hash_tree(self.dir)
        model_hashes = {}
        for name in model_files:
            matches = {k: v for k, v in files.items() if k == name or k.startswith(name + "/")}
            if not matches:
                raise EdgesmithError(f"model file {name!r} was not written to {self.dir}")
            model_hashes.update(matches)
        built = Manifest(
            id=artifact_id(model_hashes),
            parent=parent,
            stage=stage,
            technique=technique,
            format=fmt,
            model_file=model_files[0],
            files=files,
            config=config,
            input=input_spec,
            labels=tuple(labels),
            dataset=dataset,
            metrics=metrics,
            tool_versions=tool_versions if tool_versions is not None else collect_versions(),
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **sections,
        )
        return self.publish(built.to_dict(), hashed=True)

    def publish(self, document: dict[str, Any], *, hashed: bool = False) -> Artifact:
        """Write ``document`` as the manifest of the files staged in :attr:`dir`; publish.

        :meth:`commit` builds the document; a copied artifact (a shipped pretrained one)
        brings its own, whose file hashes the staged copies must match.

        ``hashed``: the document's hashes were just taken from the staged files (commit's),
        so they are not taken again.

        Raises:
            EdgesmithError: for a document a reader would refuse, a staged file whose hash
                differs from the document's, or a destination that cannot take the folder.
        """
        manifest = Manifest.from_dict(document, where=f"{self.out}: the manifest to write")
        for name, expected in {} if hashed else manifest.files.items():
            staged = self.dir / name
            if not staged.is_file() or sha256_file(staged) != expected:
                raise EdgesmithError(
                    f"{self.out}: the staged {name} is not the file its manifest hashes"
                )
        tmp = self.dir / (MANIFEST_NAME + ".tmp")
        tmp.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        os.replace(tmp, self.dir / MANIFEST_NAME)
        seal_owned_dir(self.dir, purpose="artifact")  # the exact entries this run wrote
        try:
            if self.out.is_dir():  # an empty directory the user created beforehand
                self.out.rmdir()
            self.out.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.dir, self.out)
        except OSError as exc:
            raise EdgesmithError(
                f"--out {self.out}: cannot publish the artifact there ({exc.strerror}); "
                f"it stays in {self.dir}"
            ) from None
        self.manifest = manifest
        return Artifact(self.out, manifest)


def _hash_tree(root: Path) -> dict[str, str]:
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or rel.startswith(MANIFEST_NAME) or rel.startswith(MARKER_NAME):
            continue
        if rel.split("/", 1)[0] in UNHASHED_DIRS:
            continue
        files[rel] = sha256_file(path)
    return files


def read_artifact(path: str | Path, *, verify: bool = True) -> Artifact:
    """Open an artifact directory, check its manifest and (by default) every file's sha256.

    Args:
        path: the artifact directory, or a model file inside one.
        verify: re-hash the files and refuse any that changed.

    Raises:
        EdgesmithError: for a missing directory, a missing, corrupt or foreign manifest, a schema
            version this edgesmith cannot read, a file name that points outside the folder
            (``../x``, an absolute path, a link leading out, a ``model_file`` not among the
            hashed files), or a file that changed since it was written.
    """
    path = Path(path)
    if not path.exists():
        partial = path.with_name(path.name + ".partial")
        hint = f" ({partial} holds an unfinished run)" if partial.exists() else ""
        raise EdgesmithError(f"artifact directory not found: {path}{hint}")
    if path.is_file():
        if (path.parent / MANIFEST_NAME).is_file():
            path = path.parent
        else:
            raise EdgesmithError(
                f"{path} is a file; expected an artifact directory holding {MANIFEST_NAME}"
            )
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        raise EdgesmithError(
            f"{path} is not an edgesmith artifact: it has no {MANIFEST_NAME} "
            "(artifacts are written by edgesmith train, import, compress and export)"
        )
    if manifest_path.is_symlink():  # its content would come from wherever the link leads
        raise EdgesmithError(
            f"{manifest_path} is a symbolic link (to {os.readlink(manifest_path)}); an "
            "artifact's manifest must be a regular file inside its folder"
        )
    size = manifest_path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise EdgesmithError(
            f"{manifest_path} is {size} bytes; a manifest is at most {MAX_MANIFEST_BYTES} "
            "(32 MiB): refusing to read it"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:
        raise EdgesmithError(f"{manifest_path} is corrupt: {exc}") from None
    artifact = Artifact(path, Manifest.from_dict(manifest, where=str(manifest_path)))
    check_inside(artifact)
    if verify:
        verify_files(artifact)
    return artifact


def validate_manifest(manifest: Any, *, where: str = "manifest") -> Manifest:
    """Check a parsed manifest (:meth:`Manifest.from_dict`) and return it typed.

    Raises:
        EdgesmithError: naming what is wrong and where.
    """
    return Manifest.from_dict(manifest, where=where)


def check_inside(artifact: Artifact) -> None:
    """Refuse listed files that are links (or under links) leading out of the artifact folder.

    Raises:
        EdgesmithError: naming the first such file.
    """
    root = artifact.path.resolve()
    for name in artifact.manifest.files:
        target = (artifact.path / name).resolve()
        if target != root and root not in target.parents:
            raise EdgesmithError(
                f"artifact {artifact.path}: its file {name} is a link leading outside the "
                f"artifact folder (to {target}); refusing it"
            )


def verify_files(artifact: Artifact) -> None:
    """Re-hash every listed file and refuse missing or changed ones.

    Raises:
        EdgesmithError: naming the first missing or changed file.
    """
    for name, expected in artifact.manifest.files.items():
        file = artifact.path / name
        if not file.is_file():
            raise EdgesmithError(f"artifact {artifact.path} is missing its file {name}")
        if sha256_file(file) != expected:
            raise EdgesmithError(
                f"{file} changed since the artifact was written (sha256 mismatch); "
                "re-create the artifact rather than editing it"
            )
