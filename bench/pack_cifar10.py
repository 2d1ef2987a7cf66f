"""Pack cifar10.npz losslessly into parts small enough to travel to a bare GPU machine, and back.

A GPU machine that takes at most 64 MiB of files per call cannot receive the 170 MB npz whole,
and zlib saves only 8% on these photos. This packer predicts each pixel from its neighbours
(the LOCO-I / JPEG-LS median edge detector, on G, R-G and B-G planes), so that what is left is
mostly small residuals, and compresses those with LZMA: about 55% of the raw bytes. The parts
are plain .npz files of bytes (no pickle); ``unpack`` decodes row by row over all images at
once (numpy only, a few seconds) and checks the arrays' sha256 against the packer's.

    python bench/pack_cifar10.py pack DIR/cifar10.npz --out .gpu/cifar --part-mb 45
    python bench/pack_cifar10.py unpack .gpu/cifar --out DIR/cifar10.npz

DIR is edgesmith's data folder (``$EDGESMITH_DATA_DIR``, else ``~/.cache/edgesmith/datasets``),
where edgesmith keeps cifar10.npz and looks for it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import sys
from pathlib import Path

import numpy as np

ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def _neighbours(plane: np.ndarray, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left, up and up-left neighbours of every pixel of ``row`` (zeros outside the image)."""
    width = plane.shape[2]
    up = plane[:, row - 1, :] if row else np.zeros_like(plane[:, 0, :])
    left = np.zeros_like(plane[:, row, :])
    upleft = np.zeros_like(up)
    left[:, 1:] = plane[:, row, : width - 1]
    upleft[:, 1:] = up[:, : width - 1]
    return left, up, upleft


def _median_edge(left: np.ndarray, up: np.ndarray, upleft: np.ndarray) -> np.ndarray:
    high, low = np.maximum(left, up), np.minimum(left, up)
    return np.where(upleft >= high, low, np.where(upleft <= low, high, left + up - upleft))


def encode(images: np.ndarray) -> bytes:
    """(N, H, W, 3) uint8 -> LZMA of the median-edge residuals of G, R-G, B-G (mod 256)."""
    pixels = images.astype(np.int16)
    green = pixels[..., 1]
    planes = [green, (pixels[..., 0] - green) % 256, (pixels[..., 2] - green) % 256]
    residuals = []
    for plane in planes:
        left = np.zeros_like(plane)
        up = np.zeros_like(plane)
        upleft = np.zeros_like(plane)
        left[:, :, 1:] = plane[:, :, :-1]
        up[:, 1:, :] = plane[:, :-1, :]
        upleft[:, 1:, 1:] = plane[:, :-1, :-1]
        residuals.append(((plane - _median_edge(left, up, upleft)) % 256).astype(np.uint8))
    return lzma.compress(np.stack(residuals).tobytes(), preset=6)


def decode(blob: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`encode`: rebuild each row from the rows and pixels already rebuilt."""
    count, height, width, _ = shape
    residuals = np.frombuffer(lzma.decompress(blob), dtype=np.uint8).reshape(
        3, count, height, width
    )
    planes = []
    for residual in residuals:
        plane = np.zeros((count, height, width), dtype=np.int16)
        for row in range(height):
            up = plane[:, row - 1, :] if row else np.zeros((count, width), dtype=np.int16)
            for col in range(width):
                left = plane[:, row, col - 1] if col else np.zeros(count, dtype=np.int16)
                upleft = up[:, col - 1] if col else np.zeros(count, dtype=np.int16)
                guess = _median_edge(left, up[:, col], upleft)
                plane[:, row, col] = (guess + residual[:, row, col]) % 256
        planes.append(plane)
    green, red_minus, blue_minus = planes
    red, blue = (red_minus + green) % 256, (blue_minus + green) % 256
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def pack(source: Path, out: Path, part_mb: float, chunk: int = 5000) -> list[Path]:
    """Write ``part-*.npz`` files of at most ``part_mb`` MB each, plus ``index.json``."""
    out.mkdir(parents=True, exist_ok=True)
    with np.load(source, allow_pickle=False) as data:
        arrays = {name: data[name] for name in ARRAYS}
    index = {"arrays": {}, "chunks": []}
    blobs = []
    for name in ("x_train", "x_test"):
        images = arrays[name]
        index["arrays"][name] = {"shape": list(images.shape), "sha256": _digest(images)}
        for start in range(0, len(images), chunk):
            part = images[start : start + chunk]
            blobs.append((name, start, part.shape, encode(part)))
            print(
                f"{name}[{start}:{start + len(part)}] {len(blobs[-1][3]) / 1e6:.1f} MB", flush=True
            )
    for name in ("y_train", "y_test"):
        index["arrays"][name] = {"shape": list(arrays[name].shape), "sha256": _digest(arrays[name])}
        index[name] = arrays[name].astype(int).tolist()
    parts, current, size = [], {}, 0
    for name, start, shape, blob in blobs:
        if current and size + len(blob) > part_mb * 1e6:
            parts.append(current)
            current, size = {}, 0
        key = f"{name}_{start}"
        current[key] = np.frombuffer(blob, dtype=np.uint8)
        index["chunks"].append({"array": name, "start": start, "shape": list(shape), "key": key})
        size += len(blob)
    parts.append(current)
    paths = []
    for number, part in enumerate(parts):
        path = out / f"part-{number}.npz"
        np.savez(path, **part)
        for entry in index["chunks"]:
            if entry["key"] in part:
                entry["part"] = path.name
        paths.append(path)
    (out / "index.json").write_text(json.dumps(index))
    return paths


def unpack(folders: list[Path], out: Path) -> Path:
    """Reassemble cifar10.npz from the parts found in ``folders``; verify every array."""
    files = {p.name: p for folder in folders for p in folder.glob("part-*.npz")}
    index_path = next((f / "index.json" for f in folders if (f / "index.json").is_file()), None)
    if index_path is None:
        raise SystemExit("pack_cifar10: no index.json in " + ", ".join(map(str, folders)))
    index = json.loads(index_path.read_text())
    arrays = {
        name: np.zeros(spec["shape"], dtype=np.uint8) for name, spec in index["arrays"].items()
    }
    for entry in index["chunks"]:
        if entry["part"] not in files:
            raise SystemExit(f"pack_cifar10: {entry['part']} is missing")
        with np.load(files[entry["part"]], allow_pickle=False) as part:
            blob = part[entry["key"]].tobytes()
        start = entry["start"]
        arrays[entry["array"]][start : start + entry["shape"][0]] = decode(blob, entry["shape"])
    for name in ("y_train", "y_test"):
        arrays[name] = np.asarray(index[name], dtype=np.uint8)
    for name, spec in index["arrays"].items():
        if _digest(arrays[name]) != spec["sha256"]:
            raise SystemExit(f"pack_cifar10: {name} does not match its sha256 after unpacking")
    np.savez(out, **arrays)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("pack")
    p.add_argument("source", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--part-mb", type=float, default=45.0)
    u = verbs.add_parser("unpack")
    u.add_argument("folders", type=Path, nargs="+")
    u.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.verb == "pack":
        if not args.source.is_file():
            print(f"pack_cifar10: {args.source} is not here; pass the cifar10.npz", file=sys.stderr)
            return 2
        for path in pack(args.source, args.out, args.part_mb):
            print(f"{path} {path.stat().st_size / 1e6:.1f} MB")
    else:
        print(unpack(args.folders, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
