import re
import shutil
import subprocess

import pytest

from edgesmith.export.c_array import c_identifier, read_c_array, write_c_array


def test_c_array_round_trips_bytes_and_declares_length(tmp_path):
    data = bytes(range(256)) * 3 + b"\x00\xff\x10"
    names = write_c_array(data, tmp_path)
    assert names == ["model_data.cc", "model_data.h"]
    source = (tmp_path / "model_data.cc").read_text()
    header = (tmp_path / "model_data.h").read_text()
    assert read_c_array(source) == data
    assert f"g_model_data_len = {len(data)};" in source
    assert "alignas(16) const unsigned char g_model_data[]" in source
    assert "extern const unsigned char g_model_data[];" in header
    assert "extern const unsigned int g_model_data_len;" in header


@pytest.mark.skipif(shutil.which("xxd") is None, reason="xxd not installed")
def test_c_array_holds_what_xxd_i_writes(tmp_path):
    data = bytes((7 * i + 3) % 256 for i in range(1000))
    (tmp_path / "model.tflite").write_bytes(data)
    xxd = subprocess.run(
        ["xxd", "-i", "model.tflite"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    write_c_array(data, tmp_path)
    ours = (tmp_path / "model_data.cc").read_text()
    body = lambda text: re.findall(r"0x[0-9a-f]{2}", text[text.index("{") : text.index("}")])  # noqa: E731
    assert body(ours) == body(xxd)
    # same layout: 12 bytes a line, two-space indent
    assert ours.splitlines()[4] == xxd.splitlines()[1]


def test_identifier_like_xxd():
    assert c_identifier("model.tflite") == "model_tflite"
    assert c_identifier("1st-model") == "_1st_model"
