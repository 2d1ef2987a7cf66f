"""File sizes as a deployment sees them: raw bytes, and gzipped (what pruning actually saves)."""

from __future__ import annotations

import gzip


def sizes(model_bytes: bytes) -> dict[str, int]:
    """``size_bytes`` and ``gzip_bytes`` (level 9, no timestamp, so the number repeats)."""
    return {
        "size_bytes": len(model_bytes),
        "gzip_bytes": len(gzip.compress(model_bytes, compresslevel=9, mtime=0)),
    }
