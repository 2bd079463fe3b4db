"""Post-training int8 quantization of the MCU layer graph, in TensorFlow Lite Micro's scheme.

Weights: symmetric int8 in [-127, 127], zero point 0, per output channel for conv and depthwise,
per tensor for fully connected (the TFLite quantization spec). Activations: asymmetric int8 per
tensor from calibration ranges (widened to hold 0). Bias: int32 at in_scale x w_scale. Every
requantization multiplier is computed the way TFLM's kernels compute it at Prepare time (the
same float/double conversions, `frexp`, round half away from zero), so the C kernels and the TFLM
interpreter run on identical integers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import onnx

from tierml.errors import TiermlError
from tierml.export.mcu_graph import ACTIVATIONS, Graph, Layer
from tierml.model.session import make_session

SOFTMAX_OUTPUT = (np.float32(1.0 / 256.0), -128)  # TFLite fixes int8 softmax output to (1/256, -128)
# A tensor constant under calibration still gets this span: a vanishing scale would need a requantization
# multiplier TFLM refuses (and no real input would fit it).
MIN_RANGE = 1e-3
_SHARED_PARAMS = ("max_pool", "avg_pool", "reshape", "concat")  # output scale/zp must equal the inputs'


@dataclass(frozen=True)
class QParams:
    """Per-tensor affine int8 quantization: real = (q - zero_point) * scale."""

    scale: np.float32
    zero_point: int

    def quantize(self, x: np.ndarray) -> np.ndarray:
        q = np.floor(np.asarray(x, np.float64) / float(self.scale) + 0.5) + self.zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (q.astype(np.float32) - self.zero_point) * self.scale


@dataclass
class QLayer:
    """A layer with its integer parameters, ready for TFLM and for C."""

    layer: Layer
    inputs: list[QParams]
    output: QParams
    act_min: int = -128
    act_max: int = 127
    weight: np.ndarray | None = None  # int8, layout as Layer.weight
    weight_scales: np.ndarray | None = None  # float32, per output channel (one value for fully connected)
    bias: np.ndarray | None = None  # int32 as TFLite stores it (no zero-point folding)
    multiplier: np.ndarray | None = None  # int32 per output channel
    shift: np.ndarray | None = None  # int per output channel (positive = left)
    extra: dict[str, int] = field(default_factory=dict)  # add / softmax parameters

    @property
    def op(self) -> str:
        return self.layer.op

    def folded_bias(self) -> np.ndarray:
        """Bias with -input_zero_point x sum(weights) folded in, per output channel (what the C kernels add)."""
        assert self.weight is not None and self.bias is not None
        w = self.weight.astype(np.int64)
        sums = w.sum(axis=(0, 1)) if self.op == "depthwise" else w.reshape(w.shape[0], -1).sum(axis=1)
        folded = self.bias.astype(np.int64) - self.inputs[0].zero_point * sums
        if np.any(np.abs(folded) >= 2**31):
            raise TiermlError(f"layer '{self.layer.node}': the folded int32 bias overflows; the weights are too large")
        return folded.astype(np.int32)


@dataclass
class QuantizedGraph:
    """The graph with every tensor's int8 parameters and every layer's integer parameters."""

    graph: Graph
    params: dict[str, QParams]
    layers: list[QLayer]

    @property
    def input(self) -> QParams:
        return self.params[self.graph.input]

    @property
    def output(self) -> QParams:
        return self.params[self.graph.output]


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = q / 2^31 * 2^shift with q a Q31 value, rounded half away from zero."""
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    q = math.floor(mantissa * (1 << 31) + 0.5)
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q), shift


def _round_away(x: float) -> int:
    return math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1)


def activation_params(low: float, high: float) -> QParams:
    """Asymmetric int8 parameters covering [low, high] and 0, zero point nudged onto the int8 grid."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if high - low < MIN_RANGE:  # constant under calibration (often all zero after a ReLU)
        high = low + MIN_RANGE
    scale = np.float32((high - low) / 255.0)
    zero = -128 - low / float(scale)
    return QParams(scale, int(np.clip(_round_away(zero), -128, 127)))


def activation_range(activation: str, out: QParams) -> tuple[int, int]:
    """TFLM CalculateActivationRangeQuantized: the fused clamp in the output's int8 domain."""
    if activation == "none":
        return -128, 127
    low, high = ACTIVATIONS[activation]

    def q(x: float) -> int:
        return out.zero_point + _round_away(float(np.float32(x) / out.scale))

    return max(-128, q(low)), (127 if math.isinf(high) else min(127, q(high)))


def calibration_ranges(model: onnx.ModelProto, graph: Graph,
                       batches: Iterable[np.ndarray]) -> dict[str, tuple[float, float]]:
    """Min and max of every graph tensor over the calibration inputs (ONNX Runtime, fp32), within the range a
    QuantizeLinear of a QDQ model clamps it to: the int8 output then saturates where that clamp does."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    present = {o.name for o in probe.graph.output}
    for name in graph.shapes:
        if name not in present and name != graph.input:
            probe.graph.output.append(onnx.ValueInfoProto(name=name))
    session = make_session(probe, threads=None, optimization="none")
    names = [o.name for o in session.get_outputs()]
    ranges: dict[str, tuple[float, float]] = {}
    seen = False
    for batch in batches:
        seen = True
        values = dict(zip(names, session.run(names, {graph.input: batch.astype(np.float32)}), strict=True))
        values[graph.input] = batch
        for name in graph.shapes:
            v = values[name]
            low, high = float(np.min(v)), float(np.max(v))
            old = ranges.get(name, (low, high))
            ranges[name] = (min(old[0], low), max(old[1], high))
    if not seen:
        raise TiermlError("quantization needs calibration data: give --calib data.npz (an array of model inputs)")
    for name, (low, high) in graph.clamps.items():  # what a QDQ model's QuantizeLinear lets through, so does the C
        seen_low, seen_high = ranges[name]
        ranges[name] = (min(max(seen_low, low), high), max(min(seen_high, high), low))
    return ranges


def quantize(graph: Graph, ranges: dict[str, tuple[float, float]]) -> QuantizedGraph:
    """int8 parameters for every tensor and layer of `graph` from calibration ranges."""
    params = _tensor_params(graph, ranges)
    layers = [_quantize_layer(layer, params) for layer in graph.layers]
    return QuantizedGraph(graph, params, layers)


def _tensor_params(graph: Graph, ranges: dict[str, tuple[float, float]]) -> dict[str, QParams]:
    """Per-tensor parameters; tensors TFLite requires to share parameters get their union range."""
    group = {name: name for name in graph.shapes}

    def root(name: str) -> str:
        while group[name] != name:
            name = group[name]
        return name

    fixed: dict[str, QParams] = {}
    for layer in graph.layers:
        if layer.op in _SHARED_PARAMS:
            for x in layer.inputs:
                group[root(x)] = root(layer.output)
    for layer in graph.layers:
        if layer.op == "softmax":
            fixed[root(layer.output)] = QParams(*SOFTMAX_OUTPUT)
    span: dict[str, tuple[float, float]] = {}
    for name, (low, high) in ranges.items():
        r = root(name)
        old = span.get(r, (low, high))
        span[r] = (min(old[0], low), max(old[1], high))
    return {name: fixed.get(root(name)) or activation_params(*span[root(name)]) for name in graph.shapes}


def _quantize_layer(layer: Layer, params: dict[str, QParams]) -> QLayer:
    q = QLayer(layer, [params[x] for x in layer.inputs], params[layer.output])
    q.act_min, q.act_max = activation_range(layer.activation, q.output)
    if layer.op in ("conv", "depthwise", "fully_connected"):
        _quantize_weights(q)
    elif layer.op == "add":
        _add_params(q)
    elif layer.op == "softmax":
        _softmax_params(q)
    return q


def _quantize_weights(q: QLayer) -> None:
    layer = q.layer
    assert layer.weight is not None and layer.bias is not None
    w = layer.weight.astype(np.float64)
    if layer.op == "fully_connected":
        peaks = np.array([np.max(np.abs(w))])
    elif layer.op == "depthwise":
        peaks = np.max(np.abs(w), axis=(0, 1))
    else:
        peaks = np.max(np.abs(w.reshape(w.shape[0], -1)), axis=1)
    scales = np.where(peaks > 0, peaks / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    if layer.op == "conv":
        shape[0] = -1
    elif layer.op == "depthwise":
        shape[-1] = -1
    broadcast = scales.astype(np.float64).reshape(shape) if layer.op != "fully_connected" else float(scales[0])
    q.weight = np.clip(np.sign(w) * np.floor(np.abs(w) / broadcast + 0.5), -127, 127).astype(np.int8)
    q.weight_scales = scales
    in_scale, out_scale = q.inputs[0].scale, q.output.scale
    bias_scales = (np.float32(in_scale) * scales).astype(np.float64)
    bias = np.floor(layer.bias.astype(np.float64) / bias_scales + 0.5)
    if np.any(np.abs(bias) >= 2**31):
        raise TiermlError(f"layer '{layer.node}': its bias does not fit int32 at scale in_scale x w_scale")
    q.bias = bias.astype(np.int32)
    if layer.op == "fully_connected":  # TFLM: double(float(in_s * w_s)) / double(out_s), one multiplier
        real = [float(np.float32(in_scale * scales[0])) / float(out_scale)] * len(layer.bias)
    else:  # TFLM per channel: double(in_s) * double(w_s[c]) / double(out_s)
        real = [float(in_scale) * float(s) / float(out_scale) for s in scales]
    pairs = [quantize_multiplier(r) for r in real]
    q.multiplier = np.array([m for m, _ in pairs], np.int32)
    q.shift = np.array([s for _, s in pairs], np.int32)


def _add_params(q: QLayer) -> None:
    """TFLM ADD (int8): both inputs rescaled to twice the larger input scale with 20 bits of headroom."""
    left_shift = 20
    s1, s2, so = (float(p.scale) for p in (q.inputs[0], q.inputs[1], q.output))
    twice_max = 2 * float(max(q.inputs[0].scale, q.inputs[1].scale))
    m1, sh1 = quantize_multiplier(s1 / twice_max)
    m2, sh2 = quantize_multiplier(s2 / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * so))
    q.extra = {"in1_offset": -q.inputs[0].zero_point, "in2_offset": -q.inputs[1].zero_point,
               "left_shift": left_shift, "in1_multiplier": m1, "in1_shift": sh1, "in2_multiplier": m2,
               "in2_shift": sh2, "out_multiplier": mo, "out_shift": sho}


def _softmax_params(q: QLayer) -> None:
    """TFLM SOFTMAX (int8, beta 1): input scale as a Q31 multiplier for 5 integer bits, and the cut-off diff."""
    integer_bits = 5
    real = min(1.0 * float(q.inputs[0].scale) * (1 << (31 - integer_bits)), float((1 << 31) - 1))
    multiplier, shift = quantize_multiplier(real)
    radius = ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << shift)
    q.extra = {"input_multiplier": multiplier, "input_left_shift": shift, "diff_min": -math.floor(radius)}
