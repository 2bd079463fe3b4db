"""`tierml export --target mcu`: the generated C against the real TFLite Micro interpreter, bit for bit.

Host builds run everywhere (gcc, ASan/UBSan); the Cortex-M4 builds under QEMU skip with the reason when
the Arm toolchain is absent (CI installs it: see .ci/run).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper

from tests.support.cli import run_tierml
from tests.support.mcu_models import reference_models
from tests.support.onnx_models import make_model
from tierml.data.dataset import Dataset
from tierml.errors import TiermlError
from tierml.export.mcu import McuTarget, compile_mcu, qemu_run, verify
from tierml.export.mcu_build import BOARDS, arm_toolchain_missing, build_arm, write_sources
from tierml.export.mcu_graph import UnsupportedModel, lower
from tierml.export.mcu_plan import plan_memory
from tierml.export.mcu_quant import quantize_multiplier
from tierml.export.mcu_tflite import quantize_input, run_tflm, to_tflite
from tierml.export.target import Target, target_class, targets
from tierml.model.profile import analyze
from tierml.model.runtimes import MCU_INT8, OpTable
from tierml.optimize.ladder import PORTABLE_INT8
from tierml.optimize.passes import ModelState, Workspace
from tierml.optimize.quantize import QuantizeStatic

MODELS = {m.name: m for m in reference_models(["mlp", "ds_cnn", "kws", "digits", "vww", "op_zoo"], eval_count=12)}
NO_ARM = arm_toolchain_missing()


def compiled(name: str):
    m = MODELS[name]
    profile = analyze(m.model, {"input": m.input_shape})
    return compile_mcu(m.model, profile, m.calib)


@pytest.fixture(scope="module", params=sorted(MODELS))
def exported(request, tmp_path_factory):
    """Each reference model exported and verified on the host with sanitizers."""
    name = request.param
    c = compiled(name)
    folder = tmp_path_factory.mktemp(name)
    return name, c, folder, verify(MODELS[name].model, c, folder, MODELS[name].eval, sanitize=True)


def test_host_build_is_bit_exact_with_tflm(exported):
    name, _, _, v = exported
    assert v.host_bit_exact, f"{name}: {v.host_mismatches} int8 outputs differ from TFLM"
    assert v.inputs == 12 and v.sanitized


def test_arena_is_at_most_0_7_of_tflm(exported):
    name, c, _, v = exported
    assert v.tflm_arena_bytes > 0
    assert c.plan.arena_bytes <= 0.7 * v.tflm_arena_bytes, (name, c.plan.arena_bytes, v.tflm_arena_bytes)


def test_int8_model_tracks_the_float_model(exported):
    name, _, _, v = exported
    assert v.float_argmax_agreement >= 0.75, name


def test_plan_never_overlaps_live_buffers(exported):
    _, c, _, _ = exported
    for in_place in (True, False):
        plan = plan_memory(c.graph, in_place)
        for i, a in enumerate(plan.buffers):
            for b in plan.buffers[i + 1:]:
                live_together = a.first <= b.last and b.first <= a.last
                overlap = a.offset < b.offset + b.size and b.offset < a.offset + a.size
                assert not (live_together and overlap), (a, b)
            assert a.offset + a.size <= plan.arena_bytes


@pytest.mark.skipif(bool(NO_ARM), reason=f"Cortex-M4 build under QEMU skipped: {NO_ARM}")
def test_cortex_m4_under_qemu_is_bit_exact_and_dsp_is_cheaper(exported):
    name, c, folder, _ = exported
    x = quantize_input(c.quantized, MODELS[name].eval[:4])
    golden = run_tflm(to_tflite(c.quantized), x).outputs
    plain, dsp = (qemu_run(c, folder, x, golden, "mps2-an386", k) for k in ("plain-c", "dsp"))
    assert plain.bit_exact and dsp.bit_exact
    assert plain.instructions and dsp.instructions
    if name == "op_zoo":  # pooling and odd channel counts: mostly plain-C work either way
        assert dsp.instructions < plain.instructions
    else:  # conv/FC-heavy: the acceptance bar
        assert plain.instructions / dsp.instructions >= 1.5, (plain.instructions, dsp.instructions)


@settings(max_examples=12, deadline=None)
@given(st.floats(min_value=1e-9, max_value=1e4, allow_nan=False))
def test_quantize_multiplier_is_a_q31_mantissa_and_shift(real):
    q, shift = quantize_multiplier(real)
    assert (1 << 30) <= q < (1 << 31) or q == 0
    assert math.isclose(q * 2.0 ** (shift - 31), real, rel_tol=2**-30)


def _onnx(nodes, weights, shape=(1, 4, 6, 6)):
    return make_model(nodes, {"x": shape}, ["y"], weights)


def test_unsupported_op_is_named_with_an_alternative():
    w = np.ones((4, 4, 3, 3), np.float32)
    model = _onnx([helper.make_node("Conv", ["x", "w"], ["c"], name="conv0", pads=[1, 1, 1, 1]),
                   helper.make_node("Sigmoid", ["c"], ["y"], name="gate")], {"w": w})
    with pytest.raises(UnsupportedModel, match=r"'gate' \(Sigmoid\).*use Relu or Relu6"):
        lower(model, analyze(model, {"x": (1, 4, 6, 6)}))


def _table_case(op: str):
    """A small model exercising `op` ('domain:Op' for other domains): the op alone, or with what the MCU lowering
    needs around it (a Conv to fuse an activation or fold a BatchNormalization into, a Gemm to read a flatten)."""
    domain, _, op_type = op.rpartition(":")
    rng = np.random.default_rng(0)
    conv = {"w": rng.normal(size=(4, 4, 3, 3)).astype(np.float32)}
    gemm = {"g": rng.normal(size=(3, 144)).astype(np.float32)}
    int8 = {"s": np.array(0.05, np.float32), "z": np.array(0, np.int8)}

    def node(inputs, output, **attrs):
        return helper.make_node(op_type, inputs, [output], name="under_test", domain=domain, **attrs)

    def then_conv(first, weights=None):
        after = helper.make_node("Conv", [first.output[0], "w"], ["y"], pads=[1, 1, 1, 1])
        return [first, after], conv | (weights or {})

    cases = {
        "Conv": ([node(["x", "w"], "y", pads=[1, 1, 1, 1])], conv),
        "Gemm": ([node(["x", "g"], "y", transB=1)], {"g": rng.normal(size=(3, 8)).astype(np.float32)}, (1, 8)),
        "MatMul": ([node(["x", "m"], "y")], {"m": rng.normal(size=(8, 3)).astype(np.float32)}, (1, 8)),
        "Add": ([node(["x", "x"], "y")], {}),
        "Relu": ([helper.make_node("Conv", ["x", "w"], ["c"]), node(["c"], "y")], conv),
        "Clip": ([helper.make_node("Conv", ["x", "w"], ["c"]), node(["c", "lo", "hi"], "y")],
                 conv | {"lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}),
        "MaxPool": ([node(["x"], "y", kernel_shape=[2, 2], strides=[2, 2])], {}),
        "AveragePool": ([node(["x"], "y", kernel_shape=[2, 2], strides=[2, 2])], {}),
        "GlobalAveragePool": ([node(["x"], "y")], {}),
        "Reshape": ([node(["x", "shape"], "f"), helper.make_node("Gemm", ["f", "g"], ["y"], transB=1)],
                    gemm | {"shape": np.array([1, -1], np.int64)}),
        "Flatten": ([node(["x"], "f"), helper.make_node("Gemm", ["f", "g"], ["y"], transB=1)], gemm),
        "Concat": ([node(["x", "x"], "y", axis=1)], {}),
        "Softmax": ([node(["x"], "y", axis=-1)], {}, (1, 8)),
        "BatchNormalization": ([helper.make_node("Conv", ["x", "w"], ["c"]), node(["c", "g1", "b0", "b0", "g1"], "y")],
                               conv | {"g1": np.ones(4, np.float32), "b0": np.zeros(4, np.float32)}),
        "Pad": then_conv(node(["x", "pads"], "p"), {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)}),
        "Identity": then_conv(node(["x"], "i")),
        "Dropout": then_conv(node(["x"], "i")),
        "Squeeze": ([node(["x", "axes"], "y")], {"axes": np.array([2, 3], np.int64)}, (1, 4, 1, 1)),
        "Unsqueeze": ([node(["x", "axes"], "u"), helper.make_node("Conv", ["u", "w1"], ["y"])],
                      {"axes": np.array([2], np.int64), "w1": rng.normal(size=(4, 4, 1, 1)).astype(np.float32)},
                      (1, 4, 6)),
        "QuantizeLinear": ([node(["x", "s", "z"], "q"), helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
                            helper.make_node("Conv", ["d", "w"], ["y"])], conv | int8),
        "DequantizeLinear": ([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]), node(["q", "s", "z"], "d"),
                              helper.make_node("Conv", ["d", "w"], ["y"])], conv | int8),
        # outside the table
        "Sigmoid": ([node(["x"], "y")], {}),
        "Tanh": ([node(["x"], "y")], {}),
        "Mul": ([node(["x", "x"], "y")], {}),
        "Transpose": ([node(["x"], "y", perm=[0, 2, 3, 1])], {}),
        "ConvTranspose": ([node(["x", "w"], "y")], conv),
        "LeakyRelu": ([helper.make_node("Conv", ["x", "w"], ["c"]), node(["c"], "y")], conv),
        "com.microsoft:Gelu": ([node(["x"], "y")], {}),
    }
    nodes, weights, *shape = cases[op if op in cases else op_type]
    shape = shape[0] if shape else (1, 4, 6, 6)
    model = make_model(nodes, {"x": shape}, ["y"], weights)
    if domain:
        model.opset_import.append(helper.make_opsetid(domain, 1))
    return model, shape


OUTSIDE_THE_TABLE = ["Sigmoid", "Tanh", "Mul", "Transpose", "ConvTranspose", "LeakyRelu", "com.microsoft:Gelu"]


@pytest.mark.parametrize("op", sorted(MCU_INT8.supported | MCU_INT8.folded))
def test_the_exporter_lowers_every_op_its_table_lists(op):
    model, shape = _table_case(op)
    profile = analyze(model, {"x": shape})
    assert profile.tier("mcu").unsupported == []
    assert lower(model, profile).layers


@pytest.mark.parametrize("op", OUTSIDE_THE_TABLE)
def test_the_exporter_refuses_every_op_its_table_does_not_list(op, monkeypatch):
    assert op not in MCU_INT8.supported | MCU_INT8.folded
    model, shape = _table_case(op)
    with pytest.raises(UnsupportedModel, match=rf"'under_test' \({op.rpartition(':')[2]}\): .*not in the MCU int8"):
        lower(model, analyze(model, {"x": shape}))
    # with the table claiming the op, the lowering itself must still have no way to run it
    claimed = dataclasses.replace(MCU_INT8, supported=MCU_INT8.supported | {op})
    monkeypatch.setattr("tierml.model.support.MCU_INT8", claimed)
    profile = analyze(model, {"x": shape})
    assert profile.tier("mcu").unsupported == []
    with pytest.raises(UnsupportedModel, match=r"'under_test' .* has no MCU lowering"):
        lower(model, profile)


def test_grouped_convolution_is_refused_by_name():
    model = _onnx([helper.make_node("Conv", ["x", "w"], ["y"], name="grouped", group=2)],
                  {"w": np.ones((4, 2, 3, 3), np.float32)})
    with pytest.raises(TiermlError, match="grouped"):
        lower(model, analyze(model, {"x": (1, 4, 6, 6)}))


def test_padding_tflite_cannot_express_is_refused_for_the_golden():
    # stride 2 with pads 1 on an even size: ONNX pads the top, TFLite SAME would not
    model = _onnx([helper.make_node("Conv", ["x", "w"], ["y"], name="c", strides=[2, 2], pads=[1, 1, 1, 1])],
                  {"w": np.ones((4, 4, 3, 3), np.float32)})
    c = compile_mcu(model, analyze(model, {"x": (1, 4, 6, 6)}), np.random.default_rng(0).normal(size=(8, 4, 6, 6)))
    with pytest.raises(TiermlError, match="neither TFLite SAME nor VALID"):
        to_tflite(c.quantized)


def test_activations_the_qdq_quantizer_removed_are_still_applied(tmp_path):
    """ONNX Runtime's QDQ quantizer drops a Relu whose output QuantizeLinear already clamps at 0 (zero point -128):
    the C must clamp there too, not run the bare Conv."""
    rng = np.random.default_rng(3)
    model = _onnx([helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                   helper.make_node("Relu", ["c"], ["y"])],
                  {"w": rng.normal(size=(4, 4, 3, 3)).astype(np.float32), "b": rng.normal(size=4).astype(np.float32)})
    calib = rng.normal(size=(16, 4, 6, 6)).astype(np.float32)
    qdq = QuantizeStatic(PORTABLE_INT8).run(ModelState(model), Workspace(calibration=Dataset(calib, None, "c"))).proto
    assert "Relu" not in {n.op_type for n in qdq.graph.node}  # else this test proves nothing
    c = compile_mcu(qdq, analyze(qdq, {"x": (1, 4, 6, 6)}), calib)
    assert c.quantized.output.zero_point == -128
    v = verify(qdq, c, tmp_path, calib[:8])
    assert v.host_bit_exact and v.float_max_abs_error <= 3 * float(c.quantized.output.scale)


def test_cli_digits_fits_the_nano_33_ble_sense(tmp_path, digits_path):
    data = digits_path.parent / "data"
    result = run_tierml("export", digits_path, "--target", "mcu", "--calib", data / "calib.npz", "--eval",
                        data / "eval.npz", "--out", tmp_path / "c", "--device", "arduino-nano-33-ble-sense", "--verify",
                        "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (fit,) = report["fits"]
    assert fit["fits"] and fit["ram_margin_bytes"] > 200_000 and fit["flash_margin_bytes"] > 900_000
    assert report["verification"]["host_bit_exact"] and report["verification"]["inputs"] == 360
    assert (tmp_path / "c" / "model.c").exists() and "model_invoke" in (tmp_path / "c" / "model.h").read_text()
    table = run_tierml("export", digits_path, "--calib", data / "calib.npz", "--out", tmp_path / "t")
    assert "arduino-nano-33-ble-sense" in table.stdout and "margin" in table.stdout


def test_cli_refuses_a_model_too_big_for_the_board(tmp_path):
    rng = np.random.default_rng(0)
    model = make_model([helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], {"x": ("batch", 1200)}, ["y"],
                       {"w": rng.normal(size=(1000, 1200)).astype(np.float32)})
    path = tmp_path / "big.onnx"
    onnx.save(model, path)
    np.savez(tmp_path / "calib.npz", x=rng.normal(size=(4, 1200)).astype(np.float32))
    result = run_tierml("export", path, "--calib", tmp_path / "calib.npz", "--out", tmp_path / "c", "--device",
                        "arduino-nano-33-ble-sense")
    assert result.returncode == 2
    assert "does not fit arduino-nano-33-ble-sense: flash" in result.stderr and "1,048,576 B" in result.stderr
    assert "over by" in result.stderr and "Traceback" not in result.stderr
    assert not Path(tmp_path / "c" / "model.c").exists()


@pytest.mark.skipif(bool(NO_ARM), reason=f"Cortex-M4 build under QEMU skipped: {NO_ARM}")
def test_cli_verify_on_the_board_counts_instructions(tmp_path, digits_path):
    data = digits_path.parent / "data"
    result = run_tierml("export", digits_path, "--calib", data / "calib.npz", "--out", tmp_path / "c", "--verify",
                        "--board", "mps2-an386", "--json")
    assert result.returncode == 0, result.stderr
    runs = {r["kernels"]: r for r in json.loads(result.stdout)["verification"]["qemu"]}
    assert runs["plain-c"]["bit_exact"] and runs["dsp"]["bit_exact"]
    assert runs["plain-c"]["instructions"] >= 1.5 * runs["dsp"]["instructions"] > 0
    assert 0 < runs["dsp"]["instructions_per_mac"] < runs["plain-c"]["instructions_per_mac"]


@pytest.mark.skipif(bool(NO_ARM), reason=f"Cortex-M3 build under QEMU skipped: {NO_ARM}")
def test_cortex_m3_without_dsp_or_fpu_is_bit_exact(tmp_path):
    c = compiled("ds_cnn")
    v = verify(MODELS["ds_cnn"].model, c, tmp_path, MODELS["ds_cnn"].eval[:4], board="mps2-an385")
    assert [r.kernels for r in v.qemu] == ["plain-c"] and v.qemu[0].bit_exact and v.host_bit_exact


@pytest.mark.skipif(bool(NO_ARM), reason=f"Cortex-M4 link skipped: {NO_ARM}")
def test_board_link_fails_when_the_arena_exceeds_its_ram(tmp_path):
    model = _onnx([helper.make_node("Conv", ["x", "w"], ["y"], name="wide", pads=[1, 1, 1, 1])],
                  {"w": np.ones((16, 3, 3, 3), np.float32)}, shape=(1, 3, 128, 128))
    c = compile_mcu(model, analyze(model, {"x": (1, 3, 128, 128)}), np.random.default_rng(0).normal(
        size=(2, 3, 128, 128)))
    assert c.plan.arena_bytes > 256 * 1024
    write_sources(tmp_path, c.source.model_c, c.source.model_h)
    with pytest.raises(TiermlError, match="region `RAM' overflowed"):
        build_arm(tmp_path, BOARDS["mps2-an386"], np.zeros((1, 3 * 128 * 128), np.int8), 16 * 128 * 128, dsp=True)


def test_cli_names_unknown_targets(tmp_path, digits_path):
    result = run_tierml("export", digits_path, "--target", "mpu", "--calib", tmp_path / "none.npz")
    assert result.returncode == 2 and "did you mean 'mcu'" in result.stderr


def test_targets_register_themselves_with_the_ops_their_runtime_runs(monkeypatch):
    assert target_class("mcu") is McuTarget and targets()["mcu"] is McuTarget
    assert McuTarget.supported_ops == MCU_INT8.supported and McuTarget.folded_ops == MCU_INT8.folded
    assert McuTarget.alternatives["Sigmoid"] == MCU_INT8.alternatives["Sigmoid"]
    monkeypatch.setattr(Target, "registry", dict(Target.registry))
    web = OpTable(runtime="onnxruntime-web (reduced op set)", supported=frozenset({"Conv", "Relu", "Gemm"}),
                  alternatives={"Sigmoid": "use Relu"})

    class WebTarget(Target):  # a next-wave target: defining it is all it takes
        name = "web"
        tier = "browser"
        supported_ops = web.supported
        folded_ops = web.folded
        alternatives = web.alternatives

        def export(self, model, profile, out_dir):
            raise NotImplementedError

    assert target_class("web") is WebTarget and set(targets()) == {"mcu", "web"}
    with pytest.raises(TiermlError, match="unknown export target 'wbe'; did you mean 'web'"):
        target_class("wbe")
    with pytest.raises(TypeError, match=r"export target 'half' .* must declare tier, supported_ops"):
        type("Half", (Target,), {"name": "half", "folded_ops": frozenset(), "alternatives": {}})


@st.composite
def conv_layers(draw):
    """A random Conv / depthwise Conv (+ activation) with TFLite-expressible SAME or VALID padding."""
    size = draw(st.integers(3, 9))
    cin = draw(st.sampled_from([1, 3, 4, 8]))
    depthwise = draw(st.booleans()) and cin > 1
    cout = cin * draw(st.sampled_from([1, 2])) if depthwise else draw(st.integers(1, 9))
    k = draw(st.sampled_from([1, 2, 3, 5]))
    stride = draw(st.integers(1, 2))
    dilation = draw(st.integers(1, 2)) if stride == 1 else 1
    eff = (k - 1) * dilation + 1
    if eff > size:
        k, dilation, eff = 1, 1, 1
    same = draw(st.booleans())
    out = -(-size // stride) if same else (size - eff) // stride + 1
    total = max((out - 1) * stride + eff - size, 0) if same else 0
    pads = [total // 2, total // 2, total - total // 2, total - total // 2]
    act = draw(st.sampled_from(["none", "relu", "relu6"]))
    seed = draw(st.integers(0, 2**16))
    return size, cin, cout, k, stride, dilation, pads, depthwise, act, seed


@settings(max_examples=12, deadline=None)
@given(conv_layers())
def test_random_convolutions_are_bit_exact_with_tflm(tmp_path_factory, layer):
    size, cin, cout, k, stride, dilation, pads, depthwise, act, seed = layer
    rng = np.random.default_rng(seed)
    group = cin if depthwise else 1
    weights = {"w": rng.normal(size=(cout, cin // group, k, k)).astype(np.float32),
               "b": rng.normal(size=cout).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c" if act != "none" else "y"], kernel_shape=[k, k],
                              strides=[stride] * 2, dilations=[dilation] * 2, pads=pads, group=group)]
    if act == "relu":
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    elif act == "relu6":
        nodes.append(helper.make_node("Clip", ["c", "lo", "hi"], ["y"]))
        weights |= {"lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}
    shape = (1, cin, size, size)
    model = _onnx(nodes, weights, shape)
    c = compile_mcu(model, analyze(model, {"x": shape}), rng.normal(size=(8, *shape[1:])).astype(np.float32))
    folder = tmp_path_factory.mktemp("conv")
    v = verify(model, c, folder, rng.normal(size=(4, *shape[1:])).astype(np.float32))
    assert v.host_bit_exact, (layer, v.host_mismatches)


@settings(max_examples=10, deadline=None)
@given(size=st.integers(2, 8), channels=st.integers(1, 6), k=st.integers(1, 3), stride=st.integers(1, 2),
       same=st.booleans(), pool=st.sampled_from(["MaxPool", "AveragePool"]), classes=st.integers(2, 12),
       scale=st.floats(0.01, 100.0), seed=st.integers(0, 2**16))
def test_random_add_pool_softmax_heads_are_bit_exact_with_tflm(tmp_path_factory, size, channels, k, stride, same,
                                                              pool, classes, scale, seed):
    rng = np.random.default_rng(seed)
    k = min(k, size)
    out = -(-size // stride) if same else (size - k) // stride + 1
    total = max((out - 1) * stride + k - size, 0) if same else 0
    pads = [total // 2, total // 2, total - total // 2, total - total // 2]
    weights = {"w": rng.normal(size=(channels, channels, 1, 1)).astype(np.float32),
               "g": rng.normal(size=(classes, channels)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("Add", ["c", "x"], ["a"]),
             helper.make_node(pool, ["a"], ["p"], kernel_shape=[k, k], strides=[stride] * 2, pads=pads),
             helper.make_node("GlobalAveragePool", ["p"], ["q"]),
             helper.make_node("Flatten", ["q"], ["f"]),
             helper.make_node("Gemm", ["f", "g"], ["l"], transB=1),
             helper.make_node("Softmax", ["l"], ["y"], axis=-1)]
    shape = (1, channels, size, size)
    model = _onnx(nodes, weights, shape)
    calib = (scale * rng.normal(size=(8, *shape[1:]))).astype(np.float32)
    c = compile_mcu(model, analyze(model, {"x": shape}), calib)
    folder = tmp_path_factory.mktemp("head")
    v = verify(model, c, folder, calib[:4])
    assert v.host_bit_exact, v.host_mismatches


def test_one_dimensional_signal_with_matmul_head_is_bit_exact(tmp_path):
    rng = np.random.default_rng(5)
    weights = {"w": rng.normal(size=(8, 3, 5)).astype(np.float32), "m": rng.normal(size=(8 * 16, 4)).astype(np.float32),
               "shape": np.array([1, -1], np.int64)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[5], strides=[2], pads=[2, 2]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Reshape", ["r", "shape"], ["f"]),
             helper.make_node("MatMul", ["f", "m"], ["y"])]
    model = _onnx(nodes, weights, (1, 3, 31))
    samples = rng.normal(size=(8, 3, 31)).astype(np.float32)
    c = compile_mcu(model, analyze(model, {"x": (1, 3, 31)}), samples)
    assert [layer.op for layer in c.graph.layers] == ["conv", "reshape", "fully_connected"]
    v = verify(model, c, tmp_path, samples)
    assert v.host_bit_exact and v.float_max_abs_error < 1.0
