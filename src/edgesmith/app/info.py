"""A person-readable view of an artifact's manifest (``edgesmith info``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgesmith.core.artifacts import Artifact


def _size(num_bytes: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if num_bytes < 1024 or unit == "GiB":
            return f"{num_bytes:,} B" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return ""


def _num(value: Any, spec: str, scale: float = 1.0) -> str:
    """``value`` formatted as a number, or as written when a manifest holds something else.

    Manifests come from anywhere; a wrong type in an informative field must print, not crash.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value / scale, spec)
    return repr(value)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def describe_artifact(artifact: Artifact) -> str:
    """Render the manifest as aligned ``key: value`` lines, most useful first.

    The manifest has been validated (:meth:`edgesmith.core.manifest.Manifest.from_dict`: every
    value typed, file names inside the folder); values a stage did not record print as ``None``.
    """
    m = artifact.manifest
    files = [(name, _file_size(artifact.path / name)) for name in m.files]
    model_bytes = sum(
        size for name, size in files if name == m.model_file or name.startswith(m.model_file + "/")
    )
    spec = m.input
    norm = spec.normalization
    metrics = m.metrics
    dataset = m.dataset
    fingerprint = dataset.fingerprint
    norm_text = (
        f"{norm.name} (scale {_num(norm.scale, '.6g')}, mean {list(norm.mean)}, "
        f"std {list(norm.std)})"
        if norm is not None
        else "? (scale 1, mean None, std None)"
    )
    quantization = spec.quantization.to_dict() if spec.quantization is not None else None
    rows = [
        ("artifact", str(artifact.path)),
        ("id", m.id[:16]),
        ("stage", f"{m.stage} ({m.technique}), format {m.format}"),
        ("parent", (m.parent or "none")[:16]),
        ("model file", f"{m.model_file} ({_size(model_bytes)})"),
        ("input", f"{list(spec.shape)} {spec.dtype}, normalization {norm_text}"),
        ("quantization", str(quantization)),
        ("labels", ", ".join(m.labels[:12]) + (" ..." if len(m.labels) > 12 else "")),
        (
            "dataset",
            f"{dataset.spec} ({dataset.num_train} train, "
            f"{dataset.num_eval} eval; "
            f"{fingerprint[:12] if fingerprint is not None else ''})",
        ),
        (
            "accuracy",
            f"{_num(metrics.accuracy if metrics.accuracy is not None else float('nan'), '.4f')}"
            f" on {metrics.num_eval} eval images",
        ),
    ]
    if metrics.params is not None:
        rows.append(("params", _num(metrics.params, ",")))
    if metrics.macs is not None:
        rows.append(("MACs", f"{_num(metrics.macs, '.2f', 1e6)} M"))
    if metrics.train_seconds is not None:
        rows.append(
            (
                "training",
                f"{metrics.epochs} epochs, {_num(metrics.train_seconds, '.1f')} s, "
                f"{_num(metrics.images_per_second or 0, '.0f')} img/s",
            )
        )
    rows.append(("tools", ", ".join(f"{k} {v}" for k, v in m.tool_versions.items())))
    rows.append(("created", m.created))
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)
