from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits" / "model.onnx"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the developer's calibration cache."""
    monkeypatch.setenv("TIERML_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def digits_path() -> Path:
    return DIGITS


def make_model(nodes: list[onnx.NodeProto], inputs: dict[str, tuple], outputs: list[str],
               weights: dict[str, np.ndarray] | None = None, opset: int = 17,
               input_type: int = TensorProto.FLOAT) -> onnx.ModelProto:
    """A small ONNX model from nodes; inputs map name -> shape (dims may be strings for dynamic)."""
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(n, input_type, list(s)) for n, s in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(v, n) for n, v in (weights or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def benchmarks_on_path() -> None:
    path = str(ROOT / "benchmarks")
    if path not in sys.path:
        sys.path.insert(0, path)
