import pytest

from edgesmith.errors import EdgesmithError
from edgesmith.train.devices import plan_devices

GPU0 = "/physical_device:GPU:0"
GPU1 = "/physical_device:GPU:1"


def test_auto_picks_gpu_when_present_and_mirrors_several():
    assert plan_devices("auto", []).use_gpu is False
    one = plan_devices("auto", [GPU0])
    assert one.use_gpu and one.strategy == "default"
    two = plan_devices("auto", [GPU0, GPU1])
    assert two.strategy == "mirrored" and two.devices == (GPU0, GPU1)


def test_cpu_request_hides_gpus():
    plan = plan_devices("cpu", [GPU0])
    assert not plan.use_gpu and "requested" in plan.description


def test_gpu_request_without_gpu_fails_instead_of_falling_back():
    with pytest.raises(EdgesmithError, match="sees no GPU.*--device auto"):
        plan_devices("gpu", [])


def test_unknown_device():
    with pytest.raises(EdgesmithError, match="device must be one of"):
        plan_devices("tpu", [])


def test_this_machine_trains_on_what_it_has():
    from edgesmith.train.devices import make_strategy, visible_gpus

    plan = plan_devices("auto", visible_gpus())
    strategy = make_strategy(plan)
    assert strategy.num_replicas_in_sync >= 1
