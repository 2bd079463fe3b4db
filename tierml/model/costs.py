"""Arithmetic cost of one ONNX node: multiply-accumulates (MACs) and other floating-point operations.

Conventions (the ones fvcore and torch's FlopCounterMode use for MACs; ours for the rest):
- A MAC is one multiply plus one add inside a contraction (Conv, ConvTranspose, Gemm, MatMul,
  Einsum, attention, recurrent cells). FLOPs = 2 x MACs + other FLOPs.
- Other FLOPs are counted per output element for elementwise ops (1 for simple arithmetic, a few
  for composite activations, see `_ELEMENTWISE`), per input element for reductions and global
  pooling, output x window for pooling, 5 per element for softmax, 2 for (folded) batch norm,
  8 for layer/instance/group norm. Bias adds are other FLOPs, one per output element.
- Data movement (Transpose, Concat, Gather, Resize-nearest, ...) is 0 FLOPs; it costs bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import onnx

from tierml.model.tensors import TensorInfo


@dataclass(frozen=True)
class Cost:
    """What one node computes."""

    macs: int = 0
    other_flops: int = 0
    note: str = ""

    @property
    def flops(self) -> int:
        return 2 * self.macs + self.other_flops


@dataclass
class NodeView:
    """A node with the concrete types of its inputs and outputs (None where unknown or absent)."""

    node: onnx.NodeProto
    inputs: list[TensorInfo | None]
    outputs: list[TensorInfo | None]
    attrs: dict[str, object] = field(init=False)

    def __post_init__(self) -> None:
        self.attrs = {a.name: onnx.helper.get_attribute_value(a) for a in self.node.attribute}

    def attr(self, name: str, default: object = None) -> object:
        value = self.attrs.get(name, default)
        return value.decode() if isinstance(value, bytes) else value

    def input(self, index: int) -> TensorInfo | None:
        return self.inputs[index] if index < len(self.inputs) else None

    def out_numel(self) -> int:
        return sum(o.numel for o in self.outputs if o is not None)


CostFn = Callable[[NodeView], Cost]
NARROW_CHANNELS = 16  # convolutions with fewer input channels than this form their own speed class


def _conv(weight_index: int) -> CostFn:
    def cost(view: NodeView) -> Cost:
        w, y = view.input(weight_index), view.outputs[0]
        if w is None or y is None:
            return Cost(note="weight or output shape unknown")
        per_output = math.prod(w.shape[1:])  # (Cin / group) x kernel
        bias_index = 8 if view.node.op_type == "QLinearConv" else 2
        bias = y.numel if view.input(bias_index) is not None and view.node.op_type != "ConvInteger" else 0
        return Cost(macs=y.numel * per_output, other_flops=bias)

    return cost


def _conv_transpose(view: NodeView) -> Cost:
    x, w, y = view.input(0), view.input(1), view.outputs[0]
    if x is None or w is None or y is None:
        return Cost(note="input, weight or output shape unknown")
    # Each input element scatters into (Cout / group) x kernel outputs; W is [Cin, Cout / group, k...].
    macs = x.numel * w.shape[1] * math.prod(w.shape[2:])
    bias = y.numel if view.input(2) is not None else 0
    return Cost(macs=macs, other_flops=bias)


def _gemm(bias_index: int) -> CostFn:
    def cost(view: NodeView) -> Cost:
        a, y = view.input(0), view.outputs[0]
        if a is None or y is None:
            return Cost(note="input or output shape unknown")
        k = a.shape[0] if view.attr("transA", 0) else a.shape[-1]
        bias = y.numel if view.input(bias_index) is not None else 0
        return Cost(macs=y.numel * k, other_flops=bias)

    return cost


def _matmul(a_index: int, trans_attr: str | None = None) -> CostFn:
    def cost(view: NodeView) -> Cost:
        a, y = view.input(a_index), view.outputs[0]
        if a is None or y is None:
            return Cost(note="input or output shape unknown")
        transposed = bool(trans_attr and view.attr(trans_attr, 0)) and len(a.shape) >= 2
        k = a.shape[-2] if transposed else a.shape[-1]
        return Cost(macs=y.numel * k)

    return cost


def _einsum(view: NodeView) -> Cost:
    equation = str(view.attr("equation", "")).replace(" ", "")
    operands = list(view.inputs)
    if any(t is None for t in operands) or not equation:
        return Cost(note="einsum with unknown operand shapes: not counted")
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    expanded = [_expand_ellipsis(t, len(o.shape)) for t, o in zip(terms, operands, strict=False) if o]
    sizes: dict[str, int] = {}
    for letters, tensor in zip(expanded, operands, strict=False):
        assert tensor is not None
        for letter, size in zip(letters, tensor.shape, strict=True):
            sizes[letter] = max(sizes.get(letter, 1), size)
    if arrow:
        out_letters = _expand_ellipsis(rhs, len(view.outputs[0].shape)) if view.outputs[0] else list(rhs)
    else:  # implicit output: ellipsis dims, then the letters that appear exactly once, in order
        counts = {c: sum(t.count(c) for t in expanded) for c in sizes}
        out_letters = sorted(c for c in sizes if counts[c] == 1 and not c.startswith("…")) + [
            c for c in sizes if c.startswith("…")]
    if len(expanded) == 1:  # a transpose, trace or reduction: one pass over the distinct indices
        return Cost(other_flops=math.prod(sizes[c] for c in dict.fromkeys(expanded[0])))
    # Contract left to right, keeping letters still needed by later operands or the output.
    macs, current = 0, expanded[0]
    for i, nxt in enumerate(expanded[1:], start=1):
        later = set(out_letters).union(*[set(t) for t in expanded[i + 1 :]])
        union = list(dict.fromkeys([*current, *nxt]))
        macs += math.prod(sizes[c] for c in union)
        current = [c for c in union if c in later]
    note = "" if len(expanded) == 2 else "einsum over 3+ operands counted as left-to-right pairwise contraction"
    return Cost(macs=macs, note=note)


def _expand_ellipsis(term: str, rank: int) -> list[str]:
    if "..." not in term:
        return list(term)
    head, tail = term.split("...")
    n = rank - len(head) - len(tail)
    return [*head, *[f"…{i}" for i in range(n)], *tail]


def _attention(view: NodeView) -> Cost:
    """ONNX Attention (opset 23): softmax(Q K^T) V with Q/K/V as 4D [B,H,S,D] or 3D [B,S,H*D]."""
    q, k, v = view.input(0), view.input(1), view.input(2)
    if q is None or k is None or v is None:
        return Cost(note="Q, K or V shape unknown")
    if len(q.shape) == 4:
        batch, heads, s_q, d_qk = q.shape
        s_kv, d_v = k.shape[2], v.shape[3]
    else:
        heads = int(view.attr("q_num_heads", 1))  # type: ignore[arg-type]
        kv_heads = int(view.attr("kv_num_heads", heads))  # type: ignore[arg-type]
        batch, s_q, d_qk = q.shape[0], q.shape[1], q.shape[2] // heads
        s_kv, d_v = k.shape[1], v.shape[2] // kv_heads
    scores = batch * heads * s_q * s_kv
    return Cost(macs=scores * (d_qk + d_v), other_flops=scores * 6)  # scale + softmax


def _ms_attention(view: NodeView) -> Cost:
    """com.microsoft Attention: packed QKV projection of [B,S,hidden] then multi-head attention."""
    x, w = view.input(0), view.input(1)
    if x is None or w is None:
        return Cost(note="input or weight shape unknown")
    batch, seq, hidden = x.shape
    heads = int(view.attr("num_heads", 1))  # type: ignore[arg-type]
    proj = batch * seq * hidden * w.shape[1]
    head_dim = w.shape[1] // 3 // heads
    scores = batch * heads * seq * seq
    return Cost(macs=proj + scores * 2 * head_dim, other_flops=scores * 6 + batch * seq * w.shape[1])


def _multi_head_attention(view: NodeView) -> Cost:
    """com.microsoft MultiHeadAttention: Q [B,Sq,Dqk], K [B,Skv,Dqk], V [B,Skv,Dv] (projections done)."""
    q, k, v = view.input(0), view.input(1), view.input(2)
    if q is None or k is None or v is None or len(q.shape) != 3 or len(k.shape) != 3:
        return Cost(note="Q/K/V shapes unknown or packed: not counted")
    batch, s_q, d_qk = q.shape
    s_kv, d_v = k.shape[1], v.shape[-1]
    heads = int(view.attr("num_heads", 1))  # type: ignore[arg-type]
    scores = batch * heads * s_q * s_kv
    return Cost(macs=batch * s_q * s_kv * (d_qk + d_v), other_flops=scores * 6)


def _group_query_attention(view: NodeView) -> Cost:
    """com.microsoft GroupQueryAttention: Q [B,S,Hq*D], K/V [B,Skv,Hkv*D], plus past K/V [B,Hkv,P,D]."""
    q, k = view.input(0), view.input(1)
    heads = int(view.attr("num_heads", 1))  # type: ignore[arg-type]
    if q is None or len(q.shape) != 3:
        return Cost(note="query shape unknown: not counted")
    batch, s_q, width = q.shape
    head_dim = width // heads
    past = view.input(3)
    s_kv = (k.shape[1] if k is not None and len(k.shape) == 3 else s_q) + (past.shape[2] if past else 0)
    scores = batch * heads * s_q * s_kv  # grouped heads share K/V, yet every query head attends to all keys
    return Cost(macs=scores * 2 * head_dim, other_flops=scores * 6)


def _recurrent(gates: int, cell_flops: int) -> CostFn:
    def cost(view: NodeView) -> Cost:
        x, w = view.input(0), view.input(1)
        if x is None or w is None:
            return Cost(note="input or weight shape unknown")
        seq, batch = (x.shape[1], x.shape[0]) if view.attr("layout", 0) else (x.shape[0], x.shape[1])
        directions, hidden = w.shape[0], w.shape[1] // gates
        steps = seq * batch * directions
        macs = steps * gates * hidden * (x.shape[2] + hidden)
        return Cost(macs=macs, other_flops=steps * hidden * (2 * gates + cell_flops))

    return cost


def _per_output(flops_per_element: int) -> CostFn:
    return lambda view: Cost(other_flops=flops_per_element * view.out_numel())


def _variadic(view: NodeView) -> Cost:
    present = sum(1 for t in view.inputs if t is not None)
    return Cost(other_flops=max(present - 1, 1) * view.out_numel())


def _per_input(flops_per_element: int) -> CostFn:
    def cost(view: NodeView) -> Cost:
        x = view.input(0)
        return Cost(other_flops=flops_per_element * (x.numel if x else view.out_numel()))

    return cost


def _pool(view: NodeView) -> Cost:
    kernel = view.attr("kernel_shape", [1])
    return Cost(other_flops=view.out_numel() * math.prod(kernel))  # type: ignore[arg-type]


def _resize(view: NodeView) -> Cost:
    mode = str(view.attr("mode", "nearest"))
    x, y = view.input(0), view.outputs[0]
    if mode == "nearest" or x is None or y is None:
        return Cost()
    resized = sum(1 for a, b in zip(x.shape, y.shape, strict=False) if a != b) or 1
    taps = (2 if mode == "linear" else 4) ** resized
    return Cost(other_flops=y.numel * taps * 2)


def _linear_ml(view: NodeView) -> Cost:
    """ai.onnx.ml LinearClassifier / LinearRegressor: coefficients [targets x features] in an attribute."""
    x = view.input(0)
    rows = x.shape[0] if x is not None and x.shape else 1
    return Cost(macs=rows * len(view.attr("coefficients", [])))  # type: ignore[arg-type]


def _svm(view: NodeView) -> Cost:
    x = view.input(0)
    if x is None or len(x.shape) != 2:
        return Cost(note="input shape unknown")
    support = len(view.attr("support_vectors", [])) // max(x.shape[1], 1)  # type: ignore[arg-type]
    coefficients = len(view.attr("coefficients", []))  # type: ignore[arg-type]
    rows, features = x.shape
    return Cost(macs=rows * (support * features + coefficients) if support else rows * coefficients)


def _tree_ensemble(view: NodeView) -> Cost:
    """One comparison per level visited: trees x depth of a balanced tree of the same size, per row."""
    x = view.input(0)
    rows = x.shape[0] if x is not None and x.shape else 1
    tree_ids = view.attr("nodes_treeids", None) or view.attr("tree_roots", [])
    trees = len(set(tree_ids)) if tree_ids else 1  # type: ignore[arg-type]
    nodes = len(view.attr("nodes_featureids", []) or view.attr("nodes_splits", []) or [])  # type: ignore[arg-type]
    depth = max(math.ceil(math.log2(nodes / trees + 1)), 1) if nodes else 1
    return Cost(other_flops=rows * trees * depth)


def attribute_parameters(node: onnx.NodeProto) -> int:
    """Learned values that ai.onnx.ml ops keep in attributes (coefficients, thresholds, leaf weights)."""
    if node.domain != "ai.onnx.ml":
        return 0
    return sum(len(a.floats) + math.prod(a.t.dims) * bool(a.t.dims) for a in node.attribute
               if a.type in (onnx.AttributeProto.FLOATS, onnx.AttributeProto.TENSOR))


# Elementwise ops and their FLOPs per output element.
_ELEMENTWISE = {
    **dict.fromkeys(
        ["Add", "Sub", "Mul", "Div", "Pow", "Mod", "Neg", "Abs", "Relu", "Floor", "Ceil", "Round",
         "Sqrt", "Reciprocal", "Sign", "Exp", "Log", "Sin", "Cos", "Tan", "Erf", "Not", "And", "Or",
         "Xor", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Where", "BitShift",
         "IsNaN", "IsInf", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh",
         "Cast", "CastLike", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot", "ThresholdedRelu"],
        1,
    ),
    "Clip": 2, "LeakyRelu": 2, "PRelu": 2, "Shrink": 2, "Elu": 3, "Celu": 3, "Selu": 4,
    "HardSigmoid": 3, "HardSwish": 4, "Sigmoid": 4, "Tanh": 5, "Softplus": 3, "Softsign": 3,
    "Mish": 6, "Gelu": 8, "FastGelu": 8, "BiasGelu": 9, "QuickGelu": 5,
    "QuantizeLinear": 3, "DequantizeLinear": 2, "DynamicQuantizeLinear": 4,
    "BatchNormalization": 2,
}

# Formulas grouped by the speed class they are calibrated in (see op_class).
_CONV: dict[str, CostFn] = {"Conv": _conv(1), "FusedConv": _conv(1), "NhwcConv": _conv(1), "ConvInteger": _conv(1),
                            "QLinearConv": _conv(3)}
_MATMUL: dict[str, CostFn] = {
    "Gemm": _gemm(2), "FusedGemm": _gemm(2), "QGemm": _gemm(6),
    "MatMul": _matmul(0), "MatMulInteger": _matmul(0), "QLinearMatMul": _matmul(0),
    "FusedMatMul": _matmul(0, "transA"), "MatMulNBits": _matmul(0), "DynamicQuantizeMatMul": _matmul(0),
    "Einsum": _einsum, "Attention": _attention, "MultiHeadAttention": _multi_head_attention,
    "GroupQueryAttention": _group_query_attention,
}
_RECURRENT: dict[str, CostFn] = {"LSTM": _recurrent(4, 6), "GRU": _recurrent(3, 6), "RNN": _recurrent(1, 2)}
_NORMALIZE: dict[str, CostFn] = {
    "Softmax": _per_output(5), "LogSoftmax": _per_output(6), "Hardmax": _per_output(1),
    "LayerNormalization": _per_output(8), "SimplifiedLayerNormalization": _per_output(6),
    "SkipLayerNormalization": _per_output(9), "InstanceNormalization": _per_output(8),
    "GroupNormalization": _per_output(8), "LpNormalization": _per_output(3), "RMSNormalization": _per_output(6),
    "MeanVarianceNormalization": _per_output(8), "LRN": _per_output(6),
}
_REDUCE: dict[str, CostFn] = {
    "MaxPool": _pool, "AveragePool": _pool, "LpPool": _pool,
    "GlobalAveragePool": _per_input(1), "GlobalMaxPool": _per_input(1), "GlobalLpPool": _per_input(2),
    "ReduceMean": _per_input(1), "ReduceSum": _per_input(1), "ReduceMax": _per_input(1),
    "ReduceMin": _per_input(1), "ReduceProd": _per_input(1), "ReduceL1": _per_input(2),
    "ReduceL2": _per_input(2), "ReduceSumSquare": _per_input(2), "ReduceLogSum": _per_input(1),
    "ReduceLogSumExp": _per_input(3), "ArgMax": _per_input(1), "ArgMin": _per_input(1),
    "TopK": _per_input(2), "CumSum": _per_input(1),
}
_RESIZE: dict[str, CostFn] = {"Resize": _resize, "Upsample": _resize}
_FORMULAS: dict[str, CostFn] = {
    **_CONV, "ConvTranspose": _conv_transpose, **_MATMUL, **_RECURRENT, **_NORMALIZE, **_REDUCE, **_RESIZE,
    "Sum": _variadic, "Max": _variadic, "Min": _variadic, "Mean": _variadic,
    "LinearClassifier": _linear_ml, "LinearRegressor": _linear_ml, "SVMClassifier": _svm, "SVMRegressor": _svm,
    "TreeEnsembleClassifier": _tree_ensemble, "TreeEnsembleRegressor": _tree_ensemble,
    "TreeEnsemble": _tree_ensemble,
    "Normalizer": _per_output(3), "Scaler": _per_output(2), "Binarizer": _per_output(1),
}

# Ops that move or reinterpret data but compute nothing.
MOVEMENT_OPS = frozenset({
    "Transpose", "Concat", "Split", "Slice", "Gather", "GatherElements", "GatherND", "Pad", "Tile",
    "Expand", "DepthToSpace", "SpaceToDepth", "ScatterND", "ScatterElements", "Scatter", "Compress",
    "ReverseSequence", "Trilu", "OneHot", "NonZero", "Unique", "ReorderInput", "ReorderOutput",
    "ZipMap", "ArrayFeatureExtractor", "LabelEncoder", "CastMap", "FeatureVectorizer", "Imputer",
})
VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
SHAPE_OPS = frozenset({"Shape", "Size", "Constant", "ConstantOfShape", "Range", "EyeLike"})


# Ops whose com.microsoft version means something else than the ONNX op of the same name.
_MS_FORMULAS: dict[str, CostFn] = {"Attention": _ms_attention}


def node_cost(view: NodeView) -> Cost:
    """MACs and other FLOPs of one node (control-flow bodies are handled by the caller)."""
    op = view.node.op_type
    if view.node.domain == "com.microsoft" and op in _MS_FORMULAS:
        return _MS_FORMULAS[op](view)
    if op in _FORMULAS:
        return _FORMULAS[op](view)
    if op in _ELEMENTWISE:
        return Cost(other_flops=_ELEMENTWISE[op] * view.out_numel())
    if op in MOVEMENT_OPS or op in VIEW_OPS or op in SHAPE_OPS:
        return Cost()
    return Cost(other_flops=view.out_numel(), note=f"no cost formula for {op}: counted 1 FLOP per output element")


def op_class(node: onnx.NodeProto, weight: TensorInfo | None = None) -> str:
    """The class a node's speed is calibrated by (see tierml.hardware.calibrate)."""
    op = node.op_type
    if op in _CONV:
        return _conv_class(node, weight)
    classes = (("conv_transpose", {"ConvTranspose"}), ("matmul", _MATMUL), ("recurrent", _RECURRENT),
               ("normalize", _NORMALIZE), ("reduce", _REDUCE), ("resize", _RESIZE), ("view", VIEW_OPS),
               ("shape", SHAPE_OPS), ("movement", MOVEMENT_OPS), ("control", {"If", "Loop", "Scan"}))
    return next((name for name, ops in classes if op in ops), "elementwise")


def _conv_class(node: onnx.NodeProto, weight: TensorInfo | None) -> str:
    if weight is None or len(weight.shape) < 3:
        return "conv"
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    if group > 1 and weight.shape[1] == 1:
        return "conv_depthwise"
    if group == 1 and weight.shape[1] < NARROW_CHANNELS:
        return "conv_narrow"  # too few input channels to fill a SIMD register block: a slower kernel path
    return "conv_pointwise" if math.prod(weight.shape[2:]) == 1 else "conv"
