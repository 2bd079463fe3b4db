"""The bundled example: training reproduces a good model and the exported ONNX matches PyTorch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

from tests.support.paths import ROOT
from tierml.model.load import load_onnx
from tierml.model.profile import analyze


def test_committed_model_is_accurate_on_held_out_digits(digits_path):
    data = np.load(ROOT / "examples" / "digits" / "data" / "eval.npz")
    session = ort.InferenceSession(str(digits_path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": data["x"]})[0]
    assert logits.shape == (len(data["y"]), 10)
    assert (logits.argmax(1) == data["y"]).mean() >= 0.95


@pytest.mark.slow
def test_training_script_reproduces_the_model(tmp_path):
    pytest.importorskip("torch")
    work = tmp_path / "digits"
    work.mkdir()
    for name in ("model.py", "train.py"):
        (work / name).write_text((ROOT / "examples" / "digits" / name).read_text())
    result = subprocess.run([sys.executable, str(work / "train.py")], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    accuracy = float(result.stdout.split("eval accuracy ")[1].split()[0])
    assert accuracy >= 0.95
    fresh = analyze(load_onnx(work / "model.onnx"), {"input": (1, 1, 8, 8)})
    committed = analyze(load_onnx(ROOT / "examples" / "digits" / "model.onnx"), {"input": (1, 1, 8, 8)})
    assert fresh.macs == committed.macs and fresh.params == committed.params
