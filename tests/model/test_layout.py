"""Layout conversions are read off ONNX Runtime's own optimized graph and charged on the host only."""

from __future__ import annotations

import pytest

from tests.support.onnx_models import blocked_graph
from tierml.model.profile import analyze


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
