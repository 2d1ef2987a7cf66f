"""``ExportOptions``: every export setting, validated before TensorFlow or any data is loaded."""

from __future__ import annotations

import dataclasses

from edgesmith.core.config import Config, setting
from edgesmith.core.emulated import EMULATED_TARGETS
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.profiles import FIRMWARE_TARGETS
from edgesmith.export.formats import IO_DTYPES, TARGETS
from edgesmith.export.litert_quantizer import CALIBRATION_RULES

DEFAULT_OPSET = 17
# Images the Cortex-M firmware runs in QEMU: about 0.1 s each for a ResNet-8 (5 M instructions),
# so the default costs seconds; more than MAX_FIRMWARE_IMAGES is a benchmark, not an export.
DEFAULT_FIRMWARE_IMAGES = 100
MAX_FIRMWARE_IMAGES = 10_000
# Per-channel QuantizeLinear (the ``axis`` attribute) arrived in opset 13; older opsets cannot
# hold the quantised formats, and tf2onnx 1.17 writes nothing newer than its own table's last.
MIN_OPSET = 13
# The last opset in tf2onnx 1.17's OPSET_TO_IR_VERSION table (tf2onnx is pinned to 1.17.0; a
# test checks this number against the installed tf2onnx, which cannot be imported without TF).
TF2ONNX_MAX_OPSET = 18


@dataclasses.dataclass(frozen=True)
class ExportOptions(Config):
    """How to export.

    Attributes:
        raw_input: fold the input normalisation into the model so it takes raw camera pixels.
        io_dtype: ``int8`` or ``uint8``: input/output dtype of the full-integer TFLite file.
        calibration_samples: training images fed to the int8 calibration (representative data).
        opset: ONNX opset to write.
        allow_mismatch: publish a file that fails its parity check (the manifest says ``fail``).
        target: ``int8-only`` (no float op allowed) or ``tflm`` (TFLite Micro op set), or None.
        c_array: also write the model as ``model_data.cc``/``model_data.h`` (TFLite formats).
        sparse: use the TFLite sparse weight encoding (for pruned sources).
        data: data spec to calibrate and check parity on instead of the source's own dataset.
        max_eval: check parity on at most this many eval images (None: the whole eval split).
        quantizer_recipe: for ``tflite-recipe``: a LiteRT Quantizer recipe file (its own JSON),
            or the JSON ``compress sensitivity`` writes (its mixed W8A8/W8A16 recipe).
        quantizer_calibration: LiteRT Quantizer formats: ``min-max`` calibration (all images'
            extremes, the converter's rule) or ``moving-average`` (the quantizer's default).
        vela: for an Ethos-U target, Vela's ``system_config``, ``memory_mode`` and
            ``clock_mhz`` (a device profile's ``vela`` mapping); None: Vela's defaults.
        max_accuracy_drop: how far, in percentage points, a quantised file's accuracy may fall
            below its source's on the eval images before parity fails (judged with McNemar's
            exact test, see ``export/parity.py``).
        check_on: emulated CPUs (``aarch64``, ``x86-64-avx2``) on which every file that
            passed parity here is checked again, by the same rule, through one emulated child
            per CPU; a file that fails there fails its parity check.
        firmware_images: for a Cortex-M target (``cortex-m4``, ``cortex-m7``, ``cortex-m55``):
            how many of the first eval images the firmware runs in QEMU once the file has
            passed parity.
        tflm_sources: for a Cortex-M target: the folder of pinned TFLite Micro source
            archives (None: ``EDGESMITH_TFLM_SOURCES``; not needed once they are unpacked in
            the cache).
        keras3_export: convert a model file Keras 3 saved (``train --backend ...``) to the
            converter's TFLite formats with Keras 3's own ``model.export(format="litert")``,
            with the same converter settings, rather than rebuilding it in tf_keras first (ONNX
            and the LiteRT Quantizer's formats start from the tf_keras rebuild either way, as
            does a ``raw_input`` run, whose folded model exists only in tf_keras).
    """

    raw_input: bool = setting(False, "fold the input normalisation in: the file takes raw pixels")
    io_dtype: str = setting("int8", "tflite-int8 input/output dtype", choices=IO_DTYPES)
    calibration_samples: int = setting(500, "training images for int8 calibration", low=1)
    opset: int = setting(DEFAULT_OPSET, "ONNX opset (the installed onnx and tf2onnx bound it)")
    allow_mismatch: bool = setting(
        False, "publish files that fail parity (manifest says fail), exit 0"
    )
    target: str | None = setting(
        None,
        "fail files that this target cannot run (int8-only: no float op; tflm: TFLite Micro "
        "runs it, reports flash and its measured arena; ethos-u55-128, ethos-u55-256, "
        "ethos-u65-256, ethos-u85-256: Arm Vela compiles it and estimates NPU/CPU ops, SRAM, "
        "flash and time; cortex-m4, cortex-m7, cortex-m55: TFLite Micro + CMSIS-NN firmware run "
        "in QEMU (mps2-an386, mps2-an500, mps3-an547), reports "
        "accuracy, agreement with LiteRT, flash, RAM and instructions per inference)",
        choices=TARGETS,
    )
    c_array: bool = setting(False, "also write model_data.cc/.h (TFLite formats), as xxd -i")
    sparse: bool = setting(
        False, "sparse weight encoding for pruned models (tflite-fp32, tflite-int8)"
    )
    data: str | None = setting(
        None, "calibrate and check on this data instead of the source's", metavar="SPEC"
    )
    max_eval: int | None = setting(
        None, "check parity on the first N eval images (default: all)", low=1
    )
    quantizer_recipe: str | None = setting(
        None,
        "tflite-recipe: a LiteRT Quantizer recipe JSON, or a compress sensitivity JSON (its "
        "mixed W8A8/W8A16 recipe)",
        metavar="FILE",
    )
    quantizer_calibration: str = setting(
        "min-max",
        "LiteRT Quantizer formats: how the calibration images' ranges merge: min-max (every "
        "image's extremes, as the converter does) or moving-average (the quantizer's default)",
        choices=CALIBRATION_RULES,
    )
    vela: dict | None = setting(None, "", flag="")
    max_accuracy_drop: float = setting(
        1.0,
        "int8 files: most accuracy, in percentage points, a file may lose against its source "
        "before parity fails (McNemar exact test, p < 0.05)",
        metavar="POINTS",
        low=0.0,
        high=100.0,
    )
    check_on: tuple[str, ...] = setting(
        (),
        "also check each file that passes parity here on these emulated CPUs (qemu-user): "
        "aarch64 = Cortex-A72 (edgesmith device setup aarch64), x86-64-avx2 = AVX2 without "
        "VNNI; the same parity rule on the target's kernels, accuracy and agreement with the "
        "native file recorded, never latency",
        metavar="TARGET[,TARGET]",
        choices=EMULATED_TARGETS,
    )

    firmware_images: int = setting(
        DEFAULT_FIRMWARE_IMAGES,
        "--target cortex-m4/-m7/-m55: eval images the firmware runs in QEMU (the first N)",
        metavar="N",
        low=1,
        high=MAX_FIRMWARE_IMAGES,
    )
    tflm_sources: str | None = setting(
        None,
        "--target cortex-m4/-m7/-m55: folder of the pinned TFLite Micro source archives "
        "(default: $EDGESMITH_TFLM_SOURCES; not needed once unpacked in the cache)",
        metavar="DIR",
    )
    keras3_export: bool = setting(
        True,
        "rebuild a Keras 3 source in tf_keras for the TFLite formats too, instead of Keras 3's "
        "own export",
        flag="--no-keras3-export",
        negate=True,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_opset(self.opset)
        self._check_firmware()
        if len(set(self.check_on)) != len(self.check_on):
            raise EdgesmithError(
                f"--check-on names a target twice. Received: {','.join(self.check_on)}"
            )
        if self.check_on and self.target is not None and self.target != "int8-only":
            raise EdgesmithError(
                f"--check-on runs files on emulated application CPUs "
                f"({', '.join(EMULATED_TARGETS)}); a --target {self.target} file runs on a "
                "microcontroller or NPU: drop one"
            )
        if self.vela is not None:
            from edgesmith.export.vela import VelaConfig

            VelaConfig.from_dict({"accelerator": "ethos-u55-128", **self.vela}, "vela")

    def _check_firmware(self) -> None:
        """Firmware settings need a firmware target, and the firmware reads int8 only."""
        if self.target in FIRMWARE_TARGETS:
            if self.io_dtype != "int8":
                raise EdgesmithError(
                    f"--target {self.target} builds a firmware with int8 input and output; "
                    f"drop --io-dtype {self.io_dtype}"
                )
            return
        for name, default in (("firmware_images", DEFAULT_FIRMWARE_IMAGES), ("tflm_sources", None)):
            if getattr(self, name) != default:
                raise EdgesmithError(
                    f"--{name.replace('_', '-')} applies to a firmware target "
                    f"({', '.join(FIRMWARE_TARGETS)}); --target is {self.target}"
                )


def max_opset() -> int:
    """The newest opset both the installed onnx and tf2onnx can write (read without TensorFlow)."""
    return min(_onnx_max_opset(), TF2ONNX_MAX_OPSET)


def _onnx_max_opset() -> int:
    try:
        import onnx.defs
    except ImportError:
        raise EdgesmithError("ONNX export needs onnx: pip install 'edgesmith[export]'") from None
    return int(onnx.defs.onnx_opset_version())


def check_opset(opset: int) -> None:
    """Refuse an opset outside what the installed onnx and tf2onnx can write.

    Raises:
        EdgesmithError: naming the opset and the valid range.
    """
    if isinstance(opset, bool) or not isinstance(opset, int):
        raise EdgesmithError(f"--opset must be a whole number. Received: {opset!r}")
    if opset == DEFAULT_OPSET:
        return
    high = max_opset()
    if not MIN_OPSET <= opset <= high:
        raise EdgesmithError(
            f"--opset {opset} cannot be written by the installed onnx/tf2onnx: expected "
            f"{MIN_OPSET}..{high} (onnx writes up to {_onnx_max_opset()}, tf2onnx up to "
            f"{TF2ONNX_MAX_OPSET})"
        )
