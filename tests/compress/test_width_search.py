import functools

import pytest

from edgesmith.compress.config import ChannelPruneConfig, PruneConfig
from edgesmith.core.errors import EdgesmithError


@pytest.mark.parametrize(
    ("width", "size", "round_to", "expected"),
    [
        (64, 64, 8, 56),
        (40, 64, 8, 32),
        (11, 16, 8, 8),
        (8, 16, 8, None),
        (64, 64, 1, 56),
        (1, 8, 1, None),
    ],
)
def test_next_width(width, size, round_to, expected):
    from edgesmith.compress.width_search import next_width

    assert next_width(width, size, round_to) == expected


def _resnet8_counters():
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.train.zoo import build_model

    model = build_model("resnet8", (16, 16, 3), 5)
    plan = cp.analyse(model)

    def count(thin):
        def of(widths):
            cp.choose(model, plan, 0.0, "l1", 1, widths)
            return thin(model, plan)

        return of

    return plan, count(cp._thin_macs), count(cp._thin_params)


def _resnet8_plan():
    plan, macs_of, _ = _resnet8_counters()
    return plan, macs_of


def _resnet8_search(*, with_params=False):
    """resnet8's plan, its counters, and ``search(**targets)``: ``search_widths`` on that plan
    and MAC counter (and the parameter counter too, ``with_params``), widths rounded to 8."""
    from edgesmith.compress.width_search import search_widths

    plan, macs_of, params_of = _resnet8_counters()
    counters = {"macs_of": macs_of, "params_of": params_of if with_params else None}
    return plan, macs_of, params_of, functools.partial(search_widths, plan, round_to=8, **counters)


@pytest.mark.parametrize("name", ["resnet8", "dscnn"])
def test_counts_without_rebuilding_match_the_rebuilt_model(name):
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.tfkeras.model_stats import count_macs, count_params
    from edgesmith.train.zoo import build_model

    model = build_model(name, (16, 16, 3), 5)
    plan = cp.choose(model, cp.analyse(model), 0.4, "l1", 1)
    thin = cp.rebuild(model, plan)
    assert cp._thin_params(model, plan) == count_params(thin) < count_params(model)
    assert cp._thin_macs(model, plan) == count_macs(thin) < count_macs(model)


def test_search_shrinks_where_time_is_cheapest_to_save():
    """A fake clock where only the first group costs time: the search must take channels from
    it alone, and stop as soon as both targets hold."""
    from edgesmith.compress.width_search import search_widths

    plan, macs_of = _resnet8_plan()
    first = plan.prunable()[0]
    calls = []

    def measure(width_sets):
        calls.append(len(width_sets))
        return [0.2 + 0.8 * w[first] / 16 for w in width_sets]

    result = search_widths(
        plan, macs_of=macs_of, measure=measure, max_latency_ratio=0.65, round_to=8
    )
    sizes = {g: plan.groups[g].size for g in plan.prunable()}
    assert result.widths == {**sizes, first: 8}
    assert result.latency_ratio == pytest.approx(0.6)
    assert [s["width"] for s in result.steps] == [8]
    # the source alone; the current widths and one candidate per group; the pick confirmed
    assert calls == [1, 7, 1]


def test_parameters_count_in_a_step_cost():
    """Per MAC alone the search empties the stage-3 inner conv (few MACs, many weights); with
    parameters in the cost it takes the stage-1 one, which saves more time."""
    from edgesmith.compress.width_search import search_widths

    plan, macs_of, params_of = _resnet8_counters()
    names = {plan.groups[g].name: g for g in plan.prunable()}
    early, late = names["stage1_block1_conv1"], names["stage3_block1_conv1"]
    sizes = {g: plan.groups[g].size for g in plan.prunable()}

    def measure(width_sets):
        # only these two groups cost time: 0.3 for the early step, 0.08 for the late one.
        # Costs are scaled by size / width after the step (16/8 early, 64/56 late). Per MAC
        # removed (0.189 * 2 vs 0.035 * 1.14 of the total) the late step is the better buy;
        # per mean of MACs and parameters (0.109 * 2 vs 0.062 * 1.14) the early one is.
        return [
            1.0 - 0.3 * (w[early] < sizes[early]) - 0.08 * (w[late] < sizes[late])
            for w in width_sets
        ]

    per_mac = search_widths(plan, macs_of=macs_of, measure=measure, max_latency_ratio=0.95)
    both = search_widths(
        plan, macs_of=macs_of, params_of=params_of, measure=measure, max_latency_ratio=0.95
    )
    assert [s["group"] for s in per_mac.steps] == ["stage3_block1_conv1"]
    assert [s["group"] for s in both.steps] == ["stage1_block1_conv1"]
    assert params_of(both.widths) > params_of(per_mac.widths)


@pytest.mark.slow
def test_search_meets_a_mac_target_too():
    plan, macs_of, _, search = _resnet8_search()

    def measure(width_sets):  # latency proportional to MACs: any order is as good
        return [macs_of(w) / macs_of({}) for w in width_sets]

    lines = []
    result = search(
        measure=measure, max_latency_ratio=0.9, min_mac_reduction=0.5, report=lines.append
    )
    assert result.mac_ratio <= 0.5
    assert result.latency_ratio <= 0.9
    assert all(w % 8 == 0 for w in result.widths.values())
    assert len(lines) == len(result.steps) and lines[0].startswith("width search step 1: ")


def test_a_parameter_target_shrinks_the_weight_heavy_groups_after_the_latency_holds():
    """Only stage 1's inner conv costs time, so the latency holds after one step; the parameter
    target then takes channels where the weights are (stage 3), not from the stem or stage 2."""
    plan, _, params_of, search = _resnet8_search(with_params=True)
    names = {plan.groups[g].name: g for g in plan.prunable()}
    early = names["stage1_block1_conv1"]

    def measure(width_sets):
        return [0.5 + 0.5 * w[early] / 16 for w in width_sets]

    lines = []
    result = search(
        measure=measure, max_latency_ratio=0.8, min_param_reduction=0.4, report=lines.append
    )
    sizes = {g: plan.groups[g].size for g in plan.prunable()}
    assert result.steps[0]["group"] == "stage1_block1_conv1"
    assert {s["group"] for s in result.steps[1:]} <= {
        "stage3_block1_conv1",
        "stage3_block1_shortcut",
    }
    assert result.param_ratio == pytest.approx(params_of(result.widths) / params_of(sizes))
    assert result.param_ratio <= 0.6 < result.steps[-2]["param_ratio"]
    assert result.latency_ratio <= 0.8
    assert "parameters" in lines[-1]


def test_a_mac_target_is_spread_over_the_groups_not_taken_from_one():
    """With latency no object every step buys the same MACs per MAC; the cost's size / width
    scaling makes the last channels of a group dearer, so the MACs come from several groups
    (without it the stem alone is halved)."""
    plan, _, _, search = _resnet8_search()
    result = search(
        measure=lambda width_sets: [0.5] * len(width_sets),
        max_latency_ratio=0.8,
        min_mac_reduction=0.25,
    )
    assert result.mac_ratio <= 0.75
    assert all(w > plan.groups[g].size // 2 for g, w in result.widths.items()), result.widths
    assert sum(w < plan.groups[g].size for g, w in result.widths.items()) >= 4


@pytest.mark.parametrize(
    ("latency", "targets", "with_params", "max_steps", "error", "match"),
    [
        pytest.param(
            0.1, {"max_latency_ratio": 0.9, "min_param_reduction": 0.99}, True, None,
            EdgesmithError, r"^param_reduction 0.99 out of reach: .* of its parameters",
            id="missed-parameter-target", marks=pytest.mark.slow,
        ),
        pytest.param(
            0.1, {"max_latency_ratio": 0.9, "min_param_reduction": 0.5}, False, None,
            ValueError, "needs params_of", id="parameter-target-without-its-counter",
        ),
        pytest.param(
            0.99, {"max_latency_ratio": 0.5}, False, 3,
            EdgesmithError, "stopped after 3 steps at 0.99x", id="out-of-steps",
        ),
        pytest.param(
            0.1, {"max_latency_ratio": 0.9, "min_mac_reduction": 0.99}, False, None,
            EdgesmithError, r"^mac_reduction 0.99 out of reach: .* 0.10x", id="missed-mac-target",
        ),
        pytest.param(
            0.5, {"max_latency_ratio": 0.1}, False, None, EdgesmithError,
            "^max_latency_ratio 0.1 out of reach: .* 0.50x", id="unreachable-latency-target",
        ),
    ],
)  # fmt: skip
def test_a_search_that_cannot_meet_its_targets_is_refused(
    monkeypatch, latency, targets, with_params, max_steps, error, match
):
    """Every candidate measures ``latency``; the error names the target out of reach."""
    from edgesmith.compress import width_search

    _, _, _, search = _resnet8_search(with_params=with_params)
    if max_steps is not None:
        monkeypatch.setattr(width_search, "MAX_STEPS", max_steps)
    with pytest.raises(error, match=match):
        search(measure=lambda width_sets: [latency] * len(width_sets), **targets)


def test_a_source_that_meets_the_targets_is_left_whole():
    from edgesmith.compress.width_search import search_widths

    plan, macs_of = _resnet8_plan()
    result = search_widths(
        plan,
        macs_of=macs_of,
        measure=lambda width_sets: [0.5] * len(width_sets),
        max_latency_ratio=0.9,
    )
    assert result.steps == [] and result.mac_ratio == 1.0
    assert result.widths == {g: plan.groups[g].size for g in plan.prunable()}


def test_a_lucky_sample_is_confirmed_before_the_search_stops():
    """The chosen candidate's figure is the best of a noisy batch; a fresh measurement of the
    chosen widths alone must also meet the target, or the search goes on."""
    from edgesmith.compress.width_search import search_widths

    plan, macs_of = _resnet8_plan()
    first = plan.prunable()[0]
    calls = []

    def measure(width_sets):
        calls.append(len(width_sets))
        if len(width_sets) > 1:  # a batch of candidates: shrinking the first group looks fast
            return [1.0] + [0.5 if w[first] < 16 else 1.0 for w in width_sets[1:]]
        return [
            0.5
            if width_sets[0][first] <= 8 and macs_of(width_sets[0]) < macs_of({}) * 0.7
            else 0.95
        ]  # alone, the first step is not fast enough

    result = search_widths(
        plan, macs_of=macs_of, measure=measure, max_latency_ratio=0.6, round_to=8
    )
    assert len(result.steps) >= 2  # the first pick was re-timed, failed, and the search went on
    assert result.latency_ratio == 0.5
    assert calls[0] == 1 and calls[2] == 1  # the source alone; the first pick alone


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_latency_ratio": 0.5}, r"unknown PruneConfig key\(s\): max_latency_ratio"),
        ({"structure": "channels", "max_latency_ratio": 1.5}, "max_latency_ratio must be in"),
        (
            {"structure": "channels", "max_latency_ratio": 0.5, "sparsity": 0.3},
            "max_latency_ratio searches every width itself; leave out sparsity",
        ),
        (
            {"structure": "channels", "mac_reduction": 0.5, "param_reduction": 0.5},
            "param_reduction is a target of the width search; give max_latency_ratio too",
        ),
        (
            {"structure": "channels", "max_latency_ratio": 0.5, "param_reduction": 1.0},
            r"param_reduction must be in \[0.0, 1.0\)",
        ),
        (
            {"structure": "channels", "max_latency_ratio": 0.5, "latency_threads": 0},
            "latency_threads must be a whole number >= 1",
        ),
    ],
)
def test_bad_search_settings(values, message):
    with pytest.raises(EdgesmithError, match=message):
        PruneConfig.from_dict(values)


@pytest.mark.slow
def test_the_timer_converts_once_and_times_against_the_source():
    """The real clock: int8 files converted and timed on this machine (noisy on shared CI, so
    only loose bounds on the numbers)."""
    import numpy as np

    from edgesmith.compress import channel_pruning as cp
    from edgesmith.compress.width_search import TfliteTimer
    from edgesmith.train.zoo import build_model

    model = build_model("resnet8", (16, 16, 3), 5)
    plan = cp.analyse(model)
    sizes = {g: plan.groups[g].size for g in plan.prunable()}
    thin = {g: max(8, size // 4) for g, size in sizes.items()}
    calibration = np.random.default_rng(0).normal(size=(8, 16, 16, 3)).astype("float32")
    with TfliteTimer(model, plan, calibration, min_seconds=0.2) as timer:
        same, smaller = timer([sizes, thin])
        assert timer.file_for(thin) == timer.file_for(dict(thin))  # converted once
        assert timer.file_for(sizes) == timer.source_file
        folder = timer.file_for(thin).parent
        assert timer.file_for(thin).stat().st_size < 0.5 * timer.source_file.stat().st_size
    assert 0.5 < same < 2.0
    assert 0.0 < smaller < 2.0
    assert not folder.exists()


def test_prune_by_latency_end_to_end(digits_artifact, tmp_path, quiet, monkeypatch):
    """The search inside ``compress prune``, with a clock that charges latency by MACs."""
    from edgesmith.compress import width_search
    from edgesmith.compress.pruning import prune
    from edgesmith.tfkeras.model_io import load_keras_model

    sizes: list[int] = []

    def by_macs(self, width_sets):
        from edgesmith.compress import channel_pruning as cp

        def macs(widths):
            cp.choose(self.model, self.plan, 0.0, "l1", 1, widths)
            return cp._thin_macs(self.model, self.plan)

        sizes.append(self.source_file.stat().st_size)
        full = macs({})
        return [macs(w) / full for w in width_sets]

    monkeypatch.setattr(width_search.TfliteTimer, "__call__", by_macs)
    config = ChannelPruneConfig(max_latency_ratio=0.6, param_reduction=0.5, round_to=8, epochs=1)
    lines = []
    artifact = prune(digits_artifact, config, tmp_path / "fast", report=lines.append)
    search = artifact.manifest.pruning.width_search
    assert sizes and sizes[0] > 1000  # the source really was converted to .tflite
    assert search.latency_ratio <= 0.6
    assert search.latency_ratio == search.mac_ratio  # the confirming measurement
    metrics = artifact.metrics
    assert metrics.mac_reduction == pytest.approx(1 - search.mac_ratio, abs=1e-4)
    assert search.param_ratio <= 0.5
    assert metrics.param_reduction == pytest.approx(1 - search.param_ratio, abs=1e-4)
    widths = artifact.manifest.pruning.widths
    assert any(f"--widths {widths}" in line for line in lines)
    # the printed widths rebuild the same model without a search
    from edgesmith.compress import channel_pruning as cp
    from edgesmith.compress.finetune import load_source

    source = load_source(digits_artifact)
    again, _ = cp.plan_for(source.model, ChannelPruneConfig(widths=widths))
    assert again.summary() == metrics.channels
    model, _ = load_keras_model(artifact.model_path)
    channels = metrics.channels
    assert model.get_layer("stage3_block1_conv1").filters == channels["stage3_block1_conv1"][1]
    assert all(after % 8 == 0 for _, after in channels.values())
