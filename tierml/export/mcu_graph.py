"""Lower an ONNX model to the MCU layer graph: channels-last tensors, TFLite-style layers, nothing skipped.

BatchNormalization and constant bias Adds fold into the preceding Conv/Gemm, Relu/Relu6/Clip fuse
into the producing layer's clamp, zero Pads fold into the next Conv's padding, and Identity,
Dropout, Squeeze/Unsqueeze, Flatten and Reshape become views. Activations are channels-last
([1, H, W, C]; 1-D signals [1, 1, L, C]; vectors [1, N]), weights are laid out the way TFLite
stores them. Every node either becomes part of a layer or is reported by name with what to use
instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from tierml.errors import TiermlError
from tierml.model.profile import ModelProfile, NodeProfile, node_names
from tierml.model.runtimes import MCU_INT8
from tierml.model.support import Unsupported

# Fused activations TFLite can express, by the clamp range they apply to real values.
ACTIVATIONS = {"relu": (0.0, math.inf), "relu6": (0.0, 6.0), "relu_n1_to_1": (-1.0, 1.0)}
WEIGHTED = ("conv", "depthwise", "fully_connected")
_VIEWS = frozenset({"Identity", "Dropout", "QuantizeLinear", "DequantizeLinear"})
_RESHAPES = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})


class UnsupportedModel(TiermlError):
    """The model uses something the MCU target cannot run; the message names each node."""


@dataclass(frozen=True)
class Window:
    """Kernel geometry of a convolution or pooling layer (height first)."""

    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right

    @property
    def unpadded(self) -> bool:
        return not any(self.pads)


@dataclass
class Layer:
    """One int8 kernel call (or a view, for `reshape`)."""

    op: str  # conv | depthwise | fully_connected | add | max_pool | avg_pool | softmax | reshape | concat
    node: str  # the ONNX node(s) it implements, for messages
    inputs: list[str]
    output: str
    weight: np.ndarray | None = None  # conv [Cout, kh, kw, Cin]; depthwise [kh, kw, Cout]; fully_connected [Cout, Cin]
    bias: np.ndarray | None = None  # [Cout]
    window: Window | None = None
    activation: str = "none"
    axis: int = -1  # concat axis, channels-last

    def rename_output(self, name: str) -> None:
        self.output = name
        self.node = f"{self.node}+"


@dataclass
class Graph:
    """The lowered model: layers in execution order over channels-last int8 tensors."""

    layers: list[Layer]
    shapes: dict[str, tuple[int, ...]]
    input: str
    output: str
    onnx_input_shape: tuple[int, ...]
    onnx_output_shape: tuple[int, ...]
    macs: dict[str, int] = field(default_factory=dict)  # per layer output
    # Real range a QuantizeLinear clamps an activation to. ONNX Runtime's QDQ quantizer removes a Relu or Clip
    # whose work that clamp does (zero point at the int8 minimum), so the range is part of what the model computes.
    clamps: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def total_macs(self) -> int:
        return sum(self.macs.values())

    def size(self, tensor: str) -> int:
        return math.prod(self.shapes[tensor])

    def channels_last(self, x: np.ndarray) -> np.ndarray:
        """ONNX-layout data (batch first) to this graph's layout for the input."""
        return _to_channels_last(x)

    def onnx_layout(self, rows: np.ndarray) -> np.ndarray:
        """Output rows (channels-last, flattened, one per input) in the ONNX layout of the model's output."""
        shape = self.onnx_output_shape
        y = rows.reshape(len(rows), *ir_shape(shape)[1:])
        if len(shape) == 4:
            y = y.transpose(0, 3, 1, 2)
        elif len(shape) == 3:
            y = y[:, 0].transpose(0, 2, 1)
        return y.reshape(len(rows), *shape[1:])


def ir_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """ONNX (channels-first, batch 1) shape -> channels-last IR shape."""
    if len(shape) == 4:
        return (1, shape[2], shape[3], shape[1])
    if len(shape) == 3:
        return (1, 1, shape[2], shape[1])
    if len(shape) == 2:
        return tuple(shape)
    if len(shape) == 1:
        return (1, shape[0])
    raise ValueError(f"rank-{len(shape)} tensors have no MCU layout")


def _to_channels_last(x: np.ndarray) -> np.ndarray:
    if x.ndim == 4:
        return x.transpose(0, 2, 3, 1)
    if x.ndim == 3:
        return x.transpose(0, 2, 1)[:, None]
    return x


def lower(model: onnx.ModelProto, profile: ModelProfile) -> Graph:
    """The MCU layer graph of `model` at the profile's input shapes (batch 1)."""
    unsupported = profile.tier("mcu").unsupported
    if unsupported:
        raise UnsupportedModel(describe_unsupported(unsupported))
    if len(profile.inputs) != 1 or len(profile.outputs) != 1:
        raise UnsupportedModel(
            f"the MCU target runs models with one input and one output; this one has {len(profile.inputs)} "
            f"input(s) and {len(profile.outputs)} output(s) — split it or export each head separately")
    return _Lowering(model, profile).run()


def describe_unsupported(unsupported: list[Unsupported]) -> str:
    """One message naming every node the MCU op set cannot run and what to use instead."""
    parts = [f"'{u.node}' ({u.op_type}): {u.reason}" + (f" — {u.suggestion}" if u.suggestion else "")
             for u in unsupported]
    return f"the MCU target cannot run {len(unsupported)} node(s): {'; '.join(parts)}. Supported: {MCU_INT8.summary}"


def constant_values(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers, Constant nodes and DequantizeLinear of constants, as arrays."""
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
                elif attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
                    values[node.output[0]] = np.array(onnx.helper.get_attribute_value(attr))
        elif node.op_type == "DequantizeLinear" and node.input[0] in values and node.input[1] in values:
            values[node.output[0]] = _dequantize(node, values)
    return values


def _dequantize(node: onnx.NodeProto, values: dict[str, np.ndarray]) -> np.ndarray:
    q = values[node.input[0]].astype(np.float64)
    scale = values[node.input[1]].astype(np.float64)
    zero = values[node.input[2]].astype(np.float64) if len(node.input) > 2 and node.input[2] in values else 0.0
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    if np.ndim(scale) == 1 and scale.size > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zero = np.reshape(zero, shape) if np.ndim(zero) else zero
    return ((q - zero) * scale).astype(np.float32)


class _Lowering:
    def __init__(self, model: onnx.ModelProto, profile: ModelProfile) -> None:
        self.graph = model.graph
        self.names = node_names(model.graph)
        self.profiles = {p.name: p for p in profile.nodes}
        self.consts = constant_values(model.graph)
        self.alias: dict[str, str] = {}
        self.clamps: dict[str, tuple[float, float]] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.onnx_shapes: dict[str, tuple[int, ...]] = {}
        self.layers: list[Layer] = []
        self.producer: dict[str, Layer] = {}
        self.consumers: dict[str, int] = {}
        self.pads: dict[str, tuple[str, tuple[int, int, int, int]]] = {}  # Pad output -> (input, t/l/b/r)
        self.flattened: dict[str, tuple[int, int, int]] = {}  # IR vector -> (C, H, W) of its channels-last source
        self.profile = profile
        self.macs_by_output: dict[str, int] = {}
        for node in model.graph.node:
            for name in dict.fromkeys(i for i in node.input if i):
                self.consumers[name] = self.consumers.get(name, 0) + 1
        self.outputs = {o.name for o in model.graph.output}

    def run(self) -> Graph:
        source = self.profile.inputs[0]
        if source.shape[0] != 1:
            raise UnsupportedModel(f"the MCU target runs batch 1; input '{source.name}' has batch {source.shape[0]}: "
                                   f"give --input-shape {source.name}=1x{'x'.join(map(str, source.shape[1:]))}")
        self._activation(source.name, tuple(source.shape))
        handlers: dict[str, Callable[[str, onnx.NodeProto, NodeProfile], None]] = {
            "Conv": self._conv, "Gemm": self._gemm, "MatMul": self._matmul, "Add": self._add,
            "Relu": self._relu, "Clip": self._relu, "MaxPool": self._pool, "AveragePool": self._pool,
            "GlobalAveragePool": self._pool, "Softmax": self._softmax, "Concat": self._concat,
            "BatchNormalization": self._batchnorm, "Pad": self._pad,
        }
        for name, node in zip(self.names, self.graph.node, strict=True):
            info = self.profiles[name]
            if info.folded or node.op_type == "Constant" or node.output[0] in self.consts:
                continue
            if node.op_type in _VIEWS:
                self.alias[node.output[0]] = self._resolve(node.input[0])
                if node.op_type == "QuantizeLinear":
                    self._clamp(node)
            elif node.op_type in _RESHAPES:
                self._reshape(name, node, info)
            elif node.op_type in handlers:
                handlers[node.op_type](name, node, info)
            else:  # the op table (tierml.model.runtimes.MCU_INT8) lists an op this lowering lacks: a bug
                raise UnsupportedModel(f"node '{name}' ({node.op_type}) has no MCU lowering")
        return self._finish()

    # ---------------------------------------------------------------- helpers
    def _clamp(self, node: onnx.NodeProto) -> None:
        """Record the real range this QuantizeLinear clamps its activation input to (narrowing an earlier one)."""
        tensor = self._resolve(node.input[0])
        scale = self.consts.get(node.input[1])
        if tensor not in self.shapes or scale is None:
            return
        zero = self.consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        info = np.iinfo(zero.dtype if zero is not None else np.uint8)  # no zero point: uint8, zero point 0
        zero_point = zero.astype(np.float64) if zero is not None else 0.0
        low = float(np.min((info.min - zero_point) * scale.astype(np.float64)))
        high = float(np.max((info.max - zero_point) * scale.astype(np.float64)))
        old_low, old_high = self.clamps.get(tensor, (low, high))
        self.clamps[tensor] = (max(low, old_low), min(high, old_high))

    def _resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def _activation(self, name: str, onnx_shape: tuple[int, ...]) -> str:
        self.onnx_shapes[name] = onnx_shape
        self.shapes[name] = ir_shape(onnx_shape)
        return name

    def _input(self, name: str, node: str) -> str:
        resolved = self._resolve(name)
        if resolved in self.consts:
            raise UnsupportedModel(f"node '{node}' takes constant '{name}' where the MCU target expects an "
                                   "activation; fold the constant into the neighbouring layer")
        if resolved not in self.shapes:
            raise UnsupportedModel(f"node '{node}' reads '{name}', which no supported layer produces")
        return resolved

    def _const(self, name: str, node: str, what: str) -> np.ndarray:
        value = self.consts.get(self._resolve(name))
        if value is None:
            raise UnsupportedModel(f"node '{node}': its {what} '{name}' must be a constant (an initializer); "
                                   "it is computed at run time")
        return value.astype(np.float32)

    def _emit(self, layer: Layer, onnx_shape: tuple[int, ...], macs: int = 0) -> None:
        self._activation(layer.output, onnx_shape)
        self.layers.append(layer)
        self.producer[layer.output] = layer
        self.macs_by_output[layer.output] = macs

    def _sole_use(self, tensor: str) -> bool:
        return self.consumers.get(tensor, 0) == 1 and tensor not in self.outputs

    def _fusable(self, tensor: str, ops: tuple[str, ...]) -> Layer | None:
        """The layer producing `tensor` if a following op may fold into it (nothing else reads it)."""
        layer = self.producer.get(tensor)
        if layer is None or layer.op not in ops or layer.output != tensor or not self._sole_use(tensor):
            return None
        return layer

    # ---------------------------------------------------------------- ops
    def _conv(self, name: str, node: onnx.NodeProto, info: NodeProfile) -> None:
        source = self._resolve(node.input[0])
        extra = (0, 0, 0, 0)
        if source in self.pads and self._sole_use(source):
            source, extra = self.pads.pop(source)
        x = self._input(source, name)
        w = self._const(node.input[1], name, "weight")
        if w.ndim == 3:  # 1-D convolution: height 1
            w = w[:, :, None, :]
        cout, cin_per_group, kh, kw = w.shape
        cin = self.shapes[x][3]
        group = int(info.attrs.get("group", 1))
        bias = self._const(node.input[2], name, "bias") if len(node.input) > 2 and node.input[2] else np.zeros(cout)
        window = _window(info, (kh, kw), extra)
        out_shape = tuple(info.output_shapes[0] or ())
        out = ir_shape(out_shape)
        macs = math.prod(out) * cin_per_group * kh * kw
        if group == 1:
            layer = Layer("conv", name, [x], node.output[0], weight=w.transpose(0, 2, 3, 1).copy(),
                          bias=bias.astype(np.float32), window=window)
        elif group == cin and cin_per_group == 1:
            layer = Layer("depthwise", name, [x], node.output[0], weight=w[:, 0].transpose(1, 2, 0).copy(),
                          bias=bias.astype(np.float32), window=window)
        else:
            raise UnsupportedModel(f"node '{name}' is a grouped convolution (group={group}); the MCU target runs "
                                   "ordinary (group=1) and depthwise (group=channels) convolutions")
        self._emit(layer, out_shape, macs)

    def _fully_connected(self, name: str, x: str, weight: np.ndarray, bias: np.ndarray, output: str,
                         info: NodeProfile) -> None:
        """weight: [Cout, Cin] in ONNX element order of the input vector."""
        if x in self.flattened:  # the vector is a channels-last flatten: reorder the columns to match
            c, h, w = self.flattened[x]
            weight = weight.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)
        out_shape = tuple(info.output_shapes[0] or ())
        layer = Layer("fully_connected", name, [x], output, weight=np.ascontiguousarray(weight, np.float32),
                      bias=bias.astype(np.float32))
        self._emit(layer, out_shape, weight.size)

    def _vector_input(self, name: str, tensor: str) -> str:
        x = self._input(tensor, name)
        if len(self.shapes[x]) != 2:
            raise UnsupportedModel(f"node '{name}' multiplies a rank-{len(self.onnx_shapes[x])} activation; the MCU "
                                   "target's fully connected layer takes a [1, N] vector (Flatten first)")
        return x

    def _gemm(self, name: str, node: onnx.NodeProto, info: NodeProfile) -> None:
        attrs = info.attrs
        if attrs.get("transA", 0):
            raise UnsupportedModel(f"node '{name}': Gemm with transA=1 is not supported; transpose the weights instead")
        x = self._vector_input(name, node.input[0])
        b = self._const(node.input[1], name, "weight")
        weight = b if attrs.get("transB", 0) else b.T
        weight = weight * float(attrs.get("alpha", 1.0))
        bias = np.zeros(weight.shape[0], np.float32)
        if len(node.input) > 2 and node.input[2]:
            bias = np.broadcast_to(self._const(node.input[2], name, "bias").reshape(-1), bias.shape)
            bias = bias * float(attrs.get("beta", 1.0))
        self._fully_connected(name, x, weight, bias, node.output[0], info)

    def _matmul(self, name: str, node: onnx.NodeProto, info: NodeProfile) -> None:
        x = self._vector_input(name, node.input[0])
        weight = self._const(node.input[1], name, "weight").T
        self._fully_connected(name, x, weight, np.zeros(weight.shape[0], np.float32), node.output[0], info)

    def _add(self, name: str, node: onnx.NodeProto, info: NodeProfile) -> None:
        a, b = (self._resolve(i) for i in node.input)
        if a in self.consts or b in self.consts:
            self._bias_add(name, node, a if b in self.consts else b, self.consts[b if b in self.consts else a])
            return
        x, y = self._input(a, name), self._input(b, name)
        if self.shapes[x] != self.shapes[y]:
            raise UnsupportedModel(f"node '{name}' adds tensors of different shapes {self.onnx_shapes[x]} and "
                                   f"{self.onnx_shapes[y]}; the MCU target adds same-shape tensors only (no broadcast)")
        self._emit(Layer("add", name, [x, y], node.output[0]), tuple(info.output_shapes[0] or ()))

    def _bias_add(self, name: str, node: onnx.NodeProto, tensor: str, constant: np.ndarray) -> None:
        layer = self._fusable(tensor, WEIGHTED)
        channels = self.shapes[tensor][-1]
        if layer is None or layer.activation != "none" or constant.size not in (1, channels):
            raise UnsupportedModel(f"node '{name}' adds a constant that cannot fold into a preceding Conv/Gemm bias; "
                                   "the MCU target has no elementwise add of constants")
        assert layer.bias is not None
        layer.bias = (layer.bias + constant.astype(np.float32).reshape(-1)).astype(np.float32)
        self._rename(layer, node.output[0])

    def _rename(self, layer: Layer, output: str) -> None:
        """The layer now produces `output` (an op fused into it); its old output no longer exists."""
        shape = self.onnx_shapes.pop(layer.output)
        del self.shapes[layer.output]
        macs = self.macs_by_output.pop(layer.output)
        del self.producer[layer.output]
        layer.rename_output(output)
        self._activation(output, shape)
        self.producer[output] = layer
        self.macs_by_output[output] = macs

    def _relu(self, name: str, node: onnx.NodeProto, info: NodeProfile) -> None:
        kind = "relu" if node.op_type == "Relu" else self._clip_kind(name, node, info)
        tensor = self._resolve(node.input[0])
        layer = self._fusable(tensor, (*WEIGHTED, "add", "max_pool", "avg_pool"))
        if layer is None or layer.activation != "none":
            what = "its input is read by other nodes too" if tensor in self.producer else "nothing produces it to fuse"
            raise UnsupportedModel(f"node '{name}' ({node.op_type}) cannot fuse into the layer before it ({what}); "
                                   "the MCU target applies activations as the producing Conv/Gemm/Add/pool clamp")
        layer.activation = kind
        self._rename(layer, node.output[0])

    def _clip_kind(self, name: str, node: onnx.NodeProto, info: NodeProfile) -> str:
        low = info.attrs.get("min", -math.inf)
        high = info.attrs.get("max", math.inf)
        if len(node.input) > 1 and node.input[1]:
            low = float(self._const(node.input[1], name, "min").reshape(()))
        if len(node.input) > 2 and node.input[2]:
            high = float(self._const(node.input[2], name, "max").reshape(()))
        for kind, bounds in ACTIVATIONS.items():
            if (float(low), float(high)) == bounds:
                return kind
        raise UnsupportedModel(f"node '{name}' clips to [{low}, {high}]; the MCU target fuses Clip(0, 6) (Relu6), "
                               "Clip(0, inf) (Relu) and Clip(-1, 1) only")

    def _pool(self, name: str, node: onnx.NodeProto, info: NodeProfile) -> None:
        x = self._input(node.input[0], name)
        shape = self.shapes[x]
        if len(shape) != 4:
            raise UnsupportedModel(f"node '{name}' pools a rank-{len(self.onnx_shapes[x])} tensor; MCU pooling is 2-D")
        attrs = info.attrs
        if node.op_type == "GlobalAveragePool":
            window = Window((shape[1], shape[2]))
        else:
            kernel = tuple(attrs["kernel_shape"])  # type: ignore[arg-type]
            if len(kernel) == 1:
                kernel = (1, kernel[0])
            if attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1]) or [1]):  # type: ignore[union-attr]
                raise UnsupportedModel(f"node '{name}' uses ceil_mode or dilation; MCU pooling supports neither")
            window = _window(info, kernel, (0, 0, 0, 0))  # type: ignore[arg-type]
            if attrs.get("count_include_pad", 0) and not window.unpadded:
                raise UnsupportedModel(f"node '{name}' counts padding in its average (count_include_pad=1); "
                                       "TFLite averages over valid inputs only: set count_include_pad=0")
        op = "max_pool" if node.op_type == "MaxPool" else "avg_pool"
        self._emit(Layer(op, name, [x], node.output[0], window=window), tuple(info.output_shapes[0] or ()))

    def _softmax(self, name: str, node: onnx.NodeProto, info: NodeProfile) -> None:
        x = self._input(node.input[0], name)
        rank = len(self.onnx_shapes[x])
        legacy = self.profile.opsets.get("", 13) < 13  # before opset 13 Softmax flattened from `axis` on
        axis = int(info.attrs.get("axis", 1 if legacy else -1))
        axis = axis + rank if axis < 0 else axis
        last = 1 if rank > 2 else rank - 1  # channels: the last axis channels-last
        if axis != last or (legacy and math.prod(self.onnx_shapes[x][2:]) > 1):
            raise UnsupportedModel(f"node '{name}' takes Softmax over axis {axis}; the MCU target normalises over "
                                   "the channel axis only")
        self._emit(Layer("softmax", name, [x], node.output[0]), tuple(info.output_shapes[0] or ()))

    def _concat(self, name: str, node: onnx.NodeProto, info: NodeProfile) -> None:
        xs = [self._input(i, name) for i in node.input]
        rank = len(self.onnx_shapes[xs[0]])
        axis = int(info.attrs.get("axis", 1))
        axis = axis + rank if axis < 0 else axis
        if axis == 0:
            raise UnsupportedModel(f"node '{name}' concatenates along the batch axis; the MCU target runs batch 1")
        ir_axis = {4: {1: 3, 2: 1, 3: 2}, 3: {1: 3, 2: 2}, 2: {1: 1}}[rank][axis]
        self._emit(Layer("concat", name, xs, node.output[0], axis=ir_axis), tuple(info.output_shapes[0] or ()))

    def _batchnorm(self, name: str, node: onnx.NodeProto, info: NodeProfile) -> None:
        tensor = self._resolve(node.input[0])
        layer = self._fusable(tensor, WEIGHTED)
        if layer is None or layer.activation != "none":
            raise UnsupportedModel(f"node '{name}' (BatchNormalization) does not follow a Conv/Gemm it can fold into; "
                                   "the MCU target folds BatchNormalization into the preceding layer's weights")
        gamma, beta, mean, var = (self._const(i, name, "parameter") for i in node.input[1:5])
        eps = float(info.attrs.get("epsilon", 1e-5))
        scale = gamma / np.sqrt(var + eps)
        assert layer.weight is not None and layer.bias is not None
        axis = -1 if layer.op == "depthwise" else 0
        shape = [1] * layer.weight.ndim
        shape[axis] = -1
        layer.weight = (layer.weight * scale.reshape(shape)).astype(np.float32)
        layer.bias = ((layer.bias - mean) * scale + beta).astype(np.float32)
        self._rename(layer, node.output[0])

    def _pad(self, name: str, node: onnx.NodeProto, info: NodeProfile) -> None:
        mode = info.attrs.get("mode", "constant")
        pads = (self._const(node.input[1], name, "pads").astype(np.int64).tolist() if len(node.input) > 1
                else list(info.attrs.get("pads", [])))  # type: ignore[arg-type]
        value = (float(self._const(node.input[2], name, "value").reshape(()))
                 if len(node.input) > 2 and node.input[2] else float(info.attrs.get("value", 0.0)))
        x = self._input(node.input[0], name)
        rank = len(self.onnx_shapes[x])
        if mode != "constant" or value != 0.0 or rank != 4 or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
            raise UnsupportedModel(f"node '{name}' (Pad) is not a zero spatial pad; the MCU target folds zero padding "
                                   "of H and W into the next Conv only")
        self.pads[node.output[0]] = (x, (pads[2], pads[3], pads[6], pads[7]))

    def _reshape(self, name: str, node: onnx.NodeProto, info: NodeProfile) -> None:
        x = self._input(node.input[0], name)
        out_shape = tuple(info.output_shapes[0] or ())
        src = self.onnx_shapes[x]
        if ir_shape(out_shape) == self.shapes[x]:
            self.alias[node.output[0]] = x
            return
        if len(out_shape) == 2 and out_shape[0] == 1 and len(src) in (3, 4):
            self._emit(Layer("reshape", name, [x], node.output[0]), out_shape)
            if math.prod(src[2:]) > 1:
                self.flattened[node.output[0]] = (src[1], *self.shapes[x][1:3])
            return
        raise UnsupportedModel(f"node '{name}' ({node.op_type}) reshapes {src} to {out_shape}; the MCU target "
                               "supports flattening to a [1, N] vector (and shape-preserving views) only")

    def _finish(self) -> Graph:
        output = self._resolve(self.graph.output[0].name)
        for tensor in self.flattened:
            users = [layer for layer in self.layers if tensor in layer.inputs]
            if tensor == output or any(u.op != "fully_connected" for u in users):
                raise UnsupportedModel(f"'{tensor}' flattens a feature map whose channels-first order differs from "
                                       "the MCU's channels-last order; only a Gemm/MatMul may read it")
        if output not in self.shapes:
            raise UnsupportedModel(f"the model output '{self.graph.output[0].name}' is not computed by a layer")
        return Graph(self.layers, self.shapes, self.profile.inputs[0].name, output,
                     tuple(self.profile.inputs[0].shape), self.onnx_shapes[output], dict(self.macs_by_output),
                     {t: r for t, r in self.clamps.items() if t in self.shapes})


def _window(info: NodeProfile, kernel: tuple[int, int], extra: tuple[int, int, int, int]) -> Window:
    """Strides, dilations and explicit pads (auto_pad resolved) of a Conv or pool, 1-D as height 1."""
    attrs = info.attrs
    in_shape = list(info.input_shapes[0] or [])[2:]
    spatial = len(in_shape)
    strides = list(attrs.get("strides", [1] * spatial))  # type: ignore[arg-type]
    dilations = list(attrs.get("dilations", [1] * spatial))  # type: ignore[arg-type]
    pads = list(attrs.get("pads", [0] * 2 * spatial))  # type: ignore[arg-type]
    auto = str(attrs.get("auto_pad", "NOTSET"))
    if spatial == 1:
        strides, dilations, in_shape = [1, *strides], [1, *dilations], [1, *in_shape]
        pads = [0, pads[0], 0, pads[1]]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for axis in range(2):
            out = -(-in_shape[axis] // strides[axis])
            total = max((out - 1) * strides[axis] + (kernel[axis] - 1) * dilations[axis] + 1 - in_shape[axis], 0)
            begin = total // 2 if auto == "SAME_UPPER" else total - total // 2
            pads[axis], pads[axis + 2] = begin, total - begin
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    top, left, bottom, right = pads[0] + extra[0], pads[1] + extra[1], pads[2] + extra[2], pads[3] + extra[3]
    return Window(kernel, (strides[0], strides[1]), (dilations[0], dilations[1]), (top, left, bottom, right))
