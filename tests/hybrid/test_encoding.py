"""Cut-tensor encodings: bounded error, the decoding tail computes what numpy decodes, lz4 is lossless."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.support.onnx_models import residual_model
from tierml.hybrid import encoding as enc
from tierml.model import partition
from tierml.model.session import make_session
from tierml.model.shapes import dummy_inputs

finite = st.floats(-1e4, 1e4, width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 2), st.integers(1, 5), st.integers(1, 6)), elements=finite),
       st.sampled_from(["int8", "int8c"]))
def test_int8_error_is_at_most_half_a_step(x, precision):
    back = enc.decode(enc.encode({"t": x}, precision), precision)["t"]
    axes = (0, 2) if precision == "int8c" else None
    step = (x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True)) / 255
    assert np.all(np.abs(back - x) <= step * 0.5 + 1e-3 * np.abs(x).max() + 1e-6)


def test_fp16_and_lz4_round_trips():
    x = np.maximum(np.random.default_rng(0).standard_normal((1, 8, 16, 16)).astype(np.float32), 0)
    half = enc.decode(enc.encode({"t": x}, "fp16"), "fp16")["t"]
    assert np.max(np.abs(half - x)) <= 2e-3 * np.abs(x).max()
    body = x.tobytes()
    assert enc.decompress(enc.compress(body)) == body and len(enc.compress(body)) < len(body)  # ReLU zeros pack


@pytest.mark.parametrize("precision", ["fp16", "int8", "int8c"])
def test_the_decoding_tail_matches_numpy_decode(precision):
    graph = partition.partition_graph(residual_model())
    cut = graph.prefixes()[3]  # after conv2: r1 and c2 cross
    feeds = dummy_inputs(graph.inputs)
    head = make_session(graph.head_model(cut))
    crossing = dict(zip([o.name for o in head.get_outputs()], head.run(None, feeds), strict=True))
    encoded = enc.encode(crossing, precision)
    tail = make_session(enc.decoding_tail(graph.tail_model(cut), precision))
    plain = make_session(graph.tail_model(cut))
    got = tail.run(None, encoded)[0]
    want = plain.run(None, enc.decode(encoded, precision))[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_unknown_encoding_names_the_choices():
    with pytest.raises(ValueError, match="int8c\\+lz4"):
        enc.Encoding.parse("int4")
    assert enc.Encoding.parse("fp16+lz4") == enc.Encoding("fp16", True)
