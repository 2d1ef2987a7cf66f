"""A device profile's ``emulate`` key: which emulated CPU stands in for the device's.

Validated like every other profile key (one line, exit 2); read by ``build --check-on-emulated``
and never handed to the device itself.
"""

from __future__ import annotations

import pytest

from edgesmith.core.emulated import EMULATED_TARGETS
from edgesmith.core.errors import EdgesmithError
from edgesmith.core.profiles import DeviceProfile, load_profile

BASE = {"name": "pi", "runtime": "litert", "formats": ["tflite-int8"]}


def test_arm64_linux_is_emulated_as_aarch64_and_the_x86_profiles_run_natively():
    assert load_profile("arm64-linux").emulate == "aarch64"
    assert load_profile("cpu-x86").emulate is None
    assert load_profile("cpu-x86-onnx").emulate is None


def test_the_core_names_the_same_targets_as_the_runtime():
    from edgesmith.runtime.emulation import TARGETS

    assert EMULATED_TARGETS == TARGETS


def test_an_unknown_target_is_one_line_listing_the_targets():
    with pytest.raises(EdgesmithError) as caught:
        DeviceProfile.from_dict({**BASE, "emulate": "riscv64"})
    message = str(caught.value)
    assert message == (
        "device profile 'pi': emulate must be one of x86-64-avx2, aarch64 or null. "
        "Received: 'riscv64'"
    )


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"runtime": "onnxruntime", "formats": ["onnx"], "provider": "tensorrt"}, "tensorrt"),
        ({"target": "tflm"}, "for target tflm"),
    ],
)
def test_emulate_needs_a_cpu_profile(values, match):
    with pytest.raises(EdgesmithError, match=f"runs the CPU kernels only; .*{match}"):
        DeviceProfile.from_dict({**BASE, "emulate": "aarch64", **values})


def test_a_bad_key_in_a_profile_file_exits_2_on_one_line(run_cli, tmp_path, fixtures_dir):
    profile = tmp_path / "pi.yaml"
    profile.write_text("name: pi\nruntime: litert\nformats: [tflite-int8]\nemulate: arm\n")
    code, _, err = run_cli("bench", fixtures_dir / "int8.tflite", "--device", profile)
    assert code == 2 and err.count("\n") == 1
    assert "emulate must be one of x86-64-avx2, aarch64 or null. Received: 'arm'" in err


def test_the_device_never_gets_the_key_and_the_host_keeps_it():
    profile = load_profile("arm64-linux")
    assert "emulate" not in profile.device_dict()  # an older edgesmith on the device refuses it
    assert DeviceProfile.from_dict(profile.to_dict()) == profile


@pytest.fixture
def fixtures_dir():
    from pathlib import Path

    return Path(__file__).parents[1] / "runtime" / "fixtures"
