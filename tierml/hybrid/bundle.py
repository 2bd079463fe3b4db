"""A split deployment on disk: what the device runs, what the server hosts, and the table that picks between them.

    <out>/split.json                      table, cut profiles, settings
    <out>/device/full.onnx                device-only model (also the fallback when the server is away)
    <out>/device/head_<i>.onnx            head of table cut i
    <out>/server/<model>_c<i>_<enc>/      tail of cut i with its decoder, a Triton-layout model repository
    <out>/server/tierml_probe/            a bandwidth probe (takes any bytes, answers 8)

`tierml serve <out>/server` hosts the tails; `tierml split run <out> --server URL` runs the device side.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from tierml.hybrid import encoding as enc
from tierml.hybrid.cost import CutProfile, Wire
from tierml.hybrid.table import SplitTable
from tierml.model.load import serialize
from tierml.model.partition import Cut, PartitionGraph
from tierml.registry.layout import MODEL_FILE, write_config, write_version

PROBE = "tierml_probe"


def tail_name(model: str, cut: int, precision: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_-]', '_', model)}_c{cut}_{precision}"


@dataclass
class Bundle:
    """What `tierml split run` loads: the table, the cut profiles (for predictions) and where the models are."""

    root: Path
    model: str
    table: SplitTable
    profiles: list[CutProfile]
    encodings: list[str]

    @property
    def device_dir(self) -> Path:
        return self.root / "device"

    def head_path(self, cut: int) -> Path | None:
        path = self.device_dir / f"head_{cut}.onnx"
        return path if path.exists() else None

    def tail(self, cut: int, encoding: str) -> str:
        return tail_name(self.model, cut, enc.Encoding.parse(encoding).precision)

    def tensors(self, cut: int) -> tuple[str, ...]:
        return self.profiles[cut].cut.tensors


def write_bundle(out: Path, model_name: str, graph: PartitionGraph, profiles: list[CutProfile], table: SplitTable,
                 encodings: list[str], server_threads: int = 1, all_cuts: bool = False) -> Bundle:
    """Write the device and server sides for the cuts the table uses (every profiled cut if `all_cuts`)."""
    device, server = out / "device", out / "server"
    device.mkdir(parents=True, exist_ok=True)
    server.mkdir(parents=True, exist_ok=True)
    (device / "full.onnx").write_bytes(serialize(graph.model))
    used = range(len(profiles)) if all_cuts else sorted({c.cut for c in table.choices})
    for i in used:
        cut = profiles[i].cut
        head = graph.head_model(cut)
        if head is not None:
            (device / f"head_{i}.onnx").write_bytes(serialize(head))
        tail = graph.tail_model(cut)
        if tail is None or not cut.tensors:
            continue
        precisions = {enc.Encoding.parse(e).precision for e in encodings} if all_cuts else {
            enc.Encoding.parse(c.encoding).precision for c in table.choices if c.cut == i}
        for precision in precisions:
            write_server_model(server, tail_name(model_name, i, precision), enc.decoding_tail(tail, precision),
                                server_threads)
    write_server_model(server, PROBE, probe_model(), 1)
    data = {"model": model_name, "encodings": encodings, "table": table.to_dict(),
            "profiles": [_profile_dict(p) for p in profiles]}
    (out / "split.json").write_text(json.dumps(data, indent=1))
    return Bundle(out, model_name, table, profiles, encodings)


def load_bundle(root: Path) -> Bundle:
    data = json.loads((root / "split.json").read_text())
    profiles = [CutProfile(Cut(frozenset(p["head"]), tuple(p["tensors"]), p["nbytes"]), p["head_ms"], p["tail_ms"],
                           p["response_bytes"], {k: Wire(**w) for k, w in p["wire"].items()}, p["method"])
                for p in data["profiles"]]
    return Bundle(root, data["model"], SplitTable.from_dict(data["table"]), profiles, data["encodings"])


def _profile_dict(p: CutProfile) -> dict:
    return {"head": sorted(p.cut.head), "tensors": list(p.cut.tensors), "nbytes": p.cut.nbytes, "head_ms": p.head_ms,
            "tail_ms": p.tail_ms, "response_bytes": p.response_bytes, "method": p.method,
            "wire": {k: asdict(w) for k, w in p.wire.items()}}


def write_server_model(repo: Path, name: str, model: onnx.ModelProto, threads: int) -> None:
    """Add `model` to the server's repository as the next version of `name`, served unbatched on one instance."""
    write_version(repo, name, {MODEL_FILE: serialize(model)})
    write_config(repo, name, model, max_batch_size=0, instances=1, threads=threads)


def probe_model() -> onnx.ModelProto:
    """payload: uint8[n] -> size: int64[1] (the body is what is timed)."""
    graph = helper.make_graph([helper.make_node("Shape", ["payload"], ["size"])], "probe",
                              [helper.make_tensor_value_info("payload", TensorProto.UINT8, ["n"])],
                              [helper.make_tensor_value_info("size", TensorProto.INT64, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model
