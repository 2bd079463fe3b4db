"""`tierml optimize` / `tierml build`: passes, bad inputs, atomic variants, the per-device choice, the ladder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from tests.support.calibration import calibration
from tests.support.cli import run_tierml
from tests.support.examples import quick_spec
from tests.support.onnx_models import make_model
from tests.support.paths import ROOT
from tierml.data.dataset import Dataset, load_dataset
from tierml.data.metrics import Quality
from tierml.data.scoring import run
from tierml.errors import TiermlError
from tierml.hardware.calibrate import save
from tierml.hardware.catalog import load_catalog
from tierml.hardware.estimate import Estimate
from tierml.model.tensors import TensorInfo
from tierml.optimize.passes import ModelState, Workspace, parse_pass
from tierml.optimize.quantize import QuantizeStatic
from tierml.optimize.runtime_quality import measure_on_runtimes
from tierml.optimize.simplify import Simplify
from tierml.optimize.variant import DeviceFigures, Lineage, Metrics, Variant, write_variant
from tierml.plan.variants import choose
from tierml.spec.app import LatencySLO

DIGITS = ROOT / "examples" / "digits"


def digits_data(name: str) -> Dataset:
    data = np.load(DIGITS / "data" / f"{name}.npz")
    return Dataset(data["x"].astype(np.float32), data["y"], name)


@pytest.fixture
def cal_file(tmp_path):
    path = tmp_path / "cal.json"
    save(calibration(efficiency=0.5, session_us=5, node_us=1), path)
    return path


# ------------------------------------------------------------------------------------------- passes
def test_unknown_pass_and_bad_option_are_named():
    with pytest.raises(TiermlError, match="unknown pass 'quantize-statik'; did you mean 'quantize-static'"):
        parse_pass("quantize-statik")
    with pytest.raises(TiermlError, match="bad option 'per_channel' for pass 'quantize-static'"):
        parse_pass("quantize-static:per_channel")
    with pytest.raises(TiermlError, match="pass 'quantize-static': calibration"):
        parse_pass("quantize-static:calibration=median")
    configured = parse_pass("quantize-static:per_channel=true,activation_type=uint8,op_types=Conv+MatMul")
    assert configured.config.per_channel and configured.config.op_types == ["Conv", "MatMul"]


def test_simplify_strips_without_changing_outputs():
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    original = onnx.load(DIGITS / "model.onnx")
    simplified = Simplify({"short_names": True}).run(ModelState(original), Workspace()).proto
    assert np.array_equal(run(simplified, x), run(original, x))
    assert len(simplified.SerializeToString()) < len(original.SerializeToString())
    conv = next(n for n in simplified.graph.node if n.op_type == "Conv")
    assert {a.name for a in conv.attribute} <= {"pads"}  # strides/dilations/group/kernel_shape were defaults


def test_simplify_keeps_attributes_that_differ_from_the_default():
    weights = {"w": np.ones((2, 1, 3, 3), np.float32)}
    model = make_model([helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2], dilations=[1, 1], group=1)],
                       {"x": (1, 1, 9, 9)}, ["y"], weights)
    x = np.random.default_rng(1).standard_normal((1, 1, 9, 9)).astype(np.float32)
    simplified = Simplify({"slim": False}).run(ModelState(model), Workspace()).proto
    assert [a.name for a in simplified.graph.node[0].attribute] == ["strides"]
    assert np.array_equal(run(simplified, x), run(model, x))


# ------------------------------------------------------------------------------------------- int8 on digits
def test_digits_int8_is_over_3_5x_smaller_within_a_point():
    calib, evaluation = digits_data("calib"), digits_data("eval")
    workspace = Workspace(calibration=calib)
    fp32 = Simplify({"short_names": True}).run(ModelState(onnx.load(DIGITS / "model.onnx")), workspace)
    steps = [parse_pass("quantize-static:format=qoperator,activation_type=uint8,per_channel=true"),
             parse_pass("simplify:slim=false,short_names=true")]
    int8 = fp32
    for step in steps:
        int8 = step.run(int8, workspace)
    ratio = len(fp32.proto.SerializeToString()) / len(int8.proto.SerializeToString())
    accuracy = (run(int8.proto, evaluation.x).argmax(1) == evaluation.y).mean()
    reference = (run(fp32.proto, evaluation.x).argmax(1) == evaluation.y).mean()
    assert ratio >= 3.5, ratio
    assert accuracy >= reference - 0.01
    assert [r.name for r in int8.history] == ["simplify", "quantize-static", "simplify"]


# ------------------------------------------------------------------------------------------- bad inputs
def _input() -> TensorInfo:
    return TensorInfo(name="input", elem_type=TensorProto.FLOAT, shape=(1, 1, 8, 8))


def test_calibration_of_the_wrong_shape_names_the_tensor(tmp_path):
    path = tmp_path / "calib.npz"
    np.savez(path, x=np.zeros((4, 1, 28, 28), np.float32))
    with pytest.raises(TiermlError, match=r"samples of shape \(1, 28, 28\) but model input 'input' takes "
                                          r"\(1, 8, 8\)"):
        load_dataset(path, _input(), "calibration")


def test_calibration_of_the_wrong_dtype_names_the_tensor(tmp_path):
    path = tmp_path / "calib.npz"
    np.savez(path, x=np.full((4, 1, 8, 8), "a"))
    with pytest.raises(TiermlError, match="x has dtype <U1; input 'input' takes float numbers"):
        load_dataset(path, _input(), "calibration")


def test_eval_set_without_labels_when_accuracy_is_asked_for(tmp_path):
    path = tmp_path / "eval.npz"
    np.savez(path, x=np.zeros((4, 1, 8, 8), np.float32))
    with pytest.raises(TiermlError, match="has no labels 'y', but accuracy was asked for"):
        load_dataset(path, _input(), "eval", need_labels=True)


def test_an_op_the_quantizer_cannot_run_is_named():
    weights = {"w": np.ones((4, 4), np.float32)}
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
         helper.make_node("Frobnicate", ["h"], ["y"], name="weird_node", domain="acme")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("acme", 1)])
    workspace = Workspace(calibration=Dataset(np.ones((4, 4), np.float32), None, "ones"))
    with pytest.raises(TiermlError, match=r"node 'weird_node'.*acme:Frobnicate"):
        QuantizeStatic().run(ModelState(model), workspace)


def _variant(name: str, precision: str = "fp32", quality: float = 1.0, figures: list[DeviceFigures] | None = None,
             speedup: float | None = None, size: int = 1000) -> Variant:
    metrics = Metrics(quality=Quality(metric="accuracy", value=quality, samples=100), size_bytes=size,
                      weight_bytes=size, params=size, macs=10 * size, peak_activation_bytes=100,
                      host_latency=None,
                      speedup_vs_fp32=speedup, devices=figures or [])
    return Variant(name=name, precision=precision, sha256="0" * 64,
                   lineage=Lineage(parent="m.onnx", parent_sha256="1" * 64, passes=[]), metrics=metrics)


def test_a_failed_write_adds_no_version_and_keeps_the_last_good_one(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    proto = onnx.load(DIGITS / "model.onnx")
    first = write_variant(_variant("app-int8"), proto, repo)
    assert first.path == str(repo / "app-int8" / "1")
    good = (repo / "app-int8" / "1" / "model.onnx").read_bytes()

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tierml.optimize.variant.json.dumps", broken)
    with pytest.raises(TiermlError, match=r"cannot write the variant.*No space left on device"):
        write_variant(_variant("app-int8"), proto, repo)
    assert (repo / "app-int8" / "1" / "model.onnx").read_bytes() == good
    assert sorted(p.name for p in (repo / "app-int8").iterdir()) == ["1", "config.pbtxt"]  # no temporary folder


# ------------------------------------------------------------------------------------------- the choice
def _figures(device: str, ram: int, have: float, ms: float, precision: str = "fp32") -> DeviceFigures:
    return DeviceFigures(device=device, precision=precision,
                         latency=Estimate(value=ms, unit="ms", method="calibrated", basis="test"), energy=None,
                         fits=ram <= have, ram_need_bytes=ram, ram_have_bytes=have, storage_need_bytes=None,
                         storage_have_bytes=None)


def test_choice_respects_native_precision_and_never_ships_slower_int8_on_x86():
    catalog = load_catalog([])
    nuc, arduino = catalog.device("intel-nuc12-pro"), catalog.device("arduino-nano-33-ble-sense")
    variants = [
        _variant("fp32", figures=[_figures(nuc.name, 80_000, nuc.ram_bytes, 0.02),
                                  _figures(arduino.name, 16_000, arduino.ram_bytes, 7, "int8")]),
        _variant("int8", "int8", 0.999, speedup=0.6, size=250,
                 figures=[_figures(nuc.name, 30_000, nuc.ram_bytes, 0.01, "int8"),
                          _figures(arduino.name, 4_000, arduino.ram_bytes, 6, "int8")]),
    ]
    edge = choose(nuc, variants, floor=0.95, slo=LatencySLO(p99_ms=100))
    assert edge.variant == "fp32"
    assert "0.60x of fp32 speed on this x86 host" in edge.rejected["int8"]
    mcu = choose(arduino, variants, floor=0.95, slo=LatencySLO(p99_ms=100))
    assert mcu.variant == "int8" and "does not run fp32 natively" in mcu.rejected["fp32"]
    ram = next(m for m in mcu.margins if m.what == "RAM")
    assert ram.ok and ram.limit - ram.need == arduino.ram_bytes - 4_000


def test_choice_reports_the_closest_miss_when_nothing_fits():
    arduino = load_catalog([]).device("arduino-nano-33-ble-sense")
    have = arduino.ram_bytes
    variants = [_variant("big-int8", "int8", figures=[_figures(arduino.name, int(have * 3), have, 50, "int8")]),
                _variant("small-int8", "int8", figures=[_figures(arduino.name, int(have * 1.2), have, 5, "int8")]),
                _variant("slow-int8", "int8", figures=[_figures(arduino.name, 1000, have, 900, "int8")])]
    rung = choose(arduino, variants, floor=0.95, slo=LatencySLO(p99_ms=200))
    assert rung.variant is None
    assert rung.closest_miss and rung.closest_miss.startswith("small-int8: RAM")
    assert set(rung.rejected) == {"big-int8", "small-int8", "slow-int8"}
    assert "latency 900 ms vs SLO 200 ms" in rung.rejected["slow-int8"]


def test_an_mcu_is_judged_by_the_quality_its_runtime_measured_not_onnx_runtime():
    arduino, phone = (load_catalog([]).device(n) for n in ("arduino-nano-33-ble-sense", "iphone-15-pro"))
    mcu_figures = _figures(arduino.name, 4_000, arduino.ram_bytes, 6, "int8")
    variants = [_variant("int8-qdq", "int8", 0.99, figures=[_figures(phone.name, 4_000, phone.ram_bytes, 1, "int8"),
                                                            mcu_figures]),
                _variant("student-int8-qdq", "int8", 0.97, figures=[mcu_figures])]
    calls = []

    def c_runtime(model, calibration, x):  # the int8 C: worse on the first variant, refuses the second
        calls.append(model.graph.name)
        if len(calls) == 2:
            raise TiermlError("node 'gate' (Sigmoid): Sigmoid is not in the MCU int8 op set")
        return np.eye(2)[[1, 1, 1, 0]]

    eval_set = Dataset(np.zeros((4, 2), np.float32), np.array([0, 0, 1, 0]), "eval")
    models = [helper.make_model(helper.make_graph([], name, [], [])) for name in ("a", "b")]
    measured, notes = measure_on_runtimes(variants, models, [phone, arduino], {"mcu": c_runtime}, eval_set, eval_set,
                                          np.eye(2)[[0, 0, 1, 0]])
    assert calls == ["a", "b"] and "arduino-nano-33-ble-sense" in notes[0]
    assert measured[0].quality_on(arduino.name).value == 0.5 and measured[0].quality_on(phone.name).value == 0.99
    assert measured[0].metrics.quality.value == 0.99  # the variant's own (ONNX Runtime) figure stays as measured
    rung = choose(arduino, measured, floor=0.95, slo=LatencySLO(p99_ms=100))
    assert rung.variant is None
    assert "quality 0.5000 vs floor 0.9500" in rung.rejected["int8-qdq"]
    assert rung.rejected["student-int8-qdq"].startswith("the mcu runtime cannot run it: node 'gate' (Sigmoid)")
    assert choose(phone, measured, floor=0.95, slo=LatencySLO(p99_ms=100)).variant == "int8-qdq"


# ------------------------------------------------------------------------------------------- CLI
def test_cli_optimize_writes_a_measured_variant_with_lineage(tmp_path, cal_file):
    out = tmp_path / "repo"
    result = run_tierml("optimize", DIGITS / "model.onnx", "--pass", "quantize-static:per_channel=true", "--eval",
                        DIGITS / "data" / "eval.npz", "--calibration-data", DIGITS / "data" / "calib.npz", "--out", out,
                        "--name", "digits-int8", "--device", "arduino-nano-33-ble-sense", "--calibration", cal_file,
                        "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    variant = data["variant"]
    folder = out / "digits-int8" / "1"
    lineage = json.loads((folder / "lineage.json").read_text())
    import hashlib

    assert lineage["sha256"] == hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest() == variant["sha256"]
    assert [p["name"] for p in lineage["lineage"]["passes"]] == ["quantize-static"]
    assert variant["metrics"]["quality"]["metric"] == "accuracy"
    assert variant["metrics"]["quality"]["value"] >= data["parent"]["metrics"]["quality"]["value"] - 0.01
    assert variant["metrics"]["devices"][0]["device"] == "arduino-nano-33-ble-sense"


def test_cli_optimize_bad_calibration_exits_2_and_writes_nothing(tmp_path, cal_file):
    bad = tmp_path / "calib.npz"
    np.savez(bad, x=np.zeros((4, 64), np.float32))
    out = tmp_path / "repo"
    result = run_tierml("optimize", DIGITS / "model.onnx", "--pass", "quantize-static", "--calibration-data", bad,
                        "--out", out, "--calibration", cal_file)
    assert result.returncode == 2
    assert "x has samples of shape (64,) but model input 'input' takes (1, 8, 8)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_cli_build_reports_a_device_nothing_fits_with_the_closest_miss(tmp_path, cal_file):
    catalog = tmp_path / "tiny.yaml"
    catalog.write_text(yaml.safe_dump({
        "sources": {"test": {"title": "test device", "date": "2026"}},
        "devices": [{"name": "tiny-mcu", "title": "an MCU with 2 KB of RAM", "tier": "mcu", "kind": "mcu",
                     "arch": "mcu", "precisions": ["int8"], "peak_int8_gops": {"value": 0.1, "source": "test"},
                     "memory_bandwidth_gbps": {"value": 0.1, "source": "test"},
                     "ram_mb": {"value": 0.002, "source": "test"}, "storage_mb": {"value": 1, "source": "test"}}],
    }))
    spec = quick_spec(tmp_path, distill=False, epochs=2, targets=["iphone-15-pro", "tiny-mcu"])
    out = tmp_path / "repo"
    result = run_tierml("build", spec, "--out", out, "--catalog", catalog, "--calibration", cal_file, "--json")
    assert result.returncode == 3, result.stderr
    ladder = json.loads(result.stdout)
    rungs = {r["device"]: r for r in ladder["rungs"]}
    assert rungs["iphone-15-pro"]["variant"]
    assert rungs["tiny-mcu"]["variant"] is None
    assert "RAM" in rungs["tiny-mcu"]["closest_miss"] and "over" in rungs["tiny-mcu"]["closest_miss"]
    assert (out / "ladder.json").exists()
    written = {p.parent.parent.name for p in out.glob("*/1/model.onnx")}
    assert written == {v["name"] for v in ladder["variants"]}
    assert {"form-digits-fp32", "form-digits-int8-qdq", "form-digits-pruned"} <= written

    # The output folder is a model repository: tierml serve loads every rung and answers tritonclient.
    import tritonclient.http as triton

    from tierml.serve.server import BackgroundServer, ServeOptions

    sample = np.load(DIGITS / "data" / "eval.npz")["x"][:1].astype(np.float32)
    with BackgroundServer(ServeOptions(out, port=0)) as server:
        client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
        assert {m["name"] for m in client.get_model_repository_index() if m.get("state") == "READY"} == written
        for name in written:
            tensor = triton.InferInput("input", [1, 1, 8, 8], "FP32")
            tensor.set_data_from_numpy(sample)
            served = client.infer(name, [tensor]).as_numpy("logits")
            local = run(onnx.load(out / name / "1" / "model.onnx"), sample)
            assert np.allclose(served, local, atol=1e-5), name

    # The planner takes the measured variants: the phone runs its rung, judged by the rung's accuracy.
    planned = run_tierml("plan", spec, "--ladder", out / "ladder.json", "--calibration", cal_file)
    assert planned.returncode == 0, planned.stderr
    assert f"iphone-15-pro: runs the measured variant {rungs['iphone-15-pro']['variant']}" in planned.stdout
    for variant in ladder["variants"]:
        variant["metrics"]["quality"]["value"] = 0.5
    (out / "ladder.json").write_text(json.dumps(ladder))
    planned = json.loads(run_tierml("plan", spec, "--ladder", out / "ladder.json", "--calibration", cal_file,
                                    "--json").stdout)
    local = next(c for c in planned["candidates"] if c["name"] == "local:iphone-15-pro")
    assert any("accuracy 0.5000 (measured) < 0.95 required" in r["message"] for r in local["rejections"])


@pytest.mark.slow
def test_build_digits_ladder_one_variant_per_tier(tmp_path, cal_file):
    """The acceptance ladder: a cloud GPU, an edge box, a phone and an Arduino each get a variant in budget."""
    out = tmp_path / "repo"
    report = tmp_path / "build.html"
    targets = ["aws-g5-xlarge", "intel-nuc12-pro", "iphone-15-pro", "arduino-nano-33-ble-sense"]
    args = [a for t in targets for a in ("--target", t)]
    result = run_tierml("build", DIGITS / "tierml.yaml", "--out", out, *args, "--calibration", cal_file, "--report",
                        report, "--json")
    assert result.returncode == 0, result.stderr
    ladder = json.loads(result.stdout)
    variants = {v["name"]: v for v in ladder["variants"]}
    fp32 = variants["form-digits-fp32"]["metrics"]
    assert [r["device"] for r in ladder["rungs"]] == targets
    for rung in ladder["rungs"]:
        assert rung["variant"], rung
        assert all(m["need"] <= m["limit"] if m["what"] != "quality" else m["need"] >= m["limit"]
                   for m in rung["margins"])
        assert {m["what"] for m in rung["margins"]} >= {"RAM", "latency", "quality"}
    mcu = ladder["rungs"][-1]
    assert variants[mcu["variant"]]["precision"] == "int8"
    pruned = variants["form-digits-pruned"]["metrics"]
    assert pruned["macs"] <= 0.6 * fp32["macs"]
    assert pruned["quality"]["value"] >= fp32["quality"]["value"] - 0.01
    student = variants["form-digits-student"]["metrics"]
    assert student["params"] * 4 <= fp32["params"]
    assert student["quality"]["value"] >= fp32["quality"]["value"] - 0.02
    for name in variants:  # drop-in replacements: the parent's input and output names
        model = onnx.load(out / name / "1" / "model.onnx")
        assert [i.name for i in model.graph.input] == ["input"] and [o.name for o in model.graph.output] == ["logits"]
    html = report.read_text()
    assert html.count("<svg") >= 2 and "Pareto" in html


def test_the_mcu_rung_records_the_accuracy_of_the_exported_int8_model(tmp_path, cal_file):
    """The quality `build` records for an MCU is what the generated C computes: here checked against the exported
    model's int8 graph run in the TFLite Micro interpreter (the C's golden reference) on the same eval set."""
    from tierml.export.mcu import compile_mcu
    from tierml.export.mcu_tflite import quantize_input, run_tflm, to_tflite
    from tierml.model.profile import analyze

    spec_path = quick_spec(tmp_path, torch=False, targets=["arduino-nano-33-ble-sense"])
    spec = yaml.safe_load(spec_path.read_text())
    spec["requirements"]["min_accuracy"] = 0.5
    spec_path.write_text(yaml.safe_dump(spec))
    clean = digits_data("eval")  # noisy digits: near the class boundaries, where the two int8 arithmetics part
    noisy = Dataset((clean.x + 0.5 * np.random.default_rng(0).standard_normal(clean.x.shape)).astype(np.float32),
                    clean.y, "noisy eval")
    np.savez(spec_path.parent / "data" / "eval.npz", x=noisy.x, y=noisy.y)
    out = tmp_path / "repo"
    result = run_tierml("build", spec_path, "--out", out, "--calibration", cal_file, "--json")
    assert result.returncode == 0, result.stderr
    ladder = json.loads(result.stdout)
    (rung,) = ladder["rungs"]
    recorded = next(m for m in rung["margins"] if m["what"] == "quality")

    model = onnx.load(out / rung["variant"] / "1" / "model.onnx")
    exported = compile_mcu(model, analyze(model, {"input": (1, 1, 8, 8)}), digits_data("calib").x).quantized
    golden = run_tflm(to_tflite(exported), quantize_input(exported, noisy.x)).outputs
    accuracy = float((exported.output.dequantize(golden).argmax(axis=1) == noisy.y).mean())
    assert recorded["unit"] == "accuracy" and recorded["need"] == accuracy
    onnx_runtime = next(v for v in ladder["variants"] if v["name"] == rung["variant"])["metrics"]["quality"]["value"]
    assert onnx_runtime != accuracy  # else this data could not tell the two measurements apart
    assert any(n.startswith("mcu devices (arduino-nano-33-ble-sense): quality measured") for n in ladder["notes"])


# ------------------------------------------------------------------------------------------- review fixes
def _write(variants: list[Variant], states: dict, out: Path) -> list[Variant]:
    from tierml.optimize import ladder as ladder_module

    measured = ladder_module.Measured(variants=variants, states=states, quality_floor=0.9, quality_metric="accuracy",
                                      notes=[])
    return ladder_module.write_build(measured, out, lambda written: json.dumps([v.name for v in written]))


def test_a_failed_rebuild_keeps_the_previous_build_whole(tmp_path, monkeypatch):
    from tierml.optimize import ladder as ladder_module

    out = tmp_path / "build"
    proto = onnx.load(DIGITS / "model.onnx")
    first = [_variant("app-fp32"), _variant("app-pruned")]
    _write(first, {"fp32": ModelState(proto), "pruned": ModelState(proto)}, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real = ladder_module.write_variant
    calls = []

    def failing(variant, data, folder):
        calls.append(folder)
        if len(calls) == 2:
            raise TiermlError("cannot write the variant: No space left on device")
        return real(variant, data, folder)

    monkeypatch.setattr(ladder_module, "write_variant", failing)
    with pytest.raises(TiermlError, match="No space left"):
        _write([_variant("app-fp32"), _variant("app-int8")], {"fp32": ModelState(proto), "int8": ModelState(proto)},
               out)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]  # no staging folder left behind
    monkeypatch.setattr(ladder_module, "write_variant", real)
    _write([_variant("app-fp32")], {"fp32": ModelState(proto)}, out)
    assert sorted(p.name for p in out.iterdir()) == ["app-fp32", "ladder.json"]  # the stale rung is gone


def test_build_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(TiermlError, match="not a tierml build output"):
        _write([_variant("app-fp32")], {"fp32": ModelState(onnx.load(DIGITS / "model.onnx"))}, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_models_the_passes_cannot_feed_are_refused_by_name():
    from tierml.data.dataset import model_input

    two = make_model([helper.make_node("Add", ["a", "b"], ["y"])], {"a": (1, 4), "b": (1, 4)}, ["y"])
    with pytest.raises(TiermlError, match=r"exactly one input; this one has 2 \(a, b\)"):
        model_input(two, {})
    fixed = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": (4, 16)}, ["y"])
    with pytest.raises(TiermlError, match="fixed batch of 4"):
        model_input(fixed, {})
    assert model_input(make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": ("n", 16)}, ["y"]), {}).shape \
        == (1, 16)


def test_labels_as_one_hot_rows_become_class_indices_and_fractional_token_ids_are_refused(tmp_path):
    path = tmp_path / "eval.npz"
    np.savez(path, x=np.zeros((3, 1, 8, 8), np.float32), y=np.eye(10)[[3, 1, 4]])
    assert load_dataset(path, _input(), "eval").y.tolist() == [3, 1, 4]
    tokens = TensorInfo(name="ids", elem_type=TensorProto.INT64, shape=(1, 5))
    np.savez(path, x=np.full((2, 5), 0.5))
    with pytest.raises(TiermlError, match="holds fractions but input 'ids' takes int64"):
        load_dataset(path, tokens, "eval")
    np.savez(path, x=np.arange(10, dtype=np.int32).reshape(2, 5))
    assert load_dataset(path, tokens, "eval").x.dtype == np.int64


def test_one_score_per_sample_is_judged_not_waved_through():
    from tierml.data.metrics import quality

    p = np.random.default_rng(0).uniform(0.05, 0.95, (50, 1))
    flipped = 1 - p
    assert quality(flipped, p, None).value < 0.5  # the cosine of one positive number per row would be 1.0
    labels = (p[:, 0] > 0.5).astype(np.int64)
    assert quality(p, p, labels).value == 1.0 and quality(flipped, p, labels).value == 0.0


def test_calibration_ranges_are_keyed_on_the_data_not_its_name():
    workspace = Workspace()
    model = onnx.load(DIGITS / "model.onnx")
    calib = digits_data("calib")
    workspace.scratch()  # one cache folder shared by both runs, as in a build
    small = Workspace(calibration=calib.head(2), _scratch=workspace._scratch)
    full = Workspace(calibration=calib, _scratch=workspace._scratch)
    a = QuantizeStatic().run(ModelState(model), small).proto
    b = QuantizeStatic().run(ModelState(model), full).proto
    assert a.SerializeToString() != b.SerializeToString()
    assert len(list(workspace.scratch().glob("calibration-*.json"))) == 2
