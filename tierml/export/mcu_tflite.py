"""The golden reference: the quantized graph as a .tflite flatbuffer, run in the TFLite Micro interpreter.

Needs the `tflite-micro` wheel (the real TFLM interpreter and its `model_editor`; no TensorFlow).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from tierml.errors import TiermlError
from tierml.export.mcu_graph import Window
from tierml.export.mcu_quant import QLayer, QParams, QuantizedGraph

_ARENA_LINE = re.compile(r"Arena allocation total (\d+) bytes")
_HEAD_LINE = re.compile(r"Arena allocation head (\d+) bytes")
_TAIL_LINE = re.compile(r"Arena allocation tail (\d+) bytes")


def _tflm() -> tuple[Any, Any, Any]:
    try:
        from tflite_micro.python.tflite_micro import runtime
        from tflite_micro.tensorflow.lite.micro.compression import model_editor
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    except ImportError as exc:
        raise TiermlError("the TFLite Micro golden reference needs the tflite-micro package: "
                          "pip install tflite-micro (or pip install -e '.[dev]')") from exc
    return runtime, model_editor, schema


@dataclass
class TflmRun:
    """TFLM's outputs for a batch of inputs and the arena it reported."""

    outputs: np.ndarray  # int8, one row per input, channels-last, flattened
    arena_bytes: int
    arena_head_bytes: int
    arena_tail_bytes: int


def to_tflite(q: QuantizedGraph) -> bytes:
    """The quantized graph as a TFLite flatbuffer with the same integers the C code uses."""
    _, me, tfl = _tflm()
    builder = _Builder(me, tfl, q)
    return builder.build()


def run_tflm(model: bytes, inputs: np.ndarray) -> TflmRun:
    """Run `inputs` (int8, one flattened channels-last row each) through TFLM; outputs and arena sizes."""
    runtime, _, _ = _tflm()
    interpreter = runtime.Interpreter.from_bytes(bytes(model), arena_size=max(64 * 1024, 20 * len(model)))
    shape = tuple(interpreter.get_input_details(0)["shape"])
    rows = []
    for x in inputs:
        interpreter.set_input(np.asarray(x, np.int8).reshape(shape), 0)
        interpreter.invoke()
        rows.append(np.asarray(interpreter.get_output(0), np.int8).reshape(-1))
    with _captured_stderr() as text:
        interpreter.print_allocations()
    report = text()
    total, head, tail = (_number(p, report) for p in (_ARENA_LINE, _HEAD_LINE, _TAIL_LINE))
    return TflmRun(np.stack(rows), total, head, tail)


def _number(pattern: re.Pattern[str], text: str) -> int:
    match = pattern.search(text)
    return int(match.group(1)) if match else 0


@contextmanager
def _captured_stderr() -> Iterator[Any]:
    """TFLM prints allocations from C++ to file descriptor 2; read them back."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        captured: list[str] = []
        try:
            os.dup2(sink.fileno(), 2)
            yield lambda: captured[0] if captured else ""
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        captured.append(sink.read().decode(errors="replace"))


class _Builder:
    def __init__(self, me: Any, tfl: Any, q: QuantizedGraph) -> None:
        self.me, self.tfl, self.q = me, tfl, q
        self.tensors: dict[str, Any] = {}
        self.subgraph = me.Subgraph()

    def build(self) -> bytes:
        g = self.q.graph
        for layer in self.q.layers:
            self._operator(layer)
        self.subgraph.inputs = [self._activation(g.input)]
        self.subgraph.outputs = [self._activation(g.output)]
        model = self.me.Model(subgraphs=[self.subgraph], description="tierml mcu export golden reference")
        return bytes(model.build())

    def _activation(self, name: str) -> Any:
        if name not in self.tensors:
            p = self.q.params[name]
            self.tensors[name] = self.subgraph.add_tensor(
                shape=self.q.graph.shapes[name], dtype=self.tfl.TensorType.INT8, name=name,
                quantization=self.me.Quantization(float(p.scale), int(p.zero_point)))
        return self.tensors[name]

    def _const(self, name: str, data: np.ndarray, dtype: Any, quantization: Any = None) -> Any:
        return self.subgraph.add_tensor(shape=data.shape, dtype=dtype, data=np.ascontiguousarray(data), name=name,
                                        quantization=quantization)

    def _operator(self, q: QLayer) -> None:
        tfl = self.tfl
        layer = q.layer
        inputs = [self._activation(x) for x in layer.inputs]
        output = self._activation(layer.output)
        ops = tfl.BuiltinOperator
        act = {"none": tfl.ActivationFunctionType.NONE, "relu": tfl.ActivationFunctionType.RELU,
               "relu6": tfl.ActivationFunctionType.RELU6,
               "relu_n1_to_1": tfl.ActivationFunctionType.RELU_N1_TO_1}[layer.activation]
        options: Any
        if layer.op in ("conv", "depthwise", "fully_connected"):
            inputs += self._weights(q)
        if layer.op == "conv":
            code, kind, options = ops.CONV_2D, tfl.BuiltinOptions.Conv2DOptions, tfl.Conv2DOptionsT()
            self._window(q, options, with_dilation=True)
        elif layer.op == "depthwise":
            code, kind = ops.DEPTHWISE_CONV_2D, tfl.BuiltinOptions.DepthwiseConv2DOptions
            options = tfl.DepthwiseConv2DOptionsT()
            self._window(q, options, with_dilation=True)
            options.depthMultiplier = self.q.graph.shapes[layer.output][3] // self.q.graph.shapes[layer.inputs[0]][3]
        elif layer.op == "fully_connected":
            code, kind = ops.FULLY_CONNECTED, tfl.BuiltinOptions.FullyConnectedOptions
            options = tfl.FullyConnectedOptionsT()
        elif layer.op == "add":
            code, kind, options = ops.ADD, tfl.BuiltinOptions.AddOptions, tfl.AddOptionsT()
        elif layer.op in ("max_pool", "avg_pool"):
            code = ops.MAX_POOL_2D if layer.op == "max_pool" else ops.AVERAGE_POOL_2D
            kind, options = tfl.BuiltinOptions.Pool2DOptions, tfl.Pool2DOptionsT()
            self._window(q, options, with_dilation=False)
            assert layer.window is not None
            options.filterHeight, options.filterWidth = layer.window.kernel
        elif layer.op == "softmax":
            code, kind, options = ops.SOFTMAX, tfl.BuiltinOptions.SoftmaxOptions, tfl.SoftmaxOptionsT()
            options.beta = 1.0
        elif layer.op == "reshape":
            code, kind, options = ops.RESHAPE, tfl.BuiltinOptions.ReshapeOptions, tfl.ReshapeOptionsT()
            shape = np.array(self.q.graph.shapes[layer.output], np.int32)
            options.newShape = shape.tolist()
            inputs.append(self._const(f"{layer.output}/shape", shape, tfl.TensorType.INT32))
        elif layer.op == "concat":
            code, kind = ops.CONCATENATION, tfl.BuiltinOptions.ConcatenationOptions
            options = tfl.ConcatenationOptionsT()
            options.axis = layer.axis
        else:
            raise TiermlError(f"layer '{layer.node}' ({layer.op}) has no TFLite equivalent")
        if hasattr(options, "fusedActivationFunction"):
            options.fusedActivationFunction = act
        elif layer.activation != "none":
            raise TiermlError(f"layer '{layer.node}' ({layer.op}) fuses {layer.activation}, which TFLite cannot")
        op = self.subgraph.add_operator(opcode=code, inputs=inputs, outputs=[output])
        op._fb.builtinOptionsType = kind
        op._fb.builtinOptions = options

    def _weights(self, q: QLayer) -> list[Any]:
        tfl, me = self.tfl, self.me
        layer = q.layer
        assert q.weight is not None and q.weight_scales is not None and q.bias is not None
        in_scale = q.inputs[0].scale
        scales = [float(s) for s in q.weight_scales]
        weight = q.weight[None] if layer.op == "depthwise" else q.weight
        axis = 3 if layer.op == "depthwise" else 0
        w_quant = (me.Quantization(scales[0], 0) if layer.op == "fully_connected"
                   else me.Quantization(scales, [0] * len(scales), axis))
        bias_scales = [float(np.float32(in_scale) * np.float32(s)) for s in scales]
        b_quant = (me.Quantization(bias_scales[0], 0) if layer.op == "fully_connected"
                   else me.Quantization(bias_scales, [0] * len(scales), 0))
        return [self._const(f"{layer.output}/weight", weight, tfl.TensorType.INT8, w_quant),
                self._const(f"{layer.output}/bias", q.bias, tfl.TensorType.INT32, b_quant)]

    def _window(self, q: QLayer, options: Any, with_dilation: bool) -> None:
        layer = q.layer
        assert layer.window is not None
        w: Window = layer.window
        in_shape = self.q.graph.shapes[layer.inputs[0]]
        out_shape = self.q.graph.shapes[layer.output]
        options.strideH, options.strideW = w.stride
        if with_dilation:
            options.dilationHFactor, options.dilationWFactor = w.dilation
        options.padding = _padding(self.tfl, layer.node, w, in_shape[1:3], out_shape[1:3])


def _padding(tfl: Any, node: str, w: Window, size: tuple[int, ...], out: tuple[int, ...]) -> int:
    """TFLite's SAME or VALID, whichever reproduces the layer's pads and output size."""
    same, valid = [], []
    for axis in range(2):
        eff = (w.kernel[axis] - 1) * w.dilation[axis] + 1
        same_out = -(-size[axis] // w.stride[axis])
        total = max((same_out - 1) * w.stride[axis] + eff - size[axis], 0)
        same.append(same_out == out[axis] and w.pads[axis] == total // 2)
        valid.append((size[axis] - eff) // w.stride[axis] + 1 == out[axis] and w.pads[axis] == 0)
    if all(valid):
        return tfl.Padding.VALID
    if all(same):
        return tfl.Padding.SAME
    raise TiermlError(f"layer '{node}' pads {w.pads} (top, left, bottom, right), which is neither TFLite SAME nor "
                      "VALID, so TFLM cannot be the golden reference for it; pad (k-1)//2 at the top/left")


def quantize_input(q: QuantizedGraph, x: np.ndarray) -> np.ndarray:
    """Float inputs in the ONNX layout (batch first) -> int8 rows in the graph's channels-last layout."""
    params: QParams = q.input
    return params.quantize(q.graph.channels_last(x)).reshape(len(x), -1)
