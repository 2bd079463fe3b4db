"""One ONNX Runtime session factory: every session in tierml comes from tierml.model.session."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tierml.errors import TiermlError
from tierml.model.session import make_session

PACKAGE = Path(__file__).resolve().parents[2] / "tierml"
FACTORY = PACKAGE / "model" / "session.py"
OWNED = ("InferenceSession", "SessionOptions")  # what only the factory may construct


def constructions(path: Path) -> list[tuple[int, str]]:
    """(line, name) of each call of InferenceSession / SessionOptions, however it was imported."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in OWNED:
            found.append((node.lineno, name))
    return sorted(found)


def test_every_session_in_tierml_comes_from_the_factory():
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{line} {name}" for path in sorted(PACKAGE.rglob("*.py"))
                 if path != FACTORY for line, name in constructions(path)]
    assert not offenders, "open sessions with tierml.model.session.make_session:\n" + "\n".join(offenders)
    assert {name for _, name in constructions(FACTORY)} == set(OWNED)  # the scan does see them


def test_the_scan_sees_every_spelling(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("import onnxruntime as ort\nfrom onnxruntime import InferenceSession\n"
                      "a = ort.InferenceSession(b'')\nb = InferenceSession(b'')\nc = ort.SessionOptions()\n"
                      "def f(s: ort.InferenceSession) -> None: ...\n")
    assert constructions(source) == [(3, "InferenceSession"), (4, "InferenceSession"), (5, "SessionOptions")]


def _double() -> onnx.ModelProto:
    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "double",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_sessions_run_on_the_providers_asked_for(tmp_path):
    x = np.arange(3, dtype=np.float32)[None]
    for source in (_double(), _double().SerializeToString(), tmp_path / "m.onnx"):
        if isinstance(source, Path):
            onnx.save(_double(), source)
        session = make_session(source, threads=None, optimization="none")
        assert session.get_providers() == ["CPUExecutionProvider"]
        np.testing.assert_array_equal(session.run(None, {"x": x})[0], 2 * x)


def test_a_provider_this_build_lacks_is_refused_not_silently_replaced_by_cpu():
    with pytest.raises(TiermlError, match=r"NoSuchExecutionProvider are not in this ONNX Runtime build .*"
                                          r"CPUExecutionProvider.*install the onnxruntime package"):
        make_session(_double(), providers=["NoSuchExecutionProvider", "CPUExecutionProvider"])
