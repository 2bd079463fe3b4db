"""MACs and FLOPs per op against hand formulas, on single-node ONNX graphs."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from tests.support.onnx_models import make_model
from tierml.model.profile import analyze

rng = np.random.default_rng(0)


def w(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def only_node(model, shapes=None):
    profile = analyze(model, shapes)
    live = [n for n in profile.nodes if not n.folded]
    assert len(live) == 1
    return live[0]


@pytest.mark.parametrize(("cin", "cout", "group", "k", "stride", "dilation", "hw"), [
    (3, 16, 1, 3, 1, 1, 32),      # dense
    (16, 16, 16, 3, 1, 1, 20),    # depthwise
    (32, 64, 4, 3, 2, 1, 17),     # grouped, strided, odd size
    (8, 8, 1, 3, 1, 2, 15),       # dilated
    (4, 12, 1, 1, 1, 1, 9),       # pointwise
])
def test_conv_macs(cin, cout, group, k, stride, dilation, hw):
    pad = dilation * (k // 2)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=group, strides=[stride] * 2,
                            dilations=[dilation] * 2, pads=[pad] * 4)
    n = only_node(make_model([node], {"x": (2, cin, hw, hw)}, ["y"], {"w": w(cout, cin // group, k, k),
                                                                     "b": w(cout)}))
    out = (hw + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    assert n.macs == 2 * cout * out * out * (cin // group) * k * k
    assert n.other_flops == 2 * cout * out * out  # bias
    assert n.params == cout * (cin // group) * k * k + cout
    assert n.output_bytes == 2 * cout * out * out * 4
    expected = ("conv_depthwise" if group == cin == cout else "conv_narrow" if group == 1 and cin < 16
                else "conv_pointwise" if k == 1 else "conv")
    assert n.op_class == expected


def test_conv_transpose_macs():
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])
    n = only_node(make_model([node], {"x": (1, 8, 10, 10)}, ["y"], {"w": w(8, 4, 3, 3)}))
    assert n.macs == 1 * 8 * 10 * 10 * 4 * 3 * 3  # every input element scatters into Cout x k x k outputs


def test_gemm_with_transpose_and_bias():
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], transA=1, transB=1)
    n = only_node(make_model([node], {"a": (64, 5)}, ["y"], {"b": w(7, 64), "c": w(7)}))
    assert n.macs == 5 * 7 * 64
    assert n.other_flops == 5 * 7


@pytest.mark.parametrize(("a", "b", "macs"), [
    ((2, 3, 4, 5), (2, 3, 5, 6), 2 * 3 * 4 * 6 * 5),  # batched
    ((2, 1, 4, 5), (3, 5, 6), 2 * 3 * 4 * 6 * 5),     # broadcast batch
    ((5,), (5, 6), 6 * 5),                            # vector x matrix
    ((4, 5), (5,), 4 * 5),                            # matrix x vector
])
def test_matmul_macs(a, b, macs):
    node = helper.make_node("MatMul", ["a", "b"], ["y"])
    assert only_node(make_model([node], {"a": a, "b": b}, ["y"])).macs == macs


def test_einsum_batched_contraction_and_three_operands():
    bmm = helper.make_node("Einsum", ["a", "b"], ["y"], equation="bij,bjk->bik")
    assert only_node(make_model([bmm], {"a": (3, 4, 5), "b": (3, 5, 6)}, ["y"])).macs == 3 * 4 * 5 * 6
    chain = helper.make_node("Einsum", ["a", "b", "c"], ["y"], equation="ij,jk,kl->il")
    n = only_node(make_model([chain], {"a": (2, 3), "b": (3, 4), "c": (4, 5)}, ["y"]))
    assert n.macs == 2 * 3 * 4 + 2 * 4 * 5  # (ab) first, then (ab)c
    assert "pairwise" in n.note
    ellipsis = helper.make_node("Einsum", ["a", "b"], ["y"], equation="...ij,...jk->...ik")
    assert only_node(make_model([ellipsis], {"a": (2, 3, 4, 5), "b": (2, 3, 5, 6)}, ["y"])).macs == 2 * 3 * 4 * 5 * 6


def test_attention_op_opset23():
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"])
    model = make_model([node], {"q": (2, 4, 10, 16), "k": (2, 4, 12, 16), "v": (2, 4, 12, 8)}, ["y"], opset=23)
    model.ir_version = 10
    n = only_node(model)
    assert n.macs == 2 * 4 * 10 * 12 * (16 + 8)


def test_lstm_macs():
    hidden, inp, seq, batch = 32, 20, 7, 2
    node = helper.make_node("LSTM", ["x", "W", "R"], ["y"], hidden_size=hidden)
    n = only_node(make_model([node], {"x": (seq, batch, inp)}, ["y"],
                             {"W": w(1, 4 * hidden, inp), "R": w(1, 4 * hidden, hidden)}))
    assert n.macs == seq * batch * 4 * hidden * (inp + hidden)


def test_elementwise_pool_softmax_flops():
    nodes = [helper.make_node("Add", ["x", "x"], ["a"]),
             helper.make_node("MaxPool", ["a"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["p"], ["g"]),
             helper.make_node("Softmax", ["g"], ["s"], axis=1)]
    profile = analyze(make_model(nodes, {"x": (1, 3, 8, 8)}, ["s"]))
    flops = {n.op_type: n.other_flops for n in profile.nodes}
    assert flops == {"Add": 192, "MaxPool": 48 * 4, "GlobalAveragePool": 48, "Softmax": 3 * 5}
    assert profile.macs == 0


def test_unknown_op_is_counted_and_noted():
    node = helper.make_node("Celu", ["x"], ["y"])  # has a formula
    assert only_node(make_model([node], {"x": (10,)}, ["y"])).other_flops == 30
    odd = helper.make_node("Det", ["x"], ["y"])  # no formula: 1 per output element, with a note
    n = only_node(make_model([odd], {"x": (4, 3, 3)}, ["y"]))
    assert n.other_flops == 4
    assert "no cost formula" in n.note


def test_contrib_attention_with_packed_projection():
    batch, seq, hidden, heads = 1, 12, 32, 4
    node = helper.make_node("Attention", ["x", "w", "b"], ["y"], domain="com.microsoft", num_heads=heads)
    model = make_model([node], {"x": (batch, seq, hidden)}, ["y"], {"w": w(hidden, 3 * hidden), "b": w(3 * hidden)})
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    n = only_node(model)
    head_dim = hidden // heads
    assert n.macs == batch * seq * hidden * 3 * hidden + batch * heads * seq * seq * 2 * head_dim
