"""Small hostile files are refused with one short line (exit 2), never exhausting the machine.

Each case was found on real runs: an npz header declaring 10^12 elements (MemoryError, exit 3),
``folder:...?size=4096x4096`` (2.6 GB before a refusal), a 244-byte YAML alias bomb (a 15 MB
error line), ``threads: 100000`` (a segfault), and a FIFO or ``/dev/zero`` given as a file (a
hang). Nothing here depends on this machine's RAM or CPU count: both figures are injected.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgesmith.app.cli import main
from edgesmith.core import profiles, safe_files
from edgesmith.core.config import load_config_file
from edgesmith.core.datasets import load_dataset, parse_spec
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.profiles import load_profile

FIXTURES = Path(__file__).resolve().parents[1] / "runtime" / "fixtures"
GIB = 1 << 30
LIMIT = 200


@pytest.fixture
def memory(monkeypatch):
    """Set the memory this process may take, as ``available_memory_bytes`` reports it."""

    def set_available(nbytes):
        monkeypatch.setattr(safe_files, "available_memory_bytes", lambda: nbytes)

    set_available(8 * GIB)
    return set_available


@pytest.fixture(autouse=True)
def eight_cpus(monkeypatch):
    monkeypatch.setattr(profiles, "cpu_count", lambda: 8)


def refused(call, *args, match):
    """The EdgesmithError ``call(*args)`` raises: one line, under LIMIT characters."""
    with pytest.raises(EdgesmithError, match=match) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message and len(message) < LIMIT, message
    assert info.value.exit_code == 2
    return message


def cli_refuses(args, capsys, match):
    """``edgesmith ARGS`` exits 2 with one ``edgesmith: error:`` line matching ``match``."""
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgesmith: error: ") and "\n" not in err, err
    assert len(err) < LIMIT + len("edgesmith: error: "), err
    assert re.search(match, err), err


def npy_header(shape, descr="<f8"):
    """A version 1.0 ``.npy`` header, written by hand, with no data after it."""
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1")


def write_npz(path, **members):
    """An npz whose members are arrays (saved by numpy) or raw bytes (hand-made headers)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in members.items():
            if isinstance(value, bytes):
                archive.writestr(f"{name}.npy", value)
            else:
                buffer = io.BytesIO()
                np.save(buffer, value, allow_pickle=False)
                archive.writestr(f"{name}.npy", buffer.getvalue())
    return f"npz:{path}"


def small_arrays(count=8):
    return {
        "x_train": np.zeros((count, 8, 8), np.uint8),
        "y_train": np.arange(count) % 2,
        "x_test": np.zeros((4, 8, 8), np.uint8),
        "y_test": np.arange(4) % 2,
    }


# --- npz: declared sizes against the memory available --------------------------------------


def test_an_npz_header_declaring_a_terabyte_is_refused_before_reading(tmp_path, memory, capsys):
    arrays = small_arrays()
    arrays["x_train"] = npy_header((1_000_000, 1_000_000))  # 10^12 float64, no data behind it
    spec = write_npz(tmp_path / "huge.npz", **arrays)
    message = refused(
        load_dataset,
        spec,
        match=r"x_train \(1000000, 1000000\) float64 .*7\.3 TiB needed, more than the 8\.0 GiB",
    )
    assert "8.0 GiB" in message
    cli_refuses(["bench", str(FIXTURES / "int8.tflite"), "--data", spec], capsys, "x_train")


def test_the_npz_bound_is_memory_not_a_ratio(tmp_path, memory):
    spec = write_npz(tmp_path / "ok.npz", **small_arrays(64))
    memory(1 << 20)  # 1 MiB: the 4 KiB of pixels fit
    assert load_dataset(spec).x_train.shape == (64, 8, 8, 1)
    memory(2048)  # the same file, on a machine with 2 KiB left
    refused(
        load_dataset,
        spec,
        match=r"array x_train \(64, 8, 8\) uint8 \(4.0 KiB\) and the others: .* than the 2.0 KiB",
    )
    memory(None)  # unknown: nothing is refused for memory
    assert load_dataset(spec).num_classes == 2


def test_an_npz_of_python_objects_is_refused(tmp_path, memory):
    arrays = small_arrays()
    arrays["labels"] = npy_header((2,), descr="|O")
    refused(
        load_dataset, write_npz(tmp_path / "obj.npz", **arrays), match="labels has dtype object"
    )


def test_an_npz_member_without_a_valid_header_is_refused(tmp_path, memory):
    arrays = small_arrays()
    arrays["y_test"] = b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 100
    refused(load_dataset, write_npz(tmp_path / "bad.npz", **arrays), match="y_test has no valid")


# --- folder: image sides and decoded totals ------------------------------------------------


def write_images(root, classes=("cat", "dog"), count=3, size=(10, 12)):
    from PIL import Image

    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", size[::-1], (i, 0, 0)).save(root / name / f"{i}.png")


def test_a_folder_size_beyond_1024_is_refused_when_parsed(tmp_path, monkeypatch):
    from edgesmith.core.datasets import SPEC_HELP, loaders

    write_images(tmp_path / "f")
    monkeypatch.setattr(loaders, "_read_image", lambda *a: pytest.fail("an image was decoded"))
    refused(load_dataset, f"folder:{tmp_path / 'f'}?size=4096x4096", match=r"each side 1\.\.1024")
    refused(parse_spec, "folder:x?size=1025x8", match=r"size must look like 32x32, each side")
    assert "each side 1..1024" in SPEC_HELP
    assert parse_spec("synthetic?shape=2048x8x1").shape_option("shape", None) == (2048, 8, 1)


def test_a_folder_is_checked_against_memory_before_decoding(tmp_path, monkeypatch, memory):
    from edgesmith.core.datasets import loaders

    write_images(tmp_path / "f")
    spec = f"folder:{tmp_path / 'f'}"
    real = loaders._read_image
    monkeypatch.setattr(loaders, "_read_image", lambda *a: pytest.fail("an image was decoded"))
    memory(3 << 20)  # 3 MiB: 6 images of 1024x1024x3 are 18 MiB
    refused(load_dataset, spec + "?size=1024x1024", match=r"6 images of 1024x1024x3, .*memory")
    memory(1000)  # the natural 10x12x3 images, 2,160 bytes, twice while stacked
    refused(
        load_dataset,
        spec,
        match=r"6 images of 10x12x3, held twice while stacked: 4.2 KiB needed, .* 1,000 bytes",
    )
    monkeypatch.setattr(loaders, "_read_image", real)
    memory(1 << 20)
    assert load_dataset(spec + "?size=16x16").input_shape == (16, 16, 3)


# --- YAML: aliases, size, one-line errors --------------------------------------------------

ALIAS_BOMB = (  # ~250 bytes; the old loader expanded formats to 9^6 values, a 4 MB error line
    "runtime: litert\n"
    "formats:\n"
    "  - &a [x,x,x,x,x,x,x,x,x]\n"
    "  - &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "  - &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "  - &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "  - &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "  - [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
)


def test_a_yaml_alias_bomb_is_refused_in_one_short_line(tmp_path, capsys):
    path = tmp_path / "board.yaml"
    path.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 300
    refused(load_profile, path, match=r"anchors and aliases .* not accepted \(line 3\)")
    refused(load_config_file, path, match="anchors and aliases")
    cli_refuses(
        ["bench", str(FIXTURES / "int8.tflite"), "--device", str(path), "--quiet"],
        capsys,
        "anchors and aliases",
    )


def test_yaml_anchors_are_refused_everywhere_configs_are_read(tmp_path):
    from edgesmith.compress.recipes import parse_recipe

    path = tmp_path / "recipe.yaml"
    path.write_text("steps:\n  - &s {technique: prune}\n  - *s\n")
    refused(parse_recipe, path, match="anchors and aliases")
    path.write_text("name: &n board\nruntime: litert\nformats: [tflite-int8]\n")
    refused(load_profile, path, match=r"anchors and aliases .*\(line 1\)")


def test_config_files_over_one_mib_are_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("runtime: litert\nformats: [tflite-int8]\n" + "#" * (1 << 20) + "\n")
    refused(load_profile, path, match=r"big\.yaml is 1\.0 MiB; at most 1\.0 MiB is read")


def test_config_parse_errors_and_long_values_stay_on_one_short_line(tmp_path):
    path = tmp_path / "board.yaml"
    path.write_text("runtime: litert\nformats: [tflite-int8\nthreads: 2\n")
    refused(
        load_profile,
        path,
        match=r"cannot parse config file .*: line \d+, column \d+: .*expected ',' or ']'",
    )
    path.write_text(f"runtime: {'x' * 100_000}\nformats: [tflite-int8]\n")
    refused(load_profile, path, match=r"runtime must be one of litert, onnxruntime\. Received: ")
    path.write_text(f"runtime: litert\nformats: [{', '.join(['onnx'] * 5_000)}]\n")
    refused(load_profile, path, match="formats for litert must be among")
    path = tmp_path / "board.json"  # a YAML simple key is at most 1024 characters long
    path.write_text(json.dumps({"runtime": "litert", "formats": ["onnx"], "k" * 100_000: 1}))
    refused(load_profile, path, match=r"unknown DeviceProfile key\(s\): kkk")
    path.write_bytes(b"runtime: \xff\xfe\n")
    refused(load_profile, path, match="is not UTF-8 text")


# --- profiles: threads and budgets ---------------------------------------------------------


def test_threads_are_bounded_by_the_cpus_here(tmp_path, capsys):
    path = tmp_path / "board.yaml"
    path.write_text("runtime: litert\nformats: [tflite-int8]\nthreads: 100000\n")
    refused(
        load_profile,
        path,
        match=r"threads must be at most 32 \(4 x the 8 CPUs here\)\. Received: 100000",
    )
    cli_refuses(
        ["bench", str(FIXTURES / "int8.tflite"), "--device", str(path), "--quiet"],
        capsys,
        "threads must be at most 32",
    )
    path.write_text("runtime: litert\nformats: [tflite-int8]\nthreads: 32\n")
    assert load_profile(path).threads == 32


@pytest.mark.parametrize(
    "text",
    [
        "runtime: litert\nformats: [tflite-int8]\nbudgets: {max_latency_ms: .nan}\n",
        "runtime: litert\nformats: [tflite-int8]\nbudgets: {max_size_kb: .inf}\n",
        "runtime: litert\nformats: [tflite-int8]\nbudgets: {min_accuracy: .NaN}\n",
    ],
)
def test_nan_or_infinite_budgets_are_refused(tmp_path, text):
    path = tmp_path / "board.yaml"
    path.write_text(text)
    refused(load_profile, path, match="must be a positive number or null .not NaN or infinity")


def test_nan_or_infinite_budgets_in_json_and_vela_clocks_are_refused(tmp_path):
    path = tmp_path / "board.json"
    path.write_text(
        '{"runtime": "litert", "formats": ["tflite-int8"], "budgets": {"max_ram_mb": NaN}}'
    )
    refused(load_profile, path, match="max_ram_mb must be a positive number")
    values = {
        "runtime": "litert",
        "formats": ["tflite-int8"],
        "target": "ethos-u55-128",
        "vela": {"clock_mhz": float("inf")},
    }
    path.write_text(json.dumps(values))
    refused(load_profile, path, match="clock_mhz must be a positive finite number")


# --- only regular files are read -----------------------------------------------------------


@pytest.fixture
def fifo(tmp_path):
    """Make FIFOs; a blocked reader (the bug) is released after a while by opening the writer."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    made, stop = [], threading.Event()

    def release():
        while not stop.wait(0.05):
            for path in made:
                try:  # succeeds only while a reader is blocked on the FIFO
                    os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    pass

    guard = threading.Thread(target=release, daemon=True)
    guard.start()

    def make(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        made.append(path)
        return path

    yield make
    stop.set()
    guard.join()


def test_a_fifo_is_refused_as_npz_config_or_image(tmp_path, fifo, capsys):
    npz = fifo(tmp_path / "data.npz")
    refused(load_dataset, f"npz:{npz}", match="data.npz is a FIFO, not a regular file")
    cli_refuses(["bench", str(FIXTURES / "int8.tflite"), "--data", f"npz:{npz}"], capsys, "FIFO")
    profile = fifo(tmp_path / "board.yaml")
    refused(load_profile, profile, match="config file .*board.yaml is a FIFO")
    refused(load_config_file, fifo(tmp_path / "recipe.json"), match="recipe.json is a FIFO")
    write_images(tmp_path / "f")
    fifo(tmp_path / "f" / "cat" / "9.png")
    refused(load_dataset, f"folder:{tmp_path / 'f'}", match=r"image .*9\.png is a FIFO")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_device_is_refused_as_npz_or_config(tmp_path):
    refused(load_dataset, "npz:/dev/zero", match="/dev/zero is a character device")
    refused(load_config_file, "/dev/zero", match="config file /dev/zero is a character device")
    link = tmp_path / "board.yaml"
    link.symlink_to("/dev/zero")
    refused(load_profile, link, match="board.yaml is a character device")


def test_missing_files_are_still_named_as_missing(tmp_path):
    refused(load_dataset, f"npz:{tmp_path / 'absent.npz'}", match="file not found: ")
    refused(load_config_file, tmp_path / "absent.yaml", match="config file not found: ")
    refused(load_dataset, f"npz:{tmp_path}", match="is a directory, not a regular file")


def test_short_keeps_a_path_tail_and_one_line():
    text = safe_files.short(Path("/a" * 100 + "/name.npz"))
    assert len(text) == safe_files.MAX_MESSAGE_VALUE and text.endswith("/name.npz")
    assert safe_files.short("a\nb") == "'a\\nb'" and safe_files.short(3) == "3"
    assert safe_files.human_bytes(2048) == "2.0 KiB" and safe_files.human_bytes(5) == "5 bytes"


def test_available_memory_is_a_positive_figure_or_unknown():
    figure = safe_files.available_memory_bytes()
    assert figure is None or (isinstance(figure, int) and figure >= 0)
