"""Tensor element types and sizes, the way ONNX names them."""

from __future__ import annotations

import math

import numpy as np
import onnx
from pydantic import BaseModel

# Bits per element of ONNX element types that numpy cannot size (sub-byte and float8 types).
_SPECIAL_BITS = {
    "INT4": 4, "UINT4": 4, "FLOAT4E2M1": 4, "INT2": 2, "UINT2": 2,
    "FLOAT8E4M3FN": 8, "FLOAT8E4M3FNUZ": 8, "FLOAT8E5M2": 8, "FLOAT8E5M2FNUZ": 8, "FLOAT8E8M0": 8,
    "BFLOAT16": 16,
}


def dtype_name(elem_type: int) -> str:
    """ONNX element-type enum -> its name in lower case ('float', 'int8', ...)."""
    return onnx.TensorProto.DataType.Name(elem_type).lower()


def dtype_bits(elem_type: int) -> int:
    """Bits per element; 0 for types with no fixed size (strings)."""
    name = onnx.TensorProto.DataType.Name(elem_type)
    if name in _SPECIAL_BITS:
        return _SPECIAL_BITS[name]
    if name in ("STRING", "UNDEFINED"):
        return 0
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).itemsize * 8


class TensorInfo(BaseModel):
    """A tensor with a concrete shape: what every size, liveness and cost figure is computed from."""

    name: str
    elem_type: int
    shape: tuple[int, ...]

    @property
    def dtype(self) -> str:
        return dtype_name(self.elem_type)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return (self.numel * dtype_bits(self.elem_type) + 7) // 8

    def describe(self) -> str:
        """`x: float[1x3x224x224]`."""
        return f"{self.name}: {self.dtype}[{'x'.join(map(str, self.shape))}]"


_FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}


def int8_bytes(info: TensorInfo) -> int:
    """Bytes the tensor would take with floating-point values quantized to int8 (others unchanged)."""
    return info.numel if info.elem_type in _FLOATS else info.nbytes
