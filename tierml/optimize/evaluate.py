"""Measure a variant: quality on the eval set, size, MACs, peak memory, host latency, and each target device."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx

from tierml.hardware.assessment import assess_device
from tierml.hardware.calibrate import host_info
from tierml.hardware.catalog import Device
from tierml.hardware.estimate import LatencyEstimator
from tierml.model.load import serialize
from tierml.model.measure import LatencyStats, measure_latency
from tierml.model.profile import ModelProfile, analyze
from tierml.model.session import make_session
from tierml.optimize.data import Dataset
from tierml.optimize.metrics import quality
from tierml.optimize.variant import DeviceFigures, Metrics


def run(model: onnx.ModelProto, x: np.ndarray, threads: int = 1, batch: int = 32) -> np.ndarray:
    """The model's first output for every row of x (in batches when the batch dim is free, else one by one)."""
    session = make_session(model, threads)
    meta = session.get_inputs()[0]
    step = batch if not isinstance(meta.shape[0], int) or meta.shape[0] <= 0 else meta.shape[0]
    outputs = []
    for start in range(0, len(x), step):
        chunk = x[start:start + step]
        if len(chunk) < step and isinstance(meta.shape[0], int) and meta.shape[0] > 0:
            pad = np.zeros((step - len(chunk), *chunk.shape[1:]), chunk.dtype)
            outputs.append(session.run(None, {meta.name: np.concatenate([chunk, pad])})[0][: len(chunk)])
        else:
            outputs.append(session.run(None, {meta.name: chunk})[0])
    return np.concatenate(outputs)


def profile_at_batch_one(model: onnx.ModelProto, sample_shape: Sequence[int]) -> ModelProfile:
    name = model.graph.input[0].name
    return analyze(model, {name: (1, *sample_shape)})


def vnni_note() -> str:
    isa = set(host_info().isa)
    if {"avx512_vnni", "avx_vnni"} & isa:
        return "this CPU has VNNI int8 dot products, so the int8 kernels are not the bottleneck: Q/DQ and " \
               "unfused element-wise ops are"
    if "avx2" in isa:
        return "this CPU has no VNNI: ORT's u8s8 int8 kernels gain little over fp32 here"
    return "this CPU has no x86 int8 dot-product instructions"


def evaluate(model: onnx.ModelProto, eval_set: Dataset, reference: np.ndarray, threads: int,
             fp32_latency: LatencyStats | None, devices: Sequence[Device], estimator: LatencyEstimator | None,
             precision: str) -> Metrics:
    outputs = run(model, eval_set.x, threads)
    measured = quality(outputs, reference, eval_set.y)
    profile = profile_at_batch_one(model, eval_set.x.shape[1:])
    inputs = {t.name: t for t in profile.inputs}
    latency = measure_latency(model, inputs, threads=threads, runs=20, warmup=3, min_seconds=0.5)
    speedup = fp32_latency.median_ms / latency.median_ms if fp32_latency else None
    flags = []
    if speedup is not None and speedup < 1 and precision in ("int8", "mixed"):
        flags.append(f"int8 is {1 / speedup:.2f}x slower than fp32 on this host ({vnni_note()})")
    figures = []
    for device in devices:
        target = "int8" if precision in ("int8", "mixed") or device.tier == "mcu" else "fp32"
        if estimator is None or (target == "fp32" and not device.peak_fp32_gflops):
            continue
        estimate = assess_device(profile, device, estimator, target)  # type: ignore[arg-type]
        figures.append(DeviceFigures(
            device=device.name, precision=target, latency=estimate.latency, energy=estimate.energy,
            fits=estimate.fits, ram_need_bytes=estimate.ram.need_bytes, ram_have_bytes=estimate.ram.have_bytes,
            storage_need_bytes=estimate.storage.need_bytes if estimate.storage else None,
            storage_have_bytes=estimate.storage.have_bytes if estimate.storage else None))
    return Metrics(quality=measured, size_bytes=len(serialize(model)), weight_bytes=profile.memory.weight_bytes,
                   params=profile.params, macs=profile.macs,
                   peak_activation_bytes=profile.memory.peak_activation_bytes, host_latency=latency,
                   speedup_vs_fp32=speedup, devices=figures, flags=flags)
