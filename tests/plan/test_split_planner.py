"""One split planner: the placement scorer's profile view and `tierml split`'s partition view choose alike."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper

from tests.support.onnx_models import make_model, residual_model
from tierml.hardware.estimate import Estimate, LatencyBreakdown, NodeTime
from tierml.hardware.transfer import LinkState
from tierml.model import partition
from tierml.model.profile import ModelProfile, analyze
from tierml.plan import split


def chain_model() -> onnx.ModelProto:
    """x -> conv1 -> relu1 -> pool -> conv2 -> relu2 -> gap -> flatten -> fc: one tensor crosses any cut."""
    rng = np.random.default_rng(0)
    weights = {"w1": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
               "w2": rng.standard_normal((16, 8, 3, 3)).astype(np.float32),
               "fc": rng.standard_normal((16, 4)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["m"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("Conv", ["m", "w2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("MatMul", ["f", "fc"], ["logits"], name="fc")]
    return make_model(nodes, {"x": (1, 3, 8, 8)}, ["logits"], weights)


def breakdown(profile: ModelProfile, ms: list[float]) -> LatencyBreakdown:
    nodes = [NodeTime(node=n.name, op_type=n.op_type, seconds=t / 1e3, bound="compute")
             for n, t in zip(profile.nodes, ms, strict=True)]
    return LatencyBreakdown(total=Estimate(value=sum(ms), unit="ms", method="catalogue"), nodes=nodes)


times = st.lists(st.floats(0.01, 50.0), min_size=8, max_size=8)


@settings(max_examples=60, deadline=None)
@given(times, times, st.floats(0.05, 100.0), st.floats(0.0, 200.0))
def test_the_planner_picks_the_chain_scans_cut_on_a_chain(device, server, mbps, rtt):
    profile = analyze(chain_model())
    network = LinkState(mbps, mbps, rtt).time_ms
    found = split.best_cut(profile, breakdown(profile, device), breakdown(profile, server), 1.0, network)
    # the chain scan as the planner always defined it: after each node but the last, the one tensor it makes crosses
    sizes = [n.output_bytes for n in profile.nodes]
    totals = [sum(device[:k + 1]) + network(sizes[k], 0) + sum(server[k + 1:]) for k in range(len(sizes) - 1)]
    best = min(totals)
    tied = [k for k, total in enumerate(totals) if total <= best * (1 + 1e-9)]  # same cost up to rounding
    assert found.after in {profile.nodes[k].name for k in tied}
    assert found.up_bytes == sizes[next(k for k in tied if profile.nodes[k].name == found.after)]
    assert found.total_ms == pytest.approx(best, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.01, 20.0), min_size=11, max_size=11), st.lists(st.floats(0.01, 20.0), min_size=11,
                                                                            max_size=11), st.floats(0.01, 50.0))
def test_the_profile_and_partition_views_find_the_same_min_cut(device, server, mbps):
    model = residual_model()
    profile, graph = analyze(model), partition.partition_graph(model)
    assert [n.name for n in profile.nodes] == graph.names
    network = LinkState(mbps, mbps, 30.0).time_ms
    exact = split.exact_cost(profile, breakdown(profile, device), breakdown(profile, server), 1.0,
                             lambda up, down: network(up, 0))
    cut = split.min_cut(graph, device, server, lambda up, down: network(up, 0))
    if exact is None:  # one tier does it all
        assert len(cut.head) in (0, len(graph.names))
    else:
        assert exact.tensors == cut.tensors and exact.cut == graph.names[max(cut.head)]
        assert exact.up_bytes == cut.nbytes


def test_a_device_only_answer_pays_no_link_and_ties_keep_their_order():
    costs = [split.CutCost("a", 5.0, 0.0, 0, local=True), split.CutCost("b", 1.0, 2.0, 1000),
             split.CutCost("c", 5.0, 0.0, 0, local=True)]
    ranked = split.rank(costs, lambda up, down: 2.0 + up / 1000)
    assert [b.cut for b in ranked] == ["a", "c", "b"]
    assert ranked[0].network_ms == 0.0 and ranked[0].encoding == "none" and ranked[2].network_ms == 3.0
    assert ranked[2].rtt_ms == 2.0 and ranked[2].slowest_stage_ms == 2.0
