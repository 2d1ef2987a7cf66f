import pytest

from edgesmith.core.errors import EdgesmithError
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
    with pytest.raises(EdgesmithError, match="sees no GPU.*--accelerator auto"):
        plan_devices("gpu", [])


def test_unknown_device():
    with pytest.raises(EdgesmithError, match="accelerator must be one of"):
        plan_devices("tpu", [])


def test_this_machine_trains_on_what_it_has():
    from edgesmith.train.devices import make_strategy, visible_gpus

    plan = plan_devices("auto", visible_gpus())
    strategy = make_strategy(plan)
    assert strategy.num_replicas_in_sync >= 1


def test_multiworker_plan_reads_tf_config():
    from edgesmith.train.multiworker import tf_config

    text = tf_config(["127.0.0.1:2222", "127.0.0.1:2223"], 1)
    plan = plan_devices("auto", [], strategy="multiworker", tf_config=text)
    assert plan.strategy == "multiworker" and plan.worker_index == 1 and plan.num_workers == 2
    assert not plan.is_chief and plan_devices("auto", []).is_chief


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "needs TF_CONFIG in the environment"),
        ("{oops", "TF_CONFIG is malformed"),
        ('{"cluster": {}, "task": {}}', "TF_CONFIG is malformed"),
        (
            '{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}',
            "must list host:port",
        ),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
            "index below 1",
        ),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
            "must be a worker",
        ),
    ],
)
def test_multiworker_without_a_valid_tf_config(text, message):
    with pytest.raises(EdgesmithError, match=message):
        plan_devices("auto", [], strategy="multiworker", tf_config=text)


def test_tf_config_helper_checks_hosts():
    from edgesmith.train.multiworker import tf_config

    with pytest.raises(EdgesmithError, match="host:port"):
        tf_config(["localhost"], 0)
    with pytest.raises(EdgesmithError, match=r"index must be in \[0, 2\)"):
        tf_config(["a:1", "b:2"], 2)
