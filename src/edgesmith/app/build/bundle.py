"""The bundle: what goes onto the device, with the evidence for choosing it.

``OUT/bundle/`` holds the chosen model as an artifact directory (model file, ``manifest.json``,
and for a microcontroller ``model_data.cc``/``.h``), so ``edgesmith bench bundle/`` and
``edgesmith.runtime.load("bundle/")`` work on it directly; for a Cortex-M target its
``firmware/`` folder (op resolver, one-inference ``main.cc``, build flags, the measured ELF);
``labels.txt``; the bench JSON,
Markdown report and plots; every candidate's numbers; ``infer.py``, a minimal inference example
for the device's runtime; and ``README.txt`` saying how to run it there. It is staged in
``OUT/bundle.partial`` and renamed into place, so a bundle is either complete or absent; both
carry edgesmith's ownership marker, and a ``bundle``, ``bundle.partial`` or ``bundle.old``
without it (the user's) is refused, never replaced (see ``folders.py``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from edgesmith.app.build.folders import fresh_stage, publish_dir
from edgesmith.core.artifacts import MANIFEST_NAME, Artifact
from edgesmith.core.profiles import DeviceProfile
from edgesmith.runtime import BenchDocument

INFER_TEMPLATE = '''\
"""Classify images with the model in this bundle: python infer.py IMAGE [IMAGE ...].

Needs only the runtime: pip install "edgesmith[runtime]" (numpy, pillow, LiteRT, ONNX Runtime).
The preprocessing (resize, normalisation, quantisation) comes from the bundle's manifest.
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

import edgesmith.runtime as rt

HERE = Path(__file__).resolve().parent
OPTIONS = {options}  # the device profile's runtime settings


def read_image(path, height, width, channels):
    """An image file as uint8 pixels (H, W, C), resized and converted to the model's layout."""
    image = Image.open(path).convert("L" if channels == 1 else "RGB")
    pixels = np.asarray(image.resize((width, height)), dtype=np.uint8)
    return pixels.reshape(height, width, channels)


def main(paths):
    """Print the top-3 classes of each image."""
    model = rt.load(HERE, **OPTIONS)
    height, width, channels = model.input_spec["shape"]
    images = np.stack([read_image(p, height, width, channels) for p in paths])
    probabilities = model.probabilities(model.predict(images))
    for path, row in zip(paths, probabilities):
        top = np.argsort(row)[::-1][:3]
        ranked = ", ".join(f"{{model.labels[i]}} {{row[i]:.3f}}" for i in top)
        print(f"{{path}}: {{ranked}}")
    model.close()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python infer.py IMAGE [IMAGE ...]")
    main(sys.argv[1:])
'''

README_TEMPLATE = """\
edgesmith bundle for device {device} ({description})

Chosen model: {name} ({fmt}), top-1 {accuracy} on {data}, {size_kb:,.1f} KB, p50 {p50} ms
({where}). Every candidate and its budgets: candidates.md / candidates.json.

Files
  {model_file:<18} the model ({runtime}); manifest.json beside it records its preprocessing,
                     labels, parent models and checks (edgesmith info .)
  labels.txt         class names, one per line, in output order
  bench.json         the bench document (schema edgesmith.bench); report.md and plots/ for people
  infer.py           minimal inference: python infer.py IMAGE [IMAGE ...]
{c_array}
On the device
  pip install "edgesmith[runtime]"          # numpy, pillow, LiteRT, ONNX Runtime; no TensorFlow
  edgesmith bench bundle/ --data {data} --device {device_arg}
  python bundle/infer.py picture.png

From the build machine, over SSH:
  edgesmith build --device {device_arg} --data {data} --out OUT --host user@device
"""

C_ARRAY_TEXT = """\
  model_data.cc/.h   the model as a 16-byte aligned C array (g_model_data, g_model_data_len)
                     for TensorFlow Lite Micro: compile it in and pass it to tflite::GetModel
"""


VELA_TEXT = """\
  model_vela.tflite  the model compiled by Arm Vela {version} for
                     {vela.config.accelerator} ({vela.config.system_config},
                     {vela.config.memory_mode}): the file the Ethos-U firmware runs;
                     model_vela_data.cc/.h is it as a C array (g_model_vela_data).
                     {vela.npu_ops} NPU / {vela.cpu_ops} CPU ops, SRAM {vela.sram_kb:.1f} KB,
                     {vela.inference_ms:.3f} ms: a Vela estimate, not measured on the NPU
"""


FIRMWARE_TEXT = """\
  firmware/          TFLite Micro + CMSIS-NN for {target}, as measured in QEMU ({fw.board}):
                     main.cc (one inference, the arena it needs), op_resolver.h (the model's
                     ops only), model_data.cc/.h, build_flags.txt (the library's make line,
                     compile and link flags), firmware.elf (the measured firmware, built from
                     measure_main.cc, start.c, firmware.ld; it reads input.bin by semihosting).
                     Flash {fw.flash_kb:.1f} KB, RAM {fw.ram_kb:.1f} KB (arena used
                     {fw.arena_used_bytes:,} B), {fw.instructions_per_inference:,} instructions
                     per inference (QEMU's count, not time), top-1 agreement with LiteRT
                     {fw.agreement:.1%} on {fw.num_images} images
"""


def _firmware_text(chosen: Artifact) -> str:
    """The README lines for the firmware a Cortex-M export adds, or nothing.

    The template reads the manifest's firmware record by its own field names.
    """
    target = chosen.manifest.target
    firmware = target.firmware if target is not None else None
    if firmware is None:
        return ""
    return FIRMWARE_TEXT.format(target=target.target, fw=firmware)


def _npu_text(chosen: Artifact) -> str:
    """The README lines for the Vela-compiled files an Ethos-U export adds, or nothing."""
    target = chosen.manifest.target
    vela = target.vela if target is not None else None
    if vela is None:
        return ""
    return VELA_TEXT.format(vela=vela, version=vela.vela_version or "")


def write_bundle(
    out: Path,
    chosen: Artifact,
    row: dict,
    *,
    profile: DeviceProfile,
    data: str,
    document: BenchDocument,
    report_md: str,
    plots: list[Path],
    candidates: dict,
    candidates_md: str,
) -> Path:
    """Write ``out`` (replacing an earlier bundle of edgesmith's once the new one is complete).

    Args:
        out: the bundle directory (``OUT/bundle``).
        chosen: the chosen export artifact.
        row: its candidate row (accuracy, size, p50).
        profile: the device profile.
        data: the data spec the numbers were measured on.
        document: the bench document (its records for every candidate).
        report_md: the Markdown bench report; plot links are relative to ``plots/``.
        plots: PNG files to copy into ``plots/``.
        candidates: the ``candidates.json`` document.
        candidates_md: the candidates table as Markdown.

    Returns:
        The bundle directory.
    """
    stage = fresh_stage(out, "edgesmith build bundle")  # refuses a .partial not ours
    try:
        for name in [*chosen.files, MANIFEST_NAME]:
            target = stage / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(chosen.path / name, target)
        (stage / "labels.txt").write_text("\n".join(chosen.labels) + "\n", encoding="utf-8")
        (stage / "bench.json").write_text(json.dumps(document.to_dict(), indent=2) + "\n")
        (stage / "candidates.json").write_text(json.dumps(candidates, indent=2) + "\n")
        (stage / "candidates.md").write_text(candidates_md, encoding="utf-8")
        if plots:
            (stage / "plots").mkdir()
            for plot in plots:
                shutil.copy2(plot, stage / "plots" / plot.name)
        (stage / "report.md").write_text(report_md, encoding="utf-8")
        options = profile.runtime_options(allow_delegate=True)  # written down, not loaded
        (stage / "infer.py").write_text(INFER_TEMPLATE.format(options=repr(options)))
        (stage / "README.txt").write_text(_readme(chosen, row, profile, data, document))
        publish_dir(stage, out)  # replaces only an earlier bundle of edgesmith's
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out


def _readme(
    chosen: Artifact, row: dict, profile: DeviceProfile, data: str, document: BenchDocument
) -> str:
    accuracy = "-" if row["accuracy"] is None else f"{100 * row['accuracy']:.2f}%"
    host, machine = document.host, document.machine
    where = f"measured on {host}" if host else f"measured on this machine, {machine.get('cpu')}"
    return README_TEMPLATE.format(
        device=profile.name,
        description=profile.description or profile.runtime,
        name=row["name"],
        fmt=chosen.technique,
        accuracy=accuracy,
        data=data,
        size_kb=row["size_bytes"] / 1024,
        p50=f"{row['p50_ms']:.4f}",
        where=where,
        model_file=chosen.model_path.name,
        runtime=profile.runtime,
        c_array=(C_ARRAY_TEXT if chosen.manifest.c_array is not None else "")
        + _npu_text(chosen)
        + _firmware_text(chosen),
        device_arg=profile.name,
    )
