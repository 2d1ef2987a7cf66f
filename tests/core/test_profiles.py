from pathlib import Path

import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.core.profiles import DeviceProfile, load_profile, shipped_profiles

ETHOS_U = ["ethos-u55-128", "ethos-u55-256", "ethos-u65-256", "ethos-u85-256"]
SHIPPED = sorted(
    [
        "arm64-linux",
        "cortex-m4",
        "cortex-m7",
        "cortex-m55",
        "cpu-x86",
        "cpu-x86-onnx",
        "int8-npu",
        "jetson-gpu",
        "mcu",
        *ETHOS_U,
    ]
)


def test_every_shipped_profile_loads_and_round_trips():
    assert shipped_profiles() == SHIPPED
    for name in SHIPPED:
        profile = load_profile(name)
        assert profile.name == name
        assert DeviceProfile.from_dict(profile.to_dict()) == profile


def test_profiles_map_onto_runtime_options():
    assert load_profile("mcu").runtime_options()["xnnpack"] is False
    assert load_profile("mcu").budgets.max_size_kb == 100 and load_profile("mcu").target == "tflm"
    assert load_profile("arm64-linux").runtime_options()["threads"] == 4
    assert load_profile("jetson-gpu").runtime_options()["provider"] == "tensorrt"
    assert load_profile("int8-npu").formats == ("tflite-int8",)


def test_profile_formats_exist_in_the_export_stage():
    from edgesmith.core.profiles import FORMATS as PROFILE_FORMATS
    from edgesmith.export.formats import FORMATS

    for names in PROFILE_FORMATS.values():
        assert set(names) <= set(FORMATS)


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(EdgesmithError, match="unknown device profile 'rpi': expected one of arm64"):
        load_profile("rpi")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("runtime: tvm\nformats: [onnx]\n", "runtime must be one of litert, onnxruntime"),
        ("runtime: litert\nformats: [onnx]\n", "formats for litert must be among"),
        ("runtime: onnxruntime\nprovider: xnnpack\nformats: [onnx]\n", "provider for onnxruntime"),
        ("runtime: litert\nformats: [tflite-int8]\nthreads: 0\n", "threads must be a whole"),
        ("runtime: litert\nformats: [tflite-int8]\ntarget: gpu\n", "target must be one of"),
        (
            "runtime: litert\nformats: [tflite-int8]\nbudgets: {max_size_kb: -1}\n",
            "budget max_size_kb must be a positive number",
        ),
        (
            "runtime: litert\nformats: [tflite-int8]\nbudgets: {min_accuracy: 85}\n",
            "min_accuracy is a fraction",
        ),
        (
            "runtime: litert\nformats: [tflite-int8]\nbudgets: {min_npu_ops: 42}\n",
            "min_npu_ops is a fraction",
        ),
        (
            "runtime: litert\nformats: [tflite-int8]\nbudgets: {flash_kb: 1}\n",
            r"unknown Budgets key\(s\): flash_kb",
        ),
        (
            "runtime: litert\nformats: [tflite-int8]\ncolour: red\n",
            r"unknown DeviceProfile key\(s\): colour",
        ),
    ],
)
def test_bad_fields_are_named(tmp_path, text, message):
    path = tmp_path / "board.yaml"
    path.write_text(text)
    with pytest.raises(EdgesmithError, match=message):
        load_profile(path)


def test_user_profile_takes_its_file_name(tmp_path):
    path = tmp_path / "my-board.yaml"
    path.write_text(
        "runtime: litert\nprovider: delegate:/opt/npu.so\nformats: [tflite-int8]\n"
        "affinity: [2, 3]\n"
    )
    profile = load_profile(path)
    assert profile.name == "my-board" and profile.affinity == (2, 3)
    options = profile.runtime_options(allow_delegate=True)
    assert options["provider"] == "delegate:/opt/npu.so"


def test_a_profile_naming_a_delegate_needs_explicit_permission(tmp_path):
    path = tmp_path / "board.yaml"
    path.write_text("runtime: litert\nprovider: delegate:/opt/npu.so\nformats: [tflite-int8]\n")
    with pytest.raises(EdgesmithError, match="/opt/npu.so.*--allow-delegate"):
        load_profile(path).runtime_options()


def test_bench_refuses_a_profile_delegate_without_allow_delegate(tmp_path, capsys):
    from edgesmith.app.cli import main

    fixtures = Path(__file__).resolve().parents[1] / "runtime" / "fixtures"
    path = tmp_path / "board.yaml"
    path.write_text("runtime: litert\nprovider: delegate:/opt/npu.so\nformats: [tflite-int8]\n")
    code = main(["bench", str(fixtures / "int8.tflite"), "--device", str(path), "--quiet"])
    assert code == 2
    assert "--allow-delegate" in capsys.readouterr().err
    # Allowed, the delegate is tried (and this one does not exist): still exit 2, naming it.
    code = main(["bench", str(fixtures / "int8.tflite"), "--device", str(path), "--allow-delegate"])
    assert code == 2
    assert "cannot load the delegate /opt/npu.so" in capsys.readouterr().err


@pytest.mark.parametrize("name", ETHOS_U)
def test_ethos_u_profiles_hold_vela_settings_and_npu_budgets(name):
    profile = load_profile(name)
    assert profile.target == name and profile.formats == ("tflite-int8",)
    assert set(profile.vela) == {"system_config", "memory_mode", "clock_mhz"}
    budgets = profile.budgets
    assert budgets.max_sram_kb and budgets.max_flash_kb and budgets.max_latency_ms
    assert 0 < budgets.min_npu_ops <= 1


def test_vela_settings_are_overridable_and_checked(tmp_path):
    path = tmp_path / "u55-slow.yaml"
    path.write_text(
        "runtime: litert\nprovider: builtin\nformats: [tflite-int8]\ntarget: ethos-u55-128\n"
        "vela: {system_config: Ethos_U55_Deep_Embedded, memory_mode: Shared_Sram, "
        "clock_mhz: 200}\n"
    )
    assert load_profile(path).vela["clock_mhz"] == 200
    path.write_text(
        "runtime: litert\nformats: [tflite-int8]\ntarget: tflm\nvela: {clock_mhz: 200}\n"
    )
    with pytest.raises(EdgesmithError, match="vela settings need an Ethos-U target"):
        load_profile(path)
    path.write_text(
        "runtime: litert\nformats: [tflite-int8]\ntarget: ethos-u55-128\nvela: {clock: 2}\n"
    )
    with pytest.raises(EdgesmithError, match="vela must be a mapping of system_config"):
        load_profile(path)
