"""One loader per data source; each returns validated arrays through ``make_dataset``."""

from __future__ import annotations

import math
import warnings
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from edgesmith.core.datasets.dataset import MAX_CLASSES, Dataset, make_dataset, stratified_split
from edgesmith.core.datasets.spec import DataSpec
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.safe_files import (
    clip,
    human_bytes,
    one_line,
    open_regular_file,
    require_memory,
    short,
)

CIFAR10_LABELS = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
FASHION_LABELS = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
KERAS_SETS = {
    "cifar10": (CIFAR10_LABELS, True),
    "mnist": (tuple(str(i) for i in range(10)), False),
    "fashion_mnist": (FASHION_LABELS, False),
}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
EVAL_DIR_NAMES = ("test", "val", "validation", "eval")


def load_digits(spec: DataSpec) -> Dataset:
    """scikit-learn's 8x8 digits (UCI, 1,797 images), embedded; 0..16 levels mapped to 0..255.

    A seeded stratified split holds out 20% for eval, the same on every machine.
    """
    with np.load(Path(__file__).with_name("digits.npz")) as data:
        levels, labels = data["images"], data["labels"]
    pixels = np.round(levels.astype(np.float32) * (255.0 / 16.0)).astype(np.uint8)
    train_idx, eval_idx = stratified_split(labels, 0.2, seed=0)
    return make_dataset(
        spec.text,
        pixels[train_idx],
        labels[train_idx],
        pixels[eval_idx],
        labels[eval_idx],
        [str(i) for i in range(10)],
    )


def load_keras_set(spec: DataSpec) -> Dataset:
    """cifar10, mnist, fashion_mnist: ``<name>.npz`` in the data folder, else downloaded once.

    The folder is ``$EDGESMITH_DATA_DIR`` or ``~/.cache/edgesmith/datasets``; a download is
    checked against the publisher's digest and cached there (see ``download``).
    """
    from edgesmith.core.datasets.download import cache_dir, download

    labels, flip_ok = KERAS_SETS[spec.kind]
    cached = cache_dir() / f"{spec.kind}.npz"
    if not cached.is_file():
        try:
            cached = download(spec.kind)
        except EdgesmithError as exc:
            raise EdgesmithError(
                f"{exc}. Put {spec.kind}.npz (arrays x_train, y_train, x_test, y_test) in a "
                f"folder and set EDGESMITH_DATA_DIR to it (now: {cache_dir()}), or pass npz:PATH"
            ) from None
    arrays = read_npz(cached, spec.text)
    x_train, y_train, x_test, y_test = arrays[:4]
    if "subset" in spec.options:  # cifar10?subset=mlperf: MLPerf Tiny's 200 eval images
        from edgesmith.core.datasets.mlperf_tiny import mlperf_subset

        x_test, y_test = mlperf_subset(x_test, y_test, spec.text)
    return make_dataset(spec.text, x_train, y_train, x_test, y_test, labels, flip_ok=flip_ok)


def read_npz(path: Path, where: str) -> tuple[np.ndarray, ...]:
    """Read the four split arrays (and ``labels`` if present) from an npz file.

    Each member's ``.npy`` header (shape and dtype) is read first, and the file is refused
    when its arrays would not fit in the memory available, or hold Python objects: a header
    of a few bytes may declare terabytes.

    Raises:
        EdgesmithError: for a missing file, one that is not a regular file (a FIFO, a device)
            or not an npz, missing arrays, object arrays, or arrays larger than the memory.
    """
    where = clip(where)
    with open_regular_file(path, f"{where}: file") as file:
        try:
            with zipfile.ZipFile(file) as archive:
                keys = _checked_npz_keys(archive, where, path)
            file.seek(0)
            with np.load(file, allow_pickle=False) as data:
                arrays = tuple(data[key] for key in NPZ_KEYS)
                labels = data["labels"] if "labels" in keys else None
        except EdgesmithError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
            raise EdgesmithError(
                one_line(
                    f"{where}: {short(path)} is not a readable .npz file "
                    f"({type(exc).__name__}: {exc})"
                )
            ) from None
    return (*arrays, labels)


def _checked_npz_keys(archive: zipfile.ZipFile, where: str, path: Path) -> list[str]:
    """The keys of the arrays to read, after checking each one's ``.npy`` header.

    ``np.load`` names the member ``x_train.npy`` ``x_train``. The arrays' sizes together are
    checked against the memory available, before any data is read.

    Raises:
        EdgesmithError: for a missing array, a malformed header, an object dtype, or arrays
            larger than the memory available.
    """
    members = {n[: -len(".npy")] if n.endswith(".npy") else n: n for n in archive.namelist()}
    missing = [key for key in NPZ_KEYS if key not in members]
    if missing:
        found = ", ".join(sorted(members)) or "none"
        raise EdgesmithError(
            f"{where}: {short(path)} lacks array(s) {', '.join(missing)}; expected "
            f"{', '.join(NPZ_KEYS)} (found: {short(found)})"
        )
    keys = [key for key in (*NPZ_KEYS, "labels") if key in members]
    total, largest = 0, (-1, "", (), None)
    for key in keys:
        with archive.open(members[key]) as member:
            shape, dtype = _npy_header(member, where, key)
        nbytes = math.prod(shape) * dtype.itemsize
        total += nbytes
        largest = max(largest, (nbytes, key, shape, dtype), key=lambda item: item[0])
    nbytes, key, shape, dtype = largest
    array = f"array {key} {short(shape, 40)} {clip(str(dtype), 40)}"
    if total > nbytes:
        array += f" ({human_bytes(nbytes)}) and the others"
    require_memory(total, f"{where}: {array}")
    return keys


def _npy_header(member: IO[bytes], where: str, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a ``.npy`` header, read from the member's stream (no data read).

    Raises:
        EdgesmithError: for a malformed header, a negative side or an object dtype.
    """
    try:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        elif version == (3, 0) and hasattr(np.lib.format, "_read_array_header"):
            shape, _, dtype = np.lib.format._read_array_header(member, version)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except (OSError, ValueError, EOFError, SyntaxError, TypeError) as exc:
        raise EdgesmithError(
            one_line(f"{where}: array {key} has no valid .npy header ({type(exc).__name__}: {exc})")
        ) from None
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise EdgesmithError(f"{where}: array {key} declares a negative shape {short(shape, 40)}")
    if dtype.hasobject:
        raise EdgesmithError(
            f"{where}: array {key} has dtype object (Python objects, read only by unpickling); "
            "expected numbers"
        )
    return shape, dtype


def load_npz(spec: DataSpec) -> Dataset:
    """``npz:PATH`` with x_train, y_train, x_test, y_test and optional class names ``labels``."""
    *arrays, labels = read_npz(Path(spec.path), spec.text)
    names = None if labels is None else [str(v) for v in np.asarray(labels).ravel()]
    return make_dataset(spec.text, *arrays, names)


def load_folder(spec: DataSpec) -> Dataset:
    """``folder:PATH``: one sub-folder per class; ``train/`` + ``test/`` inside give the split."""
    root = Path(spec.path)
    if not root.is_dir():
        raise EdgesmithError(f"{spec.text}: not a directory: {root}")
    size = spec.shape_option("size", None)
    if size is not None and len(size) != 2:
        raise EdgesmithError(f"{spec.text}: size must be HxW, like 32x32. Received: {size}")
    grayscale = spec.bool_option("grayscale")
    split = spec.float_option("split", 0.2, 0.0, 1.0)
    train_dir = root / "train"
    eval_dir = next((root / n for n in EVAL_DIR_NAMES if (root / n).is_dir()), None)
    if train_dir.is_dir() and eval_dir is not None:
        labels = _class_dirs(train_dir, spec.text)
        x_train, y_train = _read_images(train_dir, labels, size, grayscale, spec.text)
        x_eval, y_eval = _read_images(
            eval_dir, labels, size or x_train.shape[1:3], grayscale, spec.text
        )
    else:
        labels = _class_dirs(root, spec.text)
        x_all, y_all = _read_images(root, labels, size, grayscale, spec.text)
        seed = spec.int_option("seed", 0, minimum=0) or 0
        train_idx, eval_idx = stratified_split(y_all, split, seed=seed)
        x_train, y_train, x_eval, y_eval = (
            x_all[train_idx],
            y_all[train_idx],
            x_all[eval_idx],
            y_all[eval_idx],
        )
    return make_dataset(spec.text, x_train, y_train, x_eval, y_eval, labels)


def _class_dirs(root: Path, where: str) -> list[str]:
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(names) < 2:
        raise EdgesmithError(
            f"{where}: expected one sub-folder per class (at least 2) in {root}. Found: {names}"
        )
    return names


def _read_images(root: Path, labels: list[str], size, grayscale: bool, where: str):
    """Every image under ``root/<label>/`` as one (N, H, W, C) uint8 array, and the labels.

    The headers are read before any pixels: images whose sides differ are refused (unless
    ``size`` resizes them) and the decoded total (N x H x W x C, twice while stacking) is
    checked against the memory available.

    Raises:
        EdgesmithError: for a missing class folder, no images, images of differing sizes, a
            file that is not a regular file, an unreadable image or too little memory.
    """
    try:
        from PIL import Image
    except ImportError:
        raise EdgesmithError("folder datasets need Pillow: pip install pillow") from None
    found = []
    for index, name in enumerate(labels):
        folder = root / name
        if not folder.is_dir():
            raise EdgesmithError(f"{where}: class folder {short(folder)} is missing")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        found.extend((file, index) for file in files)
    if not found:
        raise EdgesmithError(
            f"{where}: no images ({', '.join(IMAGE_SUFFIXES)}) under {short(root)}"
        )
    first = found[0][0]
    height, width = tuple(size) if size is not None else _image_size(Image, first, where)
    channels = 1 if grayscale else 3
    total = len(found) * height * width * channels
    require_memory(
        2 * total,
        f"{where}: {len(found):,} images of {height}x{width}x{channels}, held twice while stacked",
    )
    images = []
    for file, _ in found:
        if size is None and file != first:
            sides = _image_size(Image, file, where)
            if sides != (height, width):
                raise EdgesmithError(
                    f"{where}: images differ in size ({(height, width)} in {short(first)}, "
                    f"{sides} in {short(file)}); add ?size=HxW to resize them all"
                )
        images.append(_read_image(Image, file, size, grayscale, where))
    return np.stack(images), np.asarray([index for _, index in found])


def _image_size(image_module, file: Path, where: str) -> tuple[int, int]:
    """(height, width) from an image's header, without decoding its pixels.

    Raises:
        EdgesmithError: as :func:`_with_image`.
    """
    return _with_image(image_module, file, where, lambda img: (int(img.height), int(img.width)))


def _read_image(image_module, file: Path, size, grayscale: bool, where: str) -> np.ndarray:
    """One image as uint8 pixels, resized to ``size`` (H, W) if given.

    Raises:
        EdgesmithError: as :func:`_with_image`.
    """

    def decode(img):
        img = img.convert("L" if grayscale else "RGB")
        if size is not None:
            img = img.resize((size[1], size[0]), image_module.BILINEAR)
        return np.asarray(img, dtype=np.uint8)

    return _with_image(image_module, file, where, decode)


def _with_image(image_module, file: Path, where: str, action):
    """``action(img)`` on the opened image; a decompression bomb or a malformed file exits 2.

    Pillow refuses images over twice ``Image.MAX_IMAGE_PIXELS`` (about 179 M pixels) and only
    warns above it; here the warning is an error too, so a small file cannot expand to
    gigabytes. Pillow's parsers raise many exception types for hostile files: all mean
    "unreadable". Only a regular file is opened (a FIFO would block, a device never end).

    Raises:
        EdgesmithError: for a file that is not a regular file, a bomb, or an unreadable image.
    """
    Image = image_module  # noqa: N806 - the PIL module, passed in to keep the import lazy
    with open_regular_file(file, f"{where}: image") as handle:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(handle) as img:
                    return action(img)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise EdgesmithError(
                one_line(
                    f"{where}: {short(file)} is a decompression bomb ({exc}); refusing to decode it"
                )
            ) from None
        except Exception as exc:  # OSError, ValueError, SyntaxError, struct.error... from Pillow
            raise EdgesmithError(
                one_line(f"{where}: cannot read image {short(file)}: {type(exc).__name__}: {exc}")
            ) from None


MAX_SYNTHETIC_VALUES = 1 << 27
"""Most pixel values a synthetic spec may ask for (n x H x W x C, ~134 M: about 1 GiB in work)."""


def load_synthetic(spec: DataSpec) -> Dataset:
    """Oriented stripes, one angle per class, random phase and noise: learnable in a few steps."""
    classes = spec.int_option("classes", 4)
    shape = spec.shape_option("shape", (16, 16, 3))
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3:
        raise EdgesmithError(f"{spec.text}: shape must be HxW or HxWxC. Received: {shape}")
    if classes < 2:
        raise EdgesmithError(f"{spec.text}: classes must be >= 2. Received: {classes}")
    n = spec.int_option("n", 512)
    images = n + max(classes, n // 4)  # train + eval
    if images * int(np.prod(shape)) > MAX_SYNTHETIC_VALUES or classes > MAX_CLASSES:
        raise EdgesmithError(
            f"{spec.text}: {n} images of {shape} with {classes} classes is too large for "
            f"synthetic data (at most {MAX_SYNTHETIC_VALUES:,} pixel values, "
            f"{MAX_CLASSES:,} classes)"
        )
    rng = np.random.default_rng(spec.int_option("seed", 0, minimum=0))
    height, width, _ = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)

    def draw(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(count) % classes
        rng.shuffle(labels)
        angle = np.pi * labels / classes
        phase = rng.uniform(0, 2 * np.pi, count)
        wave = np.sin(
            2
            * np.pi
            / 4.0
            * (xx[None] * np.cos(angle)[:, None, None] + yy[None] * np.sin(angle)[:, None, None])
            + phase[:, None, None]
        )
        images = 127.5 + 90.0 * wave[..., None] + rng.normal(0, 20, (count, *shape))
        return np.clip(images, 0, 255).astype(np.uint8), labels

    x_train, y_train = draw(n)
    x_eval, y_eval = draw(max(classes, n // 4))
    return make_dataset(
        spec.text, x_train, y_train, x_eval, y_eval, [f"class{i}" for i in range(classes)]
    )


LOADERS = {
    "digits": load_digits,
    "cifar10": load_keras_set,
    "mnist": load_keras_set,
    "fashion_mnist": load_keras_set,
    "npz": load_npz,
    "folder": load_folder,
    "synthetic": load_synthetic,
}
