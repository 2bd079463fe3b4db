"""The Python API: every verb is a function on `tierml`, and `tierml plan` reads eval files as `tierml build` does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

import tierml
from tests.support.calibration import calibration
from tests.support.paths import ROOT
from tierml.data.dataset import load_dataset, model_input
from tierml.data.scoring import score
from tierml.hardware.calibrate import save
from tierml.report.plan import plan_report

DIGITS = ROOT / "examples" / "digits"


def test_the_readme_main_job_in_four_lines(tmp_path, monkeypatch):
    save(calibration(efficiency=0.5, session_us=5, node_us=1), tmp_path / "host.json")
    monkeypatch.chdir(ROOT)
    # the README's lines, with a calibration file given so the test does not calibrate this host
    plan = tierml.plan("examples/digits/tierml.yaml", calibration=tmp_path / "host.json")
    (tmp_path / "plan.html").write_text(plan_report(plan))
    assert plan.winner == "local:iphone-15-pro"
    assert "<svg" in (tmp_path / "plan.html").read_text()


def test_stage_packages_are_their_verbs_and_stay_packages():
    import tierml.optimize.ladder
    import tierml.plan.planner

    assert callable(tierml.plan) and callable(tierml.optimize) and callable(tierml.export)
    assert tierml.plan.planner.Plan.__name__ == "Plan" and tierml.optimize.ladder.measure_variants
    assert tierml.build.__module__ == "tierml.stages.building"
    with pytest.raises(AttributeError, match="no attribute 'deploy_everything'"):
        tierml.deploy_everything  # noqa: B018


def _spec(tmp_path: Path, model: Path, x: np.ndarray, y: np.ndarray, shape: list[int],
          min_accuracy: float | None = 0.5) -> Path:
    np.savez(tmp_path / "eval.npz", x=x, y=y)
    spec = yaml.safe_load((DIGITS / "tierml.yaml").read_text())
    spec["model"] = {"path": str(model), "input_shapes": {_input(model): shape}}
    spec["data"] = {"eval": str(tmp_path / "eval.npz")}
    spec["requirements"]["min_accuracy"] = min_accuracy
    path = tmp_path / "tierml.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("labels", ["integer", "float", "column", "one-hot"])
def test_plan_reads_every_label_form_build_reads(tmp_path, labels):
    data = np.load(DIGITS / "data" / "eval.npz")
    x, y = data["x"][:200], data["y"][:200].astype(np.int64)
    given = {"integer": y, "float": y.astype(np.float32), "column": y[:, None],
             "one-hot": np.eye(10, dtype=np.float32)[y]}[labels]
    path = _spec(tmp_path, DIGITS / "model.onnx", x, given, [1, 1, 8, 8])
    cal = calibration(efficiency=0.5, session_us=5, node_us=1)
    result = tierml.plan(path, calibration=cal)
    proto = onnx.load(DIGITS / "model.onnx")
    info = model_input(proto, {"input": (1, 1, 8, 8)})
    expected, _ = score(proto, load_dataset(tmp_path / "eval.npz", info, "eval"))
    assert result.accuracy is not None and result.accuracy.method == "measured"
    assert result.accuracy.value == pytest.approx(expected.value) and expected.value > 0.9


def _input(model: Path) -> str:
    return onnx.load(model).graph.input[0].name


def _token_model(path: Path) -> Path:
    """Token ids [n, 4] (int64) -> embedding -> mean -> 3 class scores: a model whose input is integers."""
    rng = np.random.default_rng(0)
    table = numpy_helper.from_array(rng.standard_normal((20, 6)).astype(np.float32), "table")
    weight = numpy_helper.from_array(rng.standard_normal((6, 3)).astype(np.float32), "weight")
    nodes = [helper.make_node("Gather", ["table", "ids"], ["emb"]),
             helper.make_node("ReduceMean", ["emb"], ["mean"], axes=[1], keepdims=0),
             helper.make_node("MatMul", ["mean", "weight"], ["scores"])]
    graph = helper.make_graph(nodes, "tokens", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["n", 4])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", 3])],
                              [table, weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_plan_feeds_integer_inputs_as_build_does(tmp_path):
    model = _token_model(tmp_path / "tokens.onnx")
    ids = np.random.default_rng(1).integers(0, 20, (64, 4))
    proto = onnx.load(model)
    truth = (np.eye(20)[ids].mean(axis=1) @ numpy_helper.to_array(proto.graph.initializer[0])
             @ numpy_helper.to_array(proto.graph.initializer[1])).argmax(axis=1)
    labels = truth.copy()
    labels[:16] = (labels[:16] + 1) % 3  # a quarter wrong: accuracy 0.75 exactly
    for x in (ids, ids.astype(np.float32)):  # integer ids, and integer ids saved as floats
        result = tierml.plan(_spec(tmp_path, model, x, labels, [1, 4]), calibration=calibration(efficiency=0.5))
        assert result.accuracy is not None and result.accuracy.value == pytest.approx(0.75)


def test_plan_refuses_fractional_token_ids_like_build(tmp_path):
    model = _token_model(tmp_path / "tokens.onnx")
    path = _spec(tmp_path, model, np.full((8, 4), 0.5, np.float32), np.zeros(8, np.int64), [1, 4])
    with pytest.raises(tierml.errors.TiermlError, match="holds fractions"):
        tierml.plan(path, calibration=calibration(efficiency=0.5))
