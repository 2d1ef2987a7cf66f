"""train and import refuse a bad input before TensorFlow loads, naming it."""

import pytest

from edgesmith.core.errors import EdgesmithError
from edgesmith.train.config import ImportConfig, TrainConfig
from edgesmith.train.prechecks import check_import_inputs, check_train_inputs


def test_train_refuses_a_bad_spec_and_a_used_folder(tmp_path):
    with pytest.raises(EdgesmithError, match="nosuch"):
        check_train_inputs(TrainConfig(data="nosuch:x"), tmp_path / "a")
    used = tmp_path / "used"
    used.mkdir()
    (used / "file").write_text("x")
    with pytest.raises(EdgesmithError, match="used"):
        check_train_inputs(TrainConfig(data="digits"), used)
    check_train_inputs(TrainConfig(data="digits"), used, resume=True)  # resuming: its own folder


def test_train_refuses_a_missing_model_file(tmp_path):
    with pytest.raises(EdgesmithError, match="missing.keras"):
        check_train_inputs(
            TrainConfig(data="digits", model=str(tmp_path / "missing.keras")), tmp_path / "o"
        )


def test_import_config_needs_a_model_and_data_and_checks_the_normalization():
    with pytest.raises(TypeError):
        ImportConfig(data="digits")  # a required field: the CLI marks its flag required
    with pytest.raises(EdgesmithError, match="bogus"):
        ImportConfig(model="m.keras", data="digits", normalization="bogus")
    assert ImportConfig(model="m.keras", data="digits", normalization="standard").normalization


def test_import_refuses_a_missing_model_file(tmp_path):
    config = ImportConfig(model=str(tmp_path / "missing.h5"), data="digits")
    with pytest.raises(EdgesmithError, match="missing.h5"):
        check_import_inputs(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()
