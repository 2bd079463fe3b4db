"""Input shapes: parsing, resolving dynamic dims, and inferring every tensor."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto, helper

from tests.support.onnx_models import make_model
from tierml.errors import TiermlError
from tierml.model.profile import analyze
from tierml.model.shapes import parse_input_shapes, resolve_input_shapes

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.:/]{0,12}", fullmatch=True)
dims = st.lists(st.integers(1, 4096), min_size=1, max_size=5)


@given(names, dims)
def test_parse_round_trips_named_shapes(name, shape):
    text = f"{name}={'x'.join(map(str, shape))}"
    assert parse_input_shapes([text]) == {name: tuple(shape)}


@given(dims)
def test_parse_accepts_a_bare_shape_and_commas(shape):
    assert parse_input_shapes([",".join(map(str, shape))]) == {None: tuple(shape)}


@given(st.text(max_size=20))
def test_parse_never_crashes_and_rejects_garbage_clearly(text):
    try:
        parsed = parse_input_shapes([text])
    except TiermlError as exc:
        assert "input shape" in str(exc)
    else:
        assert all(all(d > 0 for d in s) for s in parsed.values())


@pytest.mark.parametrize("bad", ["x=", "x=1xx2", "x=-1x3", "x=0x3", "1.5x2", "x=ax3"])
def test_parse_rejects_bad_shapes(bad):
    with pytest.raises(TiermlError, match="input shape"):
        parse_input_shapes([bad])


def test_parse_rejects_a_repeated_name():
    with pytest.raises(TiermlError, match="given twice"):
        parse_input_shapes(["x=1", "x=2"])


def dynamic_model():
    node = helper.make_node("Relu", ["x"], ["y"])
    return make_model([node], {"x": ("batch", 3, "height", 8)}, ["y"])


def test_unresolved_dynamic_dim_is_named():
    with pytest.raises(TiermlError) as info:
        resolve_input_shapes(dynamic_model(), {})
    message = str(info.value)
    assert "'x' dim 0 ('batch') is dynamic" in message
    assert "--input-shape x=Nx3xNx8" in message


def test_given_shape_resolves_dynamic_dims_and_checks_fixed_ones():
    resolved = resolve_input_shapes(dynamic_model(), {"x": (2, 3, 5, 8)})
    assert resolved["x"].shape == (2, 3, 5, 8)
    with pytest.raises(TiermlError, match="dim 1 is fixed to 3"):
        resolve_input_shapes(dynamic_model(), {"x": (2, 4, 5, 8)})
    with pytest.raises(TiermlError, match="rank 4"):
        resolve_input_shapes(dynamic_model(), {None: (2, 3)})
    with pytest.raises(TiermlError, match="unknown input 'y'"):
        resolve_input_shapes(dynamic_model(), {"y": (1,)})


def test_unnamed_shape_needs_a_single_input():
    node = helper.make_node("Add", ["a", "b"], ["y"])
    model = make_model([node], {"a": ("n",), "b": ("n",)}, ["y"])
    with pytest.raises(TiermlError, match="2 inputs"):
        resolve_input_shapes(model, {None: (3,)})


def test_shape_arithmetic_static_inference_cannot_fold_is_resolved_by_running():
    # y = Reshape(x, Concat(Shape(x)[0], -1)): a data-dependent shape chain, as exporters emit.
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["y"]),
    ]
    weights = {"zero": np.array(0, np.int64), "axes": np.array([0], np.int64),
               "minus_one": np.array([-1], np.int64), "w": np.ones((48, 5), np.float32)}
    model = make_model(nodes, {"x": ("batch", 3, 4, 4)}, ["y"], weights)
    profile = analyze(model, {"x": (6, 3, 4, 4)})
    matmul = next(n for n in profile.nodes if n.op_type == "MatMul")
    assert matmul.macs == 6 * 48 * 5
    folded = {n.op_type for n in profile.nodes if n.folded}
    assert folded == {"Shape", "Gather", "Unsqueeze", "Concat"}  # computed once at load, not per inference
    assert profile.outputs[0].shape == (6, 5)


def test_integer_inputs_get_dummy_values_that_run():
    nodes = [helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)]
    model = make_model(nodes, {"ids": ("n",)}, ["y"], {"table": np.ones((100, 8), np.float32)},
                       input_type=TensorProto.INT64)
    profile = analyze(model, {"ids": (7,)})
    assert profile.outputs[0].shape == (7, 8)


def test_contrib_op_shapes_come_from_an_ort_run():
    # com.microsoft ops have no ONNX schema, so static inference leaves their outputs unknown.
    fused = helper.make_node("FusedConv", ["x", "w"], ["c"], domain="com.microsoft", activation="Relu",
                             pads=[1, 1, 1, 1])
    pool = helper.make_node("GlobalAveragePool", ["c"], ["y"])
    model = make_model([fused, pool], {"x": (1, 4, 10, 10)}, ["y"], {"w": np.ones((8, 4, 3, 3), np.float32)})
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    profile = analyze(model)
    conv = profile.nodes[0]
    assert conv.macs == 8 * 10 * 10 * 4 * 9
    assert conv.output_bytes == 8 * 10 * 10 * 4
    assert profile.tier("cloud").supported  # ORT has a CPU kernel for it
    assert not profile.tier("mcu").supported
