"""Estimates: roofline arithmetic, runtime fusions, fit checks, energy, link transfers, and method labels."""

from __future__ import annotations

import pytest

from tests.support.calibration import calibration
from tests.support.onnx_models import blocked_graph
from tierml.hardware.assessment import assess, choose_precision, weight_bytes
from tierml.hardware.calibrate import Sample, host_device
from tierml.hardware.catalog import load_catalog
from tierml.hardware.roofline import RooflineEstimator
from tierml.hardware.transfer import transfer
from tierml.model.fusion import runtime_fusions
from tierml.model.load import load_onnx
from tierml.model.profile import analyze


@pytest.fixture
def digits(digits_path):
    return analyze(load_onnx(digits_path), {"input": (1, 1, 8, 8)})


def test_runtime_fusions_of_the_digits_network(digits):
    fused = runtime_fusions(digits)
    by_op = sorted(digits.nodes[[n.name for n in digits.nodes].index(name)].op_type for name in fused)
    assert by_op == ["Add", "Relu", "Relu", "Relu"]  # conv+relu twice, conv+residual add+relu once


def test_host_time_is_the_roofline_sum_at_unit_efficiency(digits):
    cal = calibration()
    host, _ = host_device(cal)
    breakdown = RooflineEstimator(cal).latency(digits, host, "fp32")
    fused = runtime_fusions(digits)
    expected = sum(max(n.flops / 100e9, n.bytes_moved / 20e9) for n in digits.nodes
                   if not n.folded and n.name not in fused and n.op_class not in ("view", "shape"))
    expected += sum(2 * r.bytes / 20e9 for r in digits.runtime_reorders)  # each conversion reads and writes
    assert breakdown.total.value == pytest.approx(expected * 1e3, rel=1e-6)
    assert breakdown.total.method == "calibrated"
    assert {t.bound for t in breakdown.nodes} >= {"fused", "compute"}


def test_efficiency_and_overheads_scale_the_estimate(digits):
    host, _ = host_device(calibration())
    base = RooflineEstimator(calibration()).latency(digits, host, "fp32").total.value
    slow = RooflineEstimator(calibration(efficiency=0.25)).latency(digits, host, "fp32").total.value
    assert slow == pytest.approx(4 * base, rel=1e-6)
    overhead = RooflineEstimator(calibration(session_us=10, node_us=1)).latency(digits, host, "fp32")
    counted = sum(1 for t in overhead.nodes if t.bound != "fused")
    assert overhead.total.value == pytest.approx(base + (10 + counted) * 1e-3, rel=1e-6)


def test_catalogue_devices_use_their_peaks_and_say_so(digits):
    catalog = load_catalog()
    estimator = RooflineEstimator(calibration())
    orin = estimator.latency(digits, catalog.device("jetson-orin-nano"), "fp32").total
    agx = estimator.latency(digits, catalog.device("jetson-agx-orin"), "fp32").total
    assert orin.method == agx.method == "catalogue"
    assert "jetson-orin-nano" in orin.basis
    assert agx.value < orin.value  # more FLOP/s and bandwidth, same efficiency factor
    mcu = estimator.latency(digits, catalog.device("arduino-nano-33-ble-sense"), "int8").total
    assert mcu.value > 20 * orin.value
    # A GPU pays its catalogued launch costs: 50 us per request and 5 us per executed (unfused) node.
    executed = sum(1 for n in digits.nodes if not n.folded) - len(runtime_fusions(digits))
    assert orin.value >= (50 + 5 * executed) * 1e-3


def test_kernel_efficiency_interpolates_between_neighbours(digits):
    cal = calibration()
    cal.samples = [Sample(op_class="conv", case="a", flops=1000, bytes=1000, seconds=1, efficiency=0.5),
                   Sample(op_class="conv", case="b", flops=10**9, bytes=10**7, seconds=1, efficiency=1.0)]
    estimator = RooflineEstimator(cal)
    small = next(n for n in digits.nodes if n.op_type == "Conv").model_copy(update={"macs": 500, "other_flops": 0,
                                                                                   "input_bytes": 1000,
                                                                                   "weight_bytes": 0,
                                                                                   "output_bytes": 0})
    assert estimator.efficiency(small) == pytest.approx(0.5, rel=0.05)
    assert 0.5 < estimator.efficiency(small.model_copy(update={"macs": 10**6})) < 1.0


def test_assessment_fits_energy_and_precision(digits):
    catalog = load_catalog()
    cal = calibration()
    host, source = host_device(cal)
    catalog = catalog.with_device(host, {"tierml-calibrate": source})
    result = assess(digits, catalog, RooflineEstimator(cal), ["host", "arduino-nano-33-ble-sense", "raspberry-pi-5"],
                    ["lte"])
    host_est, nano, pi = result.devices
    assert host_est.latency.method == "calibrated" and host_est.energy is None  # host power is not catalogued
    assert nano.precision == "int8" and pi.precision == "fp32"
    # MCU: weights stay in flash, RAM holds int8 activations only.
    assert nano.ram.need_bytes == digits.memory.peak_activation_bytes_int8 == digits.memory.peak_activation_bytes // 4
    assert nano.storage.need_bytes == weight_bytes(digits, "int8") < digits.memory.weight_bytes
    assert pi.ram.need_bytes == digits.memory.weight_bytes + digits.memory.peak_activation_bytes
    assert nano.fits and pi.fits
    assert pi.energy.value == pytest.approx(8.0 * pi.latency.value)  # W x ms = mJ
    assert pi.energy.method == "catalogue"
    assert choose_precision(catalog.device("coral-usb"), "auto") == "int8"


def test_a_model_too_big_for_the_mcu_does_not_fit(digits):
    big = digits.model_copy(deep=True)
    big.memory.peak_activation_bytes_int8 = 300 * 1024  # 300 KiB of int8 activations > 256 KiB
    cal = calibration()
    result = assess(big, load_catalog(), RooflineEstimator(cal), ["arduino-nano-33-ble-sense"], [])
    assert not result.devices[0].fits
    assert result.devices[0].ram.margin_bytes < 0


def test_transfer_arithmetic():
    catalog = load_catalog()
    lte = transfer(catalog.link("lte"), up_bytes=150_000, down_bytes=40)
    serial_ms = 150_000 * 8 / 6e6 * 1e3 + 40 * 8 / 13e6 * 1e3
    assert lte.latency_p50.value == pytest.approx(70 + serial_ms)
    assert lte.latency_p95.value == pytest.approx(150 + serial_ms)
    assert lte.radio_energy.value == pytest.approx((150_000 * 8 * 438 + 40 * 8 * 52) * 1e-6)
    assert lte.cost_per_million.value == pytest.approx(150_040 / 1e9 * 2.0 * 1e6)  # cellular bills both ways
    wifi = transfer(catalog.link("wifi-internet"), up_bytes=602_112, down_bytes=4_000)
    assert wifi.cost_per_million.value == pytest.approx(4_000 / 1e9 * 0.09 * 1e6)  # only cloud egress is billed
    assert lte.tail_energy_j == pytest.approx(12.27)
    lora = transfer(catalog.link("lora"), up_bytes=1000, down_bytes=1)
    assert lora.packets == 5 and "5 packets" in lora.notes[0]
    airtime_ms = 1000 * 8 / 5470 * 1e3
    # 1% duty cycle: after each of the first 4 packets the radio stays silent 99x that packet's airtime.
    expected = airtime_ms + 4 * (airtime_ms / 5) * 99 + 1 * 8 / 5470 * 1e3
    assert lora.latency_p50.value == pytest.approx(1100 + expected)


def test_layout_conversions_are_charged_on_the_host_only():
    profile = analyze(blocked_graph())
    if not profile.runtime_reorders:
        pytest.skip("this CPU/ORT build does not use the blocked NCHWc layout")
    cal = calibration()
    host, _ = host_device(cal)
    estimator = RooflineEstimator(cal)
    on_host = [t for t in estimator.latency(profile, host, "fp32").nodes if t.op_type.startswith("Reorder")]
    assert len(on_host) == len(profile.runtime_reorders)
    assert all(t.seconds > 0 and t.bound == "memory" for t in on_host)
    cloud = estimator.latency(profile, load_catalog().device("aws-c7i-xlarge"), "fp32").nodes
    assert not [t for t in cloud if t.op_type.startswith("Reorder")]
