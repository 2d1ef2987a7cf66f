"""Arm Vela: compile an int8 .tflite for an Ethos-U NPU and read what Vela says about it.

Vela (``ethos-u-vela`` on PyPI, the ``npu`` extra) is the compiler every Ethos-U55/U65/U85
firmware uses: it replaces the operators the NPU runs with one ``ethos-u`` custom op and leaves
the rest for the CPU (TFLM). Its summary CSV holds its own performance estimate (cycles and
inference time at the system configuration's clock) and the SRAM and flash the network needs.
These are Arm's estimates, not a measurement on silicon: every record says so.

Vela runs in a child process, so its console output and its process-wide state stay out of
edgesmith's.
"""

from __future__ import annotations

import csv
import dataclasses
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from edgesmith.core.errors import CheckFailed, EdgesmithError

INSTALL_HINT = "Arm Vela is not installed: pip install 'edgesmith[npu]' (ethos-u-vela)"
LABEL = "Vela estimate"
NOTE = (
    "Arm Vela's performance model for the system configuration, not a measurement on an "
    "Ethos-U device (none is reachable from here)"
)
# The accelerators edgesmith ships a profile for, and Vela's defaults for each (vela.ini).
ACCELERATORS = {
    "ethos-u55-128": ("Ethos_U55_High_End_Embedded", "Shared_Sram"),
    "ethos-u55-256": ("Ethos_U55_High_End_Embedded", "Shared_Sram"),
    "ethos-u65-256": ("Ethos_U65_High_End", "Dedicated_Sram"),
    "ethos-u85-256": ("Ethos_U85_SYS_DRAM_Mid", "Dedicated_Sram_384KB"),
}
NPU_OP = "CUSTOM:ethos-u"
_COUNT = re.compile(r"^(CPU|NPU) operators = (\d+)")
TIMEOUT_S = 600
VELA_MAIN = "import sys; from ethosu.vela.vela import main; sys.exit(main())"


@dataclasses.dataclass(frozen=True)
class VelaConfig:
    """What Vela compiles for.

    Attributes:
        accelerator: Vela's ``--accelerator-config`` (``ethos-u55-128`` ...).
        system_config: a ``[System_Config.*]`` of Vela's ``Arm/vela.ini`` (None: Vela's
            default for the accelerator).
        memory_mode: a ``[Memory_Mode.*]`` of ``Arm/vela.ini`` (None: Vela's default).
        clock_mhz: the NPU clock, overriding the system configuration's (None: keep it).
    """

    accelerator: str
    system_config: str | None = None
    memory_mode: str | None = None
    clock_mhz: float | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "vela") -> VelaConfig:
        """Validate a profile's ``vela`` mapping (or export's options) field by field.

        Raises:
            EdgesmithError: naming the field and what was expected.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise EdgesmithError(
                f"{where}: unknown field(s) {', '.join(unknown)}: expected {', '.join(known)}"
            )
        accelerator = values.get("accelerator")
        if accelerator not in ACCELERATORS:
            raise EdgesmithError(
                f"{where}: accelerator must be one of {', '.join(ACCELERATORS)}. "
                f"Received: {accelerator!r}"
            )
        for name in ("system_config", "memory_mode"):
            value = values.get(name)
            if value is not None and not (isinstance(value, str) and value.isidentifier()):
                raise EdgesmithError(
                    f"{where}: {name} must be a section name of Vela's vela.ini (e.g. "
                    f"{ACCELERATORS[accelerator][0 if name == 'system_config' else 1]}). "
                    f"Received: {value!r}"
                )
        clock = values.get("clock_mhz")
        if clock is not None and (
            isinstance(clock, bool) or not isinstance(clock, (int, float)) or clock <= 0
        ):
            raise EdgesmithError(
                f"{where}: clock_mhz must be a positive number. Received: {clock!r}"
            )
        return cls(
            accelerator,
            values.get("system_config"),
            values.get("memory_mode"),
            None if clock is None else float(clock),
        )

    def resolved(self) -> VelaConfig:
        """The same config with Vela's defaults for the accelerator written in."""
        system, memory = ACCELERATORS[self.accelerator]
        return dataclasses.replace(
            self,
            system_config=self.system_config or system,
            memory_mode=self.memory_mode or memory,
        )

    def to_dict(self) -> dict[str, Any]:
        """The manifest's record of what Vela compiled for."""
        return dataclasses.asdict(self)


def vela_available() -> bool:
    """Whether ``ethos-u-vela`` can be imported here."""
    try:
        import ethosu.vela  # noqa: F401
    except ImportError:
        return False
    return True


def vela_version() -> str | None:
    """The installed Vela's version, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ethos-u-vela")
    except PackageNotFoundError:
        return None


def _arguments(model: Path, config: VelaConfig, out_dir: Path, ini: Path | None) -> list[str]:
    args = ["--accelerator-config", config.accelerator, "--config", "Arm/vela.ini"]
    if ini is not None:
        args += ["--config", str(ini), "--system-config", "edgesmith"]
    else:
        args += ["--system-config", str(config.system_config)]
    args += ["--memory-mode", str(config.memory_mode)]
    return [*args, "--output-dir", str(out_dir), str(model)]


def _system_section(name: str) -> dict[str, str]:
    """The keys of ``[System_Config.<name>]`` in Vela's own ``Arm/vela.ini`` (inherit resolved).

    Raises:
        EdgesmithError: when Vela's vela.ini has no such system configuration.
    """
    import configparser
    from importlib import resources

    parser = configparser.ConfigParser()
    parser.optionxform = str  # Vela's keys are case-sensitive (Sram_clock_scale ...)
    ini = resources.files("ethosu") / "config_files" / "Arm" / "vela.ini"
    parser.read_string(ini.read_text(encoding="utf-8"))
    section = f"System_Config.{name}"
    if not parser.has_section(section):
        known = [s.partition(".")[2] for s in parser.sections() if s.startswith("System_Config.")]
        raise EdgesmithError(
            f"vela system_config {name!r} is not in Vela's Arm/vela.ini: expected one of "
            f"{', '.join(known)}"
        )
    items = dict(parser.items(section))
    parent = items.pop("inherit", None)
    if parent:
        items = {**_system_section(parent.partition(".")[2]), **items}
    return items


def _clock_ini(config: VelaConfig, directory: Path) -> Path | None:
    """A vela.ini holding the system config with its clock replaced (None: clock unchanged).

    The section is copied whole rather than inherited: Vela's ``inherit`` drops keys of the
    parent section (its estimate changes even at the same clock).
    """
    if config.clock_mhz is None:
        return None
    items = _system_section(str(config.system_config))
    if float(items["core_clock"]) == config.clock_mhz * 1e6:
        return None
    items["core_clock"] = f"{config.clock_mhz * 1e6:.0f}"
    ini = directory / "edgesmith_vela.ini"
    body = "".join(f"{key}={value}\n" for key, value in items.items())
    ini.write_text(f"[System_Config.edgesmith]\n{body}", encoding="ascii")
    return ini


def _vela_problem(output: str, returncode: int = 1) -> str:
    if returncode < 0:  # killed by a signal: its last line is a warning, not the reason
        import signal

        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"Vela crashed ({name}) on the file"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["no message"])[-1]


def parse_counts(stdout: str) -> dict[str, int]:
    """``{"CPU": n, "NPU": m}`` from Vela's network summary."""
    counts = {}
    for line in stdout.splitlines():
        match = _COUNT.match(line.strip())
        if match:
            counts[match.group(1)] = int(match.group(2))
    return counts


def read_summary(csv_path: Path) -> dict[str, Any]:
    """The first row of Vela's summary CSV, numbers as floats."""
    with csv_path.open(newline="") as handle:
        row = next(csv.DictReader(handle))
    record: dict[str, Any] = {}
    for key, value in row.items():
        try:
            record[key] = float(value)
        except (TypeError, ValueError):
            record[key] = value
    return record


def cpu_fallback_ops(compiled: bytes) -> dict[str, int]:
    """Operators the compiled file leaves for the CPU, by name (everything but ``ethos-u``)."""
    from edgesmith.export.ops import tflite_op_report

    operators = tflite_op_report(compiled)["operators"]
    return {name: count for name, count in operators.items() if name != NPU_OP}


def compile_for_npu(model: Path, config: VelaConfig, out_dir: Path) -> dict[str, Any]:
    """Run Vela on ``model``; write ``model_vela.tflite`` into ``out_dir`` and describe it.

    Args:
        model: an int8 (or int16x8) .tflite file.
        config: the accelerator, system configuration, memory mode and clock.
        out_dir: receives ``model_vela.tflite`` (the file the NPU firmware runs).

    Returns:
        The ``vela`` record: ``label`` ("Vela estimate"), ``note``, the resolved config,
        ``npu_ops``, ``cpu_ops`` and ``cpu_fallback`` (op name -> count), ``npu_fraction``,
        ``cycles``, ``inference_ms``, ``sram_kb``, ``flash_kb`` (on- and off-chip flash),
        ``dram_kb``, ``clock_mhz``, ``vela_version`` and ``file`` (the compiled file's name).

    Raises:
        EdgesmithError: when Vela is not installed, or Vela fails on the file (its message).
    """
    if not vela_available():
        raise EdgesmithError(INSTALL_HINT)
    config = config.resolved()
    with tempfile.TemporaryDirectory(prefix="edgesmith-vela-") as tmp:
        work = Path(tmp)
        ini = _clock_ini(config, work)
        command = [sys.executable, "-c", VELA_MAIN]
        command += _arguments(Path(model).resolve(), config, work, ini)
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, cwd=work, timeout=TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            raise EdgesmithError(f"Vela did not finish {model} in {TIMEOUT_S} s") from None
        summaries = sorted(work.glob("*_summary_*.csv"))
        compiled = sorted(work.glob("*_vela.tflite"))
        if done.returncode != 0 or not summaries or not compiled:
            raise CheckFailed(
                f"{Path(model).name}: Vela cannot compile it for {config.accelerator}: "
                f"{_vela_problem(done.stdout + done.stderr, done.returncode)}"
            )
        summary = read_summary(summaries[0])
        data = compiled[0].read_bytes()
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / "model_vela.tflite").write_bytes(data)
    counts = parse_counts(done.stdout)
    fallback = cpu_fallback_ops(data)
    npu, cpu = counts.get("NPU", 0), counts.get("CPU", sum(fallback.values()))
    flash = summary["off_chip_flash_memory_used"] + summary["on_chip_flash_memory_used"]
    return {
        "label": LABEL,
        "note": NOTE,
        "config": config.to_dict(),
        "clock_mhz": summary["core_clock"] / 1e6,
        "npu_ops": npu,
        "cpu_ops": cpu,
        "cpu_fallback": fallback,
        "npu_fraction": npu / max(npu + cpu, 1),
        "cycles": int(summary["cycles_total"]),
        "inference_ms": summary["inference_time"] * 1000.0,
        "sram_kb": summary["sram_memory_used"],
        "flash_kb": flash,
        "dram_kb": summary["dram_memory_used"],
        "vela_version": vela_version(),
        "file": "model_vela.tflite",
        "file_bytes": len(data),
    }
