"""Tensor datatypes as Triton names them (config.pbtxt, Open Inference Protocol), with numpy and ONNX counterparts."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

# OIP datatype -> numpy dtype (BYTES tensors are numpy object arrays of `bytes`).
NUMPY = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8), "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32), "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8), "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32), "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}

_ONNX = {
    TensorProto.BOOL: "BOOL",
    TensorProto.UINT8: "UINT8", TensorProto.UINT16: "UINT16",
    TensorProto.UINT32: "UINT32", TensorProto.UINT64: "UINT64",
    TensorProto.INT8: "INT8", TensorProto.INT16: "INT16",
    TensorProto.INT32: "INT32", TensorProto.INT64: "INT64",
    TensorProto.FLOAT16: "FP16", TensorProto.FLOAT: "FP32", TensorProto.DOUBLE: "FP64",
    TensorProto.STRING: "BYTES",
}

_NUMPY_TO_OIP = {dtype: name for name, dtype in NUMPY.items()}


def from_onnx(elem_type: int) -> str | None:
    """OIP datatype of an ONNX element type, or None when the protocol has no such type (bfloat16, float8...)."""
    return _ONNX.get(elem_type)


def from_numpy(dtype: np.dtype) -> str:
    """OIP datatype of a numpy dtype (strings and objects are BYTES)."""
    if dtype.kind in "OSU":
        return "BYTES"
    return _NUMPY_TO_OIP[dtype]


def parse_config_type(text: str) -> str:
    """`TYPE_FP32` (Triton config) or `FP32` -> `FP32`; Triton's TYPE_STRING is OIP's BYTES."""
    name = text.removeprefix("TYPE_")
    name = "BYTES" if name == "STRING" else name
    if name not in NUMPY:
        raise ValueError(f"unknown data type '{text}' (expected one of {', '.join('TYPE_' + n for n in NUMPY)})")
    return name


def config_type(datatype: str) -> str:
    """`FP32` -> `TYPE_FP32`, as Triton's model configuration spells it."""
    return "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"
