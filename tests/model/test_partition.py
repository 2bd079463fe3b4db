"""Cutting ONNX graphs: valid cuts are tensor sets, head -> tail reproduces the full model on every one."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.support.onnx_models import make_model, residual_model
from tests.support.pretrained import MODELS, fetch
from tests.support.references import full_outputs
from tierml.errors import TiermlError
from tierml.model import partition
from tierml.model.shapes import dummy_inputs


def if_model() -> onnx.ModelProto:
    """An If whose branches read `h`, made upstream, as an outer-scope name (not a listed input)."""
    then_graph = helper.make_graph([helper.make_node("Relu", ["h"], ["t_out"])], "then", [],
                                   [helper.make_tensor_value_info("t_out", TensorProto.FLOAT, [1, 4])])
    else_graph = helper.make_graph([helper.make_node("Neg", ["h"], ["e_out"])], "else", [],
                                   [helper.make_tensor_value_info("e_out", TensorProto.FLOAT, [1, 4])])
    nodes = [
        helper.make_node("Sigmoid", ["x"], ["h"], name="sig"),
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0, name="sum"),
        helper.make_node("Greater", ["s", "zero"], ["cond"], name="gt"),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_graph, else_branch=else_graph, name="if"),
    ]
    return make_model(nodes, {"x": (1, 4)}, ["y"], {"zero": np.zeros((), np.float32)})


def test_crossing_sets_of_a_residual_block():
    graph = partition.partition_graph(residual_model())
    index = {name: i for i, name in enumerate(graph.names)}
    assert graph.cut({index["conv1"], index["relu1"]}).tensors == ("r1",)
    inside = graph.cut({index[n] for n in ("conv1", "relu1", "conv2", "relu2")})
    assert inside.tensors == ("r1", "r2") and inside.nbytes == 2 * 8 * 8 * 8 * 4
    assert graph.cut(set()).tensors == ("x",)  # server-only sends the input
    assert graph.cut(range(len(graph.names))).tensors == ()  # device-only sends nothing


def test_every_downset_of_a_residual_block_is_found_and_runs():
    model = residual_model()
    graph = partition.partition_graph(model)
    cuts, exhaustive = graph.cuts()
    # 3 main-branch nodes x 1 projection inside the block: 4 x 2 head states there, 3 more than the prefixes
    assert exhaustive and len(cuts) == len(graph.names) + 1 + 3 == 15
    feeds = dummy_inputs(graph.inputs)
    reference = full_outputs(model, feeds, optimization="none")
    for cut in cuts:  # bitwise equal without ORT's fusions
        assert partition.verify(graph, cut, feeds, reference, optimization="none").max_abs == 0.0


def test_a_head_that_skips_a_producer_is_rejected():
    graph = partition.partition_graph(residual_model())
    index = {name: i for i, name in enumerate(graph.names)}
    with pytest.raises(TiermlError, match="reads the output of tail node 'conv1'"):
        graph.cut({index["relu1"]})


def test_outer_scope_reads_of_an_if_body_cross_the_cut():
    model = if_model()
    graph = partition.partition_graph(model)
    index = {name: i for i, name in enumerate(graph.names)}
    cut = graph.cut({index["sig"], index["sum"], index["gt"]})
    assert cut.tensors == ("cond", "h")  # h is read only inside the branches
    for x in (np.ones((1, 4), np.float32), -np.ones((1, 4), np.float32)):
        feeds = {"x": x}
        assert partition.verify(graph, cut, feeds, full_outputs(model, feeds)).max_abs == 0.0


def test_random_topological_orders_reach_other_downsets():
    graph = partition.partition_graph(residual_model())
    every = {c.head for c in graph.cuts()[0]}
    reached = {c.head for seed in range(20) for c in graph.prefixes(graph.random_order(seed))}
    assert reached <= every and len(reached) > len(graph.prefixes())


def test_shape_chains_fold_away_and_do_not_cross():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Shape", ["r"], ["shape"], name="shape"),
        helper.make_node("Reshape", ["r", "shape"], ["y"], name="reshape"),
    ]
    graph = partition.partition_graph(make_model(nodes, {"x": ("n", 4)}, ["y"]), {None: (2, 4)})
    assert graph.names == ["relu", "reshape"]
    assert [c.tensors for c in graph.prefixes()] == [("x",), ("r",), ()]


# Small inputs keep the check quick; every architecture is the same at any size (opennsfw's is fixed at 224).
SHAPES = {"ppocr-det": (1, 3, 64, 64), "ppocr-rec": (1, 3, 48, 80), "ppocr-cls": (1, 3, 48, 96),
          "yolov8n": (1, 3, 64, 64), "opennsfw": (1, 224, 224, 3)}
# Checked on every valid cut: a MobileNet-style CNN, a transformer and a ResNet. The FPN/PAN necks of det and
# yolov8n give them over 160,000 downsets each, so those two are checked on prefixes of several orders.
EVERY_CUT = {"ppocr-cls", "ppocr-rec", "opennsfw"}


@pytest.mark.slow
@pytest.mark.parametrize("key", list(SHAPES))
def test_every_cut_of_a_real_pretrained_model_matches_the_full_model(key):
    model = onnx.load(fetch(key))
    graph = partition.partition_graph(model, {None: SHAPES[key]})
    cuts, exhaustive = graph.cuts(limit=3000)
    assert exhaustive == (key in EVERY_CUT), f"{MODELS[key].title}: {len(cuts)} cuts enumerated"
    if not exhaustive:  # every prefix of the model's order and of 3 random topological orders
        cuts = list({c.head: c for seed in range(3) for c in [*cuts, *graph.prefixes(graph.random_order(seed))]}
                    .values())
    feeds = dummy_inputs(graph.inputs)
    reference = full_outputs(model, feeds)
    checks = [partition.verify(graph, cut, feeds, reference) for cut in cuts]
    worst = max(c.max_rel for c in checks)
    print(f"{key}: {len(cuts)} cuts ({'every downset' if exhaustive else 'prefixes of 4 orders'}), "
          f"worst relative error {worst:.2e}, worst absolute error {max(c.max_abs for c in checks):.2e}")
    assert worst <= 1e-5, f"{MODELS[key].title}: {len(cuts)} cuts, worst relative error {worst:.2e}"
