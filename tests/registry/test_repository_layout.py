"""The model repository layout: versions appear whole or not at all, never change, and carry a config.pbtxt
that tierml serve (and Triton) read back as exactly what the ONNX graph implies."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import onnx
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from tierml.registry import layout
from tierml.registry.model_config import config_text
from tierml.serve.config import build_config, read_config_file
from tierml.serve.pbtxt import parse
from tierml.serve.repository import Repository

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits" / "model.onnx"


def _model(inputs: dict[str, tuple[int, list]], outputs: dict[str, tuple[int, list]]) -> onnx.ModelProto:
    """Identity from the first input to every output (types and shapes as declared)."""
    first = next(iter(inputs))
    nodes = [helper.make_node("Identity", [first], [name]) for name in outputs]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, t, s) for n, (t, s) in inputs.items()],
                              [helper.make_tensor_value_info(n, t, s) for n, (t, s) in outputs.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _round_trip(tmp_path: Path, proto: onnx.ModelProto, name: str, **options: int) -> dict:
    layout.write_version(tmp_path, name, {layout.MODEL_FILE: proto.SerializeToString()})
    layout.write_config(tmp_path, name, proto, **options)
    raw, path = read_config_file(layout.model_dir(tmp_path, name))
    assert path == layout.config_path(tmp_path, name)
    return raw


GRAPHS = {
    "batching": _model({"x": (TensorProto.FLOAT, ["batch", 64])}, {"y": (TensorProto.FLOAT, ["batch", 64])}),
    "fixed": _model({"x": (TensorProto.FLOAT, [1, 3, 8, 8])}, {"y": (TensorProto.FLOAT, [1, 3, 8, 8])}),
    "mixed": _model({"ids": (TensorProto.INT64, ["batch", "seq"]), "mask": (TensorProto.BOOL, ["batch", "seq"])},
                    {"out": (TensorProto.INT64, ["batch", "seq"]), "copy": (TensorProto.INT64, ["batch", "seq"])}),
}


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_the_written_config_serves_exactly_what_the_graph_alone_did(tmp_path, graph):
    proto = GRAPHS[graph]
    raw = _round_trip(tmp_path, proto, graph)
    assert raw["name"] == graph and raw["platform"] == "onnxruntime_onnx"
    assert build_config(raw, graph, proto, "config.pbtxt") == build_config({}, graph, proto, "no config")


def test_the_config_names_types_and_dims_as_triton_does(tmp_path):
    proto = onnx.load(DIGITS)  # input [batch, 1, 8, 8] -> logits [batch, 10]
    raw = _round_trip(tmp_path, proto, "digits")
    assert raw["max_batch_size"] == 32 and raw["dynamic_batching"] == {}  # what serve completes it with
    assert raw["input"] == [{"name": "input", "data_type": "TYPE_FP32", "dims": [1, 8, 8]}]  # no batch dim
    assert raw["output"] == [{"name": "logits", "data_type": "TYPE_FP32", "dims": [10]}]
    fixed = _round_trip(tmp_path, GRAPHS["fixed"], "fixed")
    assert fixed["max_batch_size"] == 0 and "dynamic_batching" not in fixed
    assert fixed["input"] == [{"name": "x", "data_type": "TYPE_FP32", "dims": [1, 3, 8, 8]}]
    mixed = _round_trip(tmp_path, GRAPHS["mixed"], "mixed")
    assert [(t["name"], t["data_type"], t["dims"]) for t in mixed["input"]] == [("ids", "TYPE_INT64", [-1]),
                                                                              ("mask", "TYPE_BOOL", [-1])]


def test_a_split_tail_config_says_what_its_old_yaml_said(tmp_path):
    proto = GRAPHS["batching"]
    raw = _round_trip(tmp_path, proto, "tail", max_batch_size=0, instances=1, threads=2)
    old = yaml.safe_load("max_batch_size: 0\ninstance_group: [{count: 1}]\nparameters: {intra_op_thread_count: 2}\n")
    assert build_config(raw, "tail", proto, "pbtxt") == build_config(old, "tail", proto, "yaml")


@settings(max_examples=40, deadline=None)
@given(names=st.lists(st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=12), min_size=2,
                      max_size=4, unique=True),
       dims=st.lists(st.one_of(st.integers(1, 4096), st.just("n")), max_size=3))
def test_any_tensor_names_and_dims_survive_the_text_format(names, dims):
    inputs = {names[0]: (TensorProto.FLOAT, ["batch", *dims])}
    outputs = {n: (TensorProto.FLOAT, ["batch", *dims]) for n in names[1:]}
    proto = _model(inputs, outputs)
    raw = parse(config_text(proto, "m"))
    assert build_config(raw, "m", proto, "config.pbtxt") == build_config({}, "m", proto, "no config")


def test_a_graph_triton_cannot_describe_gets_a_version_but_no_config(tmp_path):
    proto = _model({"x": (TensorProto.BFLOAT16, [1, 4])}, {"y": (TensorProto.BFLOAT16, [1, 4])})
    layout.write_version(tmp_path, "bf16", {layout.MODEL_FILE: proto.SerializeToString()})
    layout.write_config(tmp_path, "bf16", proto)
    assert sorted(p.name for p in layout.model_dir(tmp_path, "bf16").iterdir()) == ["1"]


def test_a_second_write_is_version_2_and_version_1_stays_as_it_was(tmp_path):
    first = GRAPHS["fixed"].SerializeToString()
    second = GRAPHS["batching"].SerializeToString()
    assert layout.next_version(tmp_path, "m") == 1
    assert layout.write_version(tmp_path, "m", {layout.MODEL_FILE: first, "lineage.json": b"{}"}) == 1
    assert layout.write_version(tmp_path, "m", {layout.MODEL_FILE: second}) == 2
    assert layout.versions(tmp_path, "m") == {1: layout.model_path(tmp_path, "m", 1),
                                             2: layout.model_path(tmp_path, "m", 2)}
    assert layout.model_path(tmp_path, "m", 1).read_bytes() == first
    assert (layout.version_dir(tmp_path, "m", 1) / "lineage.json").read_bytes() == b"{}"
    assert layout.latest_model(tmp_path, "m") == layout.model_path(tmp_path, "m", 2)
    with pytest.raises(FileExistsError):  # a version is never rewritten
        layout.write_version(tmp_path, "m", {layout.MODEL_FILE: second}, version=1)
    assert layout.model_path(tmp_path, "m", 1).read_bytes() == first


def test_a_write_that_fails_midway_leaves_no_version(tmp_path, monkeypatch):
    layout.write_version(tmp_path, "m", {layout.MODEL_FILE: b"v1"})
    written = []

    def full_disk(path: Path, data: bytes) -> None:
        if written:
            raise OSError(28, "No space left on device")
        written.append(path)
        path.write_bytes(data)

    monkeypatch.setattr(layout, "write_synced", full_disk)
    with pytest.raises(OSError, match="No space left"):
        layout.write_version(tmp_path, "m", {layout.MODEL_FILE: b"v2", "lineage.json": b"{}"})
    assert list(layout.versions(tmp_path, "m")) == [1] and layout.next_version(tmp_path, "m") == 2
    assert sorted(p.name for p in layout.model_dir(tmp_path, "m").iterdir()) == ["1"]


def test_a_writer_killed_midway_leaves_no_version_and_blocks_no_number(tmp_path):
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from tierml.registry import layout

        def dies(path, data):
            path.write_bytes(data[:3])  # half a file, then the process is gone: no cleanup runs
            os._exit(9)

        layout.write_synced = dies
        layout.write_version(Path({str(tmp_path)!r}), "fresh", {{"model.onnx": b"complete model"}})
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 9, run.stderr
    leftovers = [p.name for p in layout.model_dir(tmp_path, "fresh").iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".")  # the half-written folder is hidden
    assert layout.versions(tmp_path, "fresh") == {} and layout.latest_model(tmp_path, "fresh") is None
    assert layout.models(tmp_path) == ["fresh"] and layout.next_version(tmp_path, "fresh") == 1


def test_tierml_serve_loads_what_the_layout_wrote(tmp_path):
    proto = GRAPHS["batching"]
    for _ in range(2):
        layout.write_version(tmp_path, "mlp", {layout.MODEL_FILE: proto.SerializeToString()})
    layout.write_config(tmp_path, "mlp", proto)
    repository = Repository(tmp_path)
    try:
        repository.load("mlp")
        served = repository.get("mlp")
        assert served.version == 2 and served.config.max_batch_size == 32 and served.config.batching is not None
    finally:
        repository.close()


FLOOR = ("tierml/files.py", "tierml/registry/__init__.py", "tierml/registry/layout.py",
         "tierml/registry/model_config.py", "tierml/registry/datatypes.py")
BELOW_MODEL = ("tierml.errors", "tierml.files", "tierml.model", "tierml.registry.layout",
               "tierml.registry.model_config", "tierml.registry.datatypes")


def test_the_floor_imports_nothing_above_model():
    """optimize and hybrid write through the layout, so it must not import the stages above them."""
    offenders = []
    for relative in FLOOR:
        tree = ast.parse((ROOT / relative).read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [f"{node.module}.{a.name}" for a in node.names] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{relative}:{node.lineno} {n}" for n in names
                          if n.startswith("tierml") and not n.startswith(BELOW_MODEL)]
    assert not offenders, "\n".join(offenders)
