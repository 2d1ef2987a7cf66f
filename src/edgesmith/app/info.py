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

    The manifest has been validated (:func:`edgesmith.core.artifacts.validate_manifest`: top-level
    types, file names inside the folder); nested informative values of the wrong type are
    shown as written rather than raising.
    """
    m = artifact.manifest
    files = [(name, _file_size(artifact.path / name)) for name in m["files"]]
    model_bytes = sum(
        size
        for name, size in files
        if name == m["model_file"] or name.startswith(m["model_file"] + "/")
    )
    spec = m["input"]
    norm = spec.get("normalization") if isinstance(spec.get("normalization"), dict) else {}
    metrics = m["metrics"]
    dataset = m["dataset"]
    fingerprint = dataset.get("fingerprint")
    rows = [
        ("artifact", str(artifact.path)),
        ("id", m["id"][:16]),
        ("stage", f"{m['stage']} ({m['technique']}), format {m['format']}"),
        ("parent", (m["parent"] or "none")[:16]),
        ("model file", f"{m['model_file']} ({_size(model_bytes)})"),
        (
            "input",
            f"{spec.get('shape')} {spec.get('dtype')}, normalization "
            f"{norm.get('name', '?')} (scale {_num(norm.get('scale', 1), '.6g')}, "
            f"mean {norm.get('mean')}, std {norm.get('std')})",
        ),
        ("quantization", str(spec.get("quantization"))),
        ("labels", ", ".join(m["labels"][:12]) + (" ..." if len(m["labels"]) > 12 else "")),
        (
            "dataset",
            f"{dataset.get('spec')} ({dataset.get('num_train')} train, "
            f"{dataset.get('num_eval')} eval; "
            f"{fingerprint[:12] if isinstance(fingerprint, str) else ''})",
        ),
        (
            "accuracy",
            f"{_num(metrics.get('accuracy', float('nan')), '.4f')} on "
            f"{metrics.get('num_eval')} eval images",
        ),
    ]
    if "params" in metrics:
        rows.append(("params", _num(metrics["params"], ",")))
    if "macs" in metrics:
        rows.append(("MACs", f"{_num(metrics['macs'], '.2f', 1e6)} M"))
    if "train_seconds" in metrics:
        rows.append(
            (
                "training",
                f"{metrics.get('epochs')} epochs, {_num(metrics['train_seconds'], '.1f')} s, "
                f"{_num(metrics.get('images_per_second', 0), '.0f')} img/s",
            )
        )
    versions = m["tool_versions"]
    rows.append(("tools", ", ".join(f"{k} {v}" for k, v in versions.items())))
    rows.append(("created", m["created"]))
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)
