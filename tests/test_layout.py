"""Layout conversions are read off ONNX Runtime's own optimized graph and charged on the host only."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_model
from onnx import helper

from tierml.model.profile import analyze

rng = np.random.default_rng(0)


def w(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def blocked_graph():
    c = 32
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1] * 4),
             helper.make_node("Add", ["c2", "r1"], ["res"]),           # residual add: fused into the conv
             helper.make_node("Add", ["res", "three"], ["h"]),          # constant operand: plain layout again
             helper.make_node("Mul", ["h", "res"], ["m"]),
             helper.make_node("Conv", ["m", "w3", "b3"], ["c3"], group=c, pads=[1] * 4),
             helper.make_node("Transpose", ["c3"], ["t"], perm=[0, 2, 3, 1])]
    weights = {"w1": w(c, 16, 3, 3), "b1": w(c), "w2": w(c, c, 3, 3), "b2": w(c), "three": np.array(3, np.float32),
               "w3": w(c, 1, 3, 3), "b3": w(c)}
    return make_model(nodes, {"x": (1, 16, 20, 20)}, ["t"], weights)


def test_conversions_come_from_ort_and_name_real_tensors():
    profile = analyze(blocked_graph())
    if not profile.runtime_reorders:
        pytest.skip("this CPU/ORT build does not use the blocked NCHWc layout")
    pairs = {(r.tensor, r.direction) for r in profile.runtime_reorders}
    assert ("x", "input") in pairs  # the plain graph input enters a blocked convolution
    assert ("res", "output") in pairs  # the blocked residual feeds an Add with a constant
    assert ("m", "input") in pairs  # ... whose product goes back into a blocked depthwise conv
    assert all(r.tensor != "t" for r in profile.runtime_reorders)  # the NHWC transpose is not charged twice
    assert {r.bytes for r in profile.runtime_reorders} == {16 * 400 * 4, 32 * 400 * 4}
    assert "onnxruntime" in profile.runtime
