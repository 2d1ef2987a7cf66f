"""``edgesmith zoo list`` and ``zoo get``: one line and exit 2 for bad input."""

import json

NAMES = ("resnet8-cifar10", "resnet8-thin-cifar10")


def test_zoo_commands(run_cli, tmp_path):
    code, out, _ = run_cli("zoo", "list")
    assert code == 0 and all(name in out for name in NAMES) and "88.40%" in out
    code, out, _ = run_cli("zoo", "list", "--json")
    assert code == 0 and [e["name"] for e in json.loads(out)] == list(NAMES)
    code, out, err = run_cli("zoo", "get", "resnet8-thin-cifar10", "--out", tmp_path / "t")
    assert code == 0 and out.strip() == str(tmp_path / "t") and "86.56%" in err
    code, out, err = run_cli(
        "zoo", "get", "resnet8-cifar10", "--format", "tflite-int8", "--out", tmp_path / "j",
        "--json", "--quiet",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["technique"] == "tflite-int8" and err == ""
    code, _, err = run_cli("zoo", "get", "resnet8-thin-cifar10", "--out", tmp_path / "t")
    assert code == 2 and err.count("\n") == 1 and "is not empty" in err
    code, _, err = run_cli("zoo", "get", "x", "--out", tmp_path / "x")
    assert code == 2 and "no pretrained model 'x'" in err
