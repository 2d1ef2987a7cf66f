"""A person-readable view of an artifact's manifest (``edgesmith info``)."""

from __future__ import annotations

from edgesmith.artifacts import Artifact


def _size(num_bytes: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if num_bytes < 1024 or unit == "GiB":
            return f"{num_bytes:,} B" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return ""


def describe_artifact(artifact: Artifact) -> str:
    """Render the manifest as aligned ``key: value`` lines, most useful first."""
    m = artifact.manifest
    files = [(name, (artifact.path / name).stat().st_size) for name in m["files"]]
    model_bytes = sum(
        size
        for name, size in files
        if name == m["model_file"] or name.startswith(m["model_file"] + "/")
    )
    spec = m["input"]
    norm = spec.get("normalization") or {}
    metrics = m["metrics"]
    rows = [
        ("artifact", str(artifact.path)),
        ("id", m["id"][:16]),
        ("stage", f"{m['stage']} ({m['technique']}), format {m['format']}"),
        ("parent", (m["parent"] or "none")[:16]),
        ("model file", f"{m['model_file']} ({_size(model_bytes)})"),
        (
            "input",
            f"{spec.get('shape')} {spec.get('dtype')}, normalization "
            f"{norm.get('name', '?')} (scale {norm.get('scale', 1):.6g}, "
            f"mean {norm.get('mean')}, std {norm.get('std')})",
        ),
        ("quantization", str(spec.get("quantization"))),
        ("labels", ", ".join(m["labels"][:12]) + (" ..." if len(m["labels"]) > 12 else "")),
        (
            "dataset",
            f"{m['dataset'].get('spec')} ({m['dataset'].get('num_train')} train, "
            f"{m['dataset'].get('num_eval')} eval; {m['dataset'].get('fingerprint', '')[:12]})",
        ),
        (
            "accuracy",
            f"{metrics.get('accuracy', float('nan')):.4f} on {metrics.get('num_eval')} eval images",
        ),
    ]
    if "params" in metrics:
        rows.append(("params", f"{metrics['params']:,}"))
    if "macs" in metrics:
        rows.append(("MACs", f"{metrics['macs'] / 1e6:.2f} M"))
    if "train_seconds" in metrics:
        rows.append(
            (
                "training",
                f"{metrics.get('epochs')} epochs, {metrics['train_seconds']:.1f} s, "
                f"{metrics.get('images_per_second', 0):.0f} img/s",
            )
        )
    versions = m["tool_versions"]
    rows.append(("tools", ", ".join(f"{k} {v}" for k, v in versions.items())))
    rows.append(("created", m["created"]))
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)
