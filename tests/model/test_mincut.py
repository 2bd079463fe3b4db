"""The min-cut split equals brute force over every downset; the 3-tier DP equals brute force over prefix pairs."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper

from tests.support.onnx_models import make_model, residual_model
from tierml.model import mincut, partition


def random_dag(reads: list[tuple[int, int]]) -> onnx.ModelProto:
    """Node i adds two earlier tensors (index 0 = the input); all dangling tensors are summed into y."""
    names = ["x"]
    nodes = []
    for i, (a, b) in enumerate(reads):
        out = f"t{i}"
        nodes.append(helper.make_node("Add", [names[a % len(names)], names[b % len(names)]], [out], name=f"n{i}"))
        names.append(out)
    used = {t for n in nodes for t in n.input}
    dangling = [t for t in names[1:] if t not in used]
    nodes.append(helper.make_node("Sum", dangling, ["y"], name="sum"))
    return make_model(nodes, {"x": (1, 16)}, ["y"])


def costs(graph: partition.PartitionGraph, seed: int) -> tuple[list[float], list[float], dict[str, float]]:
    rng = np.random.default_rng(seed)
    n = len(graph.names)
    device = list(rng.uniform(0.5, 5.0, n))
    server = list(rng.uniform(0.05, 1.0, n))
    tensor = {t: float(rng.uniform(0.1, 6.0)) for t in graph.consumers}
    return device, server, tensor


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=2, max_size=9), st.integers(0, 10**6))
def test_min_cut_is_the_best_downset(reads, seed):
    graph = partition.partition_graph(random_dag(reads))
    device, server, tensor = costs(graph, seed)
    output = {"y": 0.7}
    cuts, exhaustive = graph.cuts()
    assert exhaustive
    best = mincut.brute_force(graph, cuts, device, server, tensor, output)
    found = mincut.min_cut(graph, device, server, tensor, output)
    assert abs(found.total_ms - best.total_ms) < 1e-9


def test_a_tensor_read_twice_is_paid_once():
    graph = partition.partition_graph(residual_model())
    n = len(graph.names)
    index = {name: i for i, name in enumerate(graph.names)}
    # conv2 and proj both read r1: a cut right after relu1 sends r1 once
    device = [0.0 if i <= index["relu1"] else 100.0 for i in range(n)]
    server = [0.0] * n
    tensor = {t: 10.0 for t in graph.consumers}
    tensor["x"] = 1000.0
    found = mincut.min_cut(graph, device, server, tensor)
    assert found.cut.tensors == ("r1",) and found.transfer_ms == 10.0


def test_three_tiers_match_brute_force_over_prefix_pairs():
    graph = partition.partition_graph(residual_model())
    rng = np.random.default_rng(3)
    n = len(graph.names)
    tiers = [list(rng.uniform(1, 5, n)), list(rng.uniform(0.3, 2, n)), list(rng.uniform(0.05, 0.5, n))]
    links = [{t: float(rng.uniform(0.5, 3)) for t in graph.consumers} for _ in range(2)]
    best = mincut.three_tier(graph, tiers, links, fixed_ms=(2.0, 20.0))
    prefixes = graph.prefixes()
    brute = float("inf")
    for a, b in itertools.combinations_with_replacement(range(n + 1), 2):
        total = (sum(tiers[0][:a]) + sum(tiers[1][a:b]) + sum(tiers[2][b:])
                 + sum(links[0][t] for t in prefixes[a].tensors) + (2.0 if prefixes[a].tensors else 0.0)
                 + sum(links[1][t] for t in prefixes[b].tensors) + (20.0 if prefixes[b].tensors else 0.0))
        brute = min(brute, total)
    assert abs(best.total_ms - brute) < 1e-9


def test_the_planner_takes_the_exact_cut_when_no_prefix_is_as_good():
    from tierml.hardware.estimate import Estimate, LatencyBreakdown, NodeTime
    from tierml.model.profile import analyze
    from tierml.plan.split import best_cut, chain_costs, rank

    profile = analyze(residual_model())

    def breakdown(ms: dict[str, float]) -> LatencyBreakdown:
        nodes = [NodeTime(node=n.name, op_type=n.op_type, seconds=ms.get(n.name, 0.0) / 1e3, bound="compute")
                 for n in profile.nodes]
        return LatencyBreakdown(total=Estimate(value=sum(ms.values()), unit="ms", method="catalogue"), nodes=nodes)

    # the projection is cheap on the device and dear on the server; the main branch the other way round:
    # the best head is {conv1, relu1, proj}, which no prefix of the execution order is
    head = breakdown({"conv2": 100.0, "conv3": 100.0})
    tail = breakdown({"proj": 1000.0})
    chain = rank(chain_costs(profile, head, tail, 1.0), lambda up, down: 10 + up / 1000)[0]
    best = best_cut(profile, head, tail, 1.0, lambda up, down: 10 + up / 1000)
    assert best.tensors == ("p", "r1") and best.head_ms == 0.0
    assert best.total_ms < 20 < chain.total_ms
