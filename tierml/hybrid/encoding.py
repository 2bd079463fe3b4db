"""How cut tensors travel: fp32, fp16, int8 affine (per tensor or per channel), optionally lz4 on the wire.

The device encodes with numpy; the server decodes inside the tail model itself (Cast / Mul / Add nodes
prepended to it), so the tail stays a plain ONNX model behind the standard inference protocol. lz4
is lossless and applies to the whole request body (HTTP Content-Encoding), so it stacks on any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import lz4.frame
import numpy as np
import onnx
from onnx import TensorProto, helper

_FLOAT = TensorProto.FLOAT
PRECISIONS = ("fp32", "fp16", "int8", "int8c")  # int8 = per tensor, int8c = per channel (axis 1)


@dataclass(frozen=True)
class Encoding:
    """A precision for float cut tensors and whether the body is lz4-compressed."""

    precision: str = "fp32"
    lz4: bool = False

    @property
    def name(self) -> str:
        return self.precision + ("+lz4" if self.lz4 else "")

    @property
    def lossless(self) -> bool:
        return self.precision == "fp32"

    @classmethod
    def parse(cls, text: str) -> Encoding:
        precision, _, rest = text.partition("+")
        if precision not in PRECISIONS or rest not in ("", "lz4"):
            raise ValueError(f"unknown encoding '{text}': use one of {', '.join(ALL_NAMES)}")
        return cls(precision, rest == "lz4")


ALL = tuple(Encoding(p, c) for p in PRECISIONS for c in (False, True))
ALL_NAMES = tuple(e.name for e in ALL)


def _is_float(array: np.ndarray) -> bool:
    return array.dtype == np.float32


def _channel_axes(array: np.ndarray, per_channel: bool) -> tuple[int, ...]:
    """Axes reduced for min/max: all of them per tensor; all but axis 1 per channel."""
    if per_channel and array.ndim >= 2:
        return tuple(a for a in range(array.ndim) if a != 1)
    return tuple(range(array.ndim))


def encode(tensors: dict[str, np.ndarray], precision: str) -> dict[str, np.ndarray]:
    """The tensors as the decoding tail takes them (float tensors only change)."""
    out: dict[str, np.ndarray] = {}
    for name, array in tensors.items():
        if not _is_float(array) or precision == "fp32":
            out[name] = array
        elif precision == "fp16":
            out[name + "__h"] = array.astype(np.float16)
        else:
            axes = _channel_axes(array, precision == "int8c")
            low = array.min(axis=axes, keepdims=True)
            span = array.max(axis=axes, keepdims=True) - low
            scale = np.where(span > 0, span / 255.0, 1.0).astype(np.float32)
            out[name + "__q"] = np.clip(np.rint((array - low) / scale), 0, 255).astype(np.uint8)
            out[name + "__scale"] = scale
            out[name + "__low"] = low.astype(np.float32)
    return out


def decode(tensors: dict[str, np.ndarray], precision: str) -> dict[str, np.ndarray]:
    """The inverse of `encode` in numpy (what the decoding tail computes)."""
    out: dict[str, np.ndarray] = {}
    for name, array in tensors.items():
        if name.endswith(("__scale", "__low")):
            continue
        if name.endswith("__q"):
            base = name[: -len("__q")]
            out[base] = array.astype(np.float32) * tensors[base + "__scale"] + tensors[base + "__low"]
        elif name.endswith("__h"):
            out[name[: -len("__h")]] = array.astype(np.float32)
        else:
            out[name] = array
    return out


def compress(body: bytes) -> bytes:
    return lz4.frame.compress(body, compression_level=0)


def decompress(body: bytes) -> bytes:
    return lz4.frame.decompress(body)


def decoding_tail(tail: onnx.ModelProto, precision: str) -> onnx.ModelProto:
    """The tail with decode nodes in front: it takes `encode(...)`'s tensors for its float inputs."""
    if precision == "fp32":
        return tail
    model = onnx.ModelProto()
    model.CopyFrom(tail)
    graph = model.graph
    inputs = list(graph.input)
    del graph.input[:]
    decoders: list[onnx.NodeProto] = []
    for vi in inputs:
        ttype = vi.type.tensor_type
        if ttype.elem_type != _FLOAT:
            graph.input.append(vi)
            continue
        dims = [d.dim_value for d in ttype.shape.dim]
        name = vi.name
        if precision == "fp16":
            graph.input.append(helper.make_tensor_value_info(name + "__h", TensorProto.FLOAT16, dims))
            decoders.append(helper.make_node("Cast", [name + "__h"], [name], to=_FLOAT, name=f"decode_{name}"))
            continue
        stat = [dims[a] if precision == "int8c" and len(dims) >= 2 and a == 1 else 1 for a in range(len(dims))]
        graph.input.extend([helper.make_tensor_value_info(name + "__q", TensorProto.UINT8, dims),
                            helper.make_tensor_value_info(name + "__scale", _FLOAT, stat),
                            helper.make_tensor_value_info(name + "__low", _FLOAT, stat)])
        decoders += [helper.make_node("Cast", [name + "__q"], [name + "__f"], to=_FLOAT, name=f"cast_{name}"),
                     helper.make_node("Mul", [name + "__f", name + "__scale"], [name + "__m"], name=f"scale_{name}"),
                     helper.make_node("Add", [name + "__m", name + "__low"], [name], name=f"shift_{name}")]
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(decoders + nodes)
    return model

