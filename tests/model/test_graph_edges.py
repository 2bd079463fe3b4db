"""Graph shapes real exporters produce: control flow, stale shapes, local functions, quantized tensors."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.support.calibration import calibration
from tests.support.onnx_models import make_model
from tests.support.paths import DIGITS
from tests.support.references import executor_peak, run_all_tensors
from tierml.errors import TiermlError
from tierml.hardware.assessment import assess_device
from tierml.hardware.catalog import load_catalog
from tierml.model.load import load_model
from tierml.model.profile import analyze

rng = np.random.default_rng(0)


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def loop_model(trips: int = 3) -> onnx.ModelProto:
    """acc = sigmoid(x); repeat `trips` times: acc += relu(x) @ W  (relu(x) is read only inside the body)."""
    body = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["mm"]), helper.make_node("Add", ["acc_in", "mm"], ["acc_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body", [vi("i", [], TensorProto.INT64), vi("cond_in", [], TensorProto.BOOL), vi("acc_in", [1, 64])],
        [vi("cond_out", [], TensorProto.BOOL), vi("acc_out", [1, 64])])
    nodes = [helper.make_node("Relu", ["x"], ["X"]), helper.make_node("Sigmoid", ["x"], ["acc0"]),
             helper.make_node("Loop", ["M", "cond", "acc0"], ["acc"], body=body)]
    graph = helper.make_graph(nodes, "loop", [vi("x", [1, 64])], [vi("acc", [1, 64])],
                              [numpy_helper.from_array(np.array(trips, np.int64), "M"),
                               numpy_helper.from_array(np.array(True), "cond"),
                               numpy_helper.from_array(rng.standard_normal((64, 64)).astype(np.float32), "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_loop_body_reading_the_outer_graph_is_costed_per_iteration_and_keeps_its_input_alive():
    profile = analyze(loop_model(trips=3))
    loop = next(n for n in profile.nodes if n.op_type == "Loop")
    assert not loop.folded and "X" in loop.inputs  # the body's read of X is a real dependency
    assert loop.macs == 3 * 64 * 64
    tensor = 64 * 4
    assert profile.memory.timeline[-1] == 3 * tensor  # X, acc0 and acc live while the loop runs


def test_scan_counts_one_body_per_scanned_row():
    body = helper.make_graph([helper.make_node("MatMul", ["row", "W"], ["out"]),
                              helper.make_node("Identity", ["state_in"], ["state_out"])], "body",
                             [vi("state_in", [1]), vi("row", [1, 8])], [vi("state_out", [1]), vi("out", [1, 4])])
    node = helper.make_node("Scan", ["s0", "rows"], ["s", "outs"], body=body, num_scan_inputs=1)
    model = make_model([node], {"s0": (1,), "rows": (5, 1, 8)}, ["s", "outs"], {"W": np.ones((8, 4), np.float32)})
    assert analyze(model).macs == 5 * 8 * 4


def test_stale_intermediate_shapes_from_the_exporter_are_ignored():
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    model = make_model(nodes, {"x": ("N", 16)}, ["y"], {"W": np.ones((16, 32), np.float32)})
    model.graph.value_info.append(vi("h", [1, 32]))  # traced at batch 1
    profile = analyze(model, {"x": (8, 16)})
    assert profile.macs == 8 * 16 * 32
    assert profile.outputs[0].shape == (8, 32)


def test_model_local_functions_are_costed_through_their_bodies():
    function = helper.make_function("local", "MyLinear", ["a", "b"], ["c"], [helper.make_node("MatMul", ["a", "b"],
                                                                                           ["c"])],
                                    [helper.make_opsetid("", 17)])
    graph = helper.make_graph([helper.make_node("MyLinear", ["x", "W"], ["y"], domain="local")], "fn",
                              [vi("x", [4, 16])], [vi("y", None)],
                              [numpy_helper.from_array(np.ones((16, 32), np.float32), "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
                              functions=[function])
    model.ir_version = 8
    profile = analyze(model)
    assert profile.macs == 4 * 16 * 32
    assert profile.tier("cloud").supported


def test_already_quantized_activations_are_not_shrunk_again():
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("QLinearConv", ["q", "s", "z", "w", "ws", "wz", "s", "z"], ["y"], pads=[1, 1, 1, 1])]
    weights = {"s": np.array(0.1, np.float32), "z": np.array(0, np.uint8), "w": np.ones((8, 8, 3, 3), np.int8),
               "ws": np.array(0.1, np.float32), "wz": np.array(0, np.int8)}
    model = make_model(nodes, {"x": (1, 8, 32, 32)}, ["y"], weights)
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.UINT8
    profile = analyze(model)
    uint8_bytes = 8 * 32 * 32
    # Peak while the conv runs: its uint8 input and output (the float input was freed by the quantizer).
    assert profile.memory.peak_activation_bytes_int8 == profile.memory.timeline[1] == 2 * uint8_bytes
    esp = assess_device(profile, load_catalog().device("esp32-cam"), _unit_estimator(), "int8")
    assert esp.ram.need_bytes == profile.memory.peak_activation_bytes_int8


def _unit_estimator():
    from tierml.hardware.roofline import RooflineEstimator

    return RooflineEstimator(calibration())


def test_stricter_checker_does_not_reject_what_onnx_runtime_runs(tmp_path):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [vi("x", [1, 4])], [])
    output = graph.output.add()
    output.name = "y"
    output.type.tensor_type.elem_type = TensorProto.FLOAT  # a type without a shape: the checker objects
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "noshape.onnx"
    onnx.save(model, path)
    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # ORT runs it
    assert load_model(path).proto.graph.node[0].op_type == "Relu"


def test_recipe_that_raises_is_a_user_error(tmp_path):
    recipe = tmp_path / "r.py"
    recipe.write_text("def build():\n    return open('weights-missing.pt').read()\n")
    with pytest.raises(TiermlError, match=r"raised FileNotFoundError"):
        load_model(f"{recipe}:build")


def test_fp32_estimate_on_an_int8_only_device_is_refused():
    from tierml.model.load import load_onnx

    profile = analyze(load_onnx(DIGITS), {"input": (1, 1, 8, 8)})
    with pytest.raises(TiermlError, match="no fp32 compute"):
        _unit_estimator().latency(profile, load_catalog().device("coral-usb"), "fp32")


def test_zero_rates_in_a_catalogue_are_refused(tmp_path):
    path = tmp_path / "zero.yaml"
    path.write_text("devices:\n  - name: box\n    title: Box\n    tier: edge\n    kind: k\n"
                    "    peak_fp32_gflops: {value: 10, source: mlsysbook}\n"
                    "    memory_bandwidth_gbps: {value: 0, source: mlsysbook}\n"
                    "    ram_mb: {value: 100, source: mlsysbook}\n")
    with pytest.raises(TiermlError, match=r"memory_bandwidth_gbps.value must be greater than 0"):
        load_catalog([path])


@pytest.mark.parametrize("case", ["digits", "loop"])
def test_peak_memory_matches_an_independent_executor_on_real_tensor_sizes(case, digits_path):
    from tierml.model.load import load_onnx

    model, shapes = (load_onnx(digits_path), {"input": (3, 1, 8, 8)}) if case == "digits" else (loop_model(), None)
    profile = analyze(model, shapes)
    assert profile.memory.peak_activation_bytes == executor_peak(model, run_all_tensors(model, shapes or {}))
