"""The op table of each runtime tierml exports to: the ONNX ops it runs, the ones it folds away, and what to use
instead of the ones it lacks.

Data only, one table per runtime, read by both sides: `tierml.model.support` (what `tierml analyze` reports each
tier can run) and the export target for that runtime (`tierml.export`, whose `supported_ops` come from here), so
the analysis and the exporter cannot disagree. Ops are named by `op_key`: the op type for the ONNX domain,
`domain:op` for others (ORT's contrib ops, e.g. `com.microsoft:QLinearConv`), the form ONNX Runtime's
reduced-operator build configurations use for ORT Web / ORT Mobile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import onnx

ONNX_DOMAINS = ("", "ai.onnx")


def op_key(node: onnx.NodeProto) -> str:
    """How the tables name a node's op: `Conv` in the ONNX domain, `com.microsoft:QLinearConv` elsewhere."""
    return node.op_type if node.domain in ONNX_DOMAINS else f"{node.domain}:{node.op_type}"


@dataclass(frozen=True)
class OpTable:
    """What one runtime executes, by op."""

    runtime: str  # how reports name it
    supported: frozenset[str]  # ops it runs (per-op conditions, e.g. constant weights, are the checker's)
    folded: frozenset[str] = frozenset()  # ops its exporter removes: into weights, views or the int8 boundary
    alternatives: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # op -> use instead
    summary: str = ""  # the supported set as error messages name it


# The int8 C kernels of `tierml export --target mcu` (TFLite Micro's int8 scheme; docs/export.md).
MCU_INT8 = OpTable(
    runtime="tierml int8 C kernels",
    supported=frozenset({
        "Conv", "Gemm", "MatMul", "Add", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool",
        "Reshape", "Flatten", "Concat", "Softmax",
    }),
    # into the previous layer's weights (BatchNormalization), the next Conv's padding (zero Pad), a view
    # (Identity, Dropout, Squeeze, Unsqueeze) or the int8 boundary (QuantizeLinear, DequantizeLinear, also
    # ORT's contrib-domain forms of them)
    folded=frozenset({
        "BatchNormalization", "Pad", "Identity", "Dropout", "Squeeze", "Unsqueeze", "QuantizeLinear",
        "DequantizeLinear", "com.microsoft:QuantizeLinear", "com.microsoft:DequantizeLinear",
    }),
    alternatives=MappingProxyType({
        "Sigmoid": "use Relu or Relu6 (Clip 0..6) activations",
        "HardSigmoid": "use Relu6 (Clip 0..6)",
        "HardSwish": "use Relu6 (Clip 0..6)",
        "Tanh": "use Relu6 (Clip 0..6)",
        "Mul": "fold constant scales into the previous Conv/Gemm, or drop the gating branch",
        "Div": "fold constant scales into the previous Conv/Gemm",
        "Sub": "fold constant offsets into the previous layer's bias",
        "LayerNormalization": "use BatchNormalization (folds into the previous Conv)",
        "Transpose": "keep the layout fixed (channels-last) instead of transposing",
        "Resize": "use a strided ConvTranspose-free design or nearest-neighbour via Concat",
        "ConvTranspose": "use Conv after a nearest-neighbour upsample, or remove the decoder",
        "LSTM": "use a 1-D Conv stack (temporal convolution) instead of a recurrent cell",
        "GRU": "use a 1-D Conv stack (temporal convolution) instead of a recurrent cell",
        "ReduceMean": "use GlobalAveragePool",
    }),
    summary="Conv, depthwise Conv, Gemm/MatMul, Add, Relu/Relu6/Clip, MaxPool/AveragePool/GlobalAveragePool, "
            "Reshape/Flatten, Concat, Softmax (BatchNormalization, Identity, Dropout fold away)",
)
