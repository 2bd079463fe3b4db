"""The layout conversions ONNX Runtime inserts when it runs a graph on this host.

With ORT_ENABLE_ALL on x86, ORT runs eligible convolutions and pools with channels packed in
blocks (NCHWc). Where a blocked tensor meets an op that does not understand the layout it inserts
a ReorderOutput, and where a plain tensor enters a blocked convolution a ReorderInput. Each reads
and writes the whole tensor: on the PP-OCR detector they were about a tenth of the run time.

Which tensors get converted depends on ORT's version and the CPU (block size, kernel
eligibility), so instead of re-implementing its rules we ask ORT: its graph optimizer rewrites the
model (no inference runs) and we read the conversions off the optimized graph.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
from pydantic import BaseModel

from tierml.model.tensors import TensorInfo

NCHWC_DOMAIN = "com.microsoft.nchwc"


class Reorder(BaseModel):
    """One conversion: `tensor` into the blocked layout (direction "input") or back out of it ("output")."""

    tensor: str
    direction: str
    bytes: int


def runtime_reorders(model: onnx.ModelProto, tensors: dict[str, TensorInfo]) -> list[Reorder]:
    """The NCHWc conversions ORT's optimizer inserts into `model` (whose inputs have concrete shapes)."""
    from tierml.model.session import make_session

    with tempfile.TemporaryDirectory(prefix="tierml-layout-") as tmp:
        path = Path(tmp) / "optimized.onnx"
        try:
            make_session(model, threads=None, log_severity=4, optimized_path=path)
            optimized = onnx.load(path, load_external_data=False)
        except Exception:  # models ORT cannot optimize or save (>2 GB) are estimated without conversions
            return []
    reorders = []
    for node in optimized.graph.node:
        if node.domain != NCHWC_DOMAIN or node.op_type not in ("ReorderInput", "ReorderOutput"):
            continue
        channels_last = any(a.name == "channels_last" and a.i for a in node.attribute)
        if channels_last:
            continue  # it replaced a Transpose to NHWC, which is already costed as that Transpose
        tensor = node.input[0] if node.op_type == "ReorderInput" else node.output[0]
        info = tensors.get(tensor)
        if info is not None:
            direction = "input" if node.op_type == "ReorderInput" else "output"
            reorders.append(Reorder(tensor=tensor, direction=direction, bytes=info.nbytes))
    return reorders
