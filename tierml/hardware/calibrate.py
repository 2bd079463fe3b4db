"""Host calibration: what this machine achieves, and how efficiently each class of op runs on it.

`tierml calibrate` measures
- achieved GFLOP/s of a 1024x1024 fp32 MatMul through ONNX Runtime (the host's compute peak),
- copy bandwidth over a sweep of buffer sizes (cache to DRAM; the largest sizes give the DRAM figure),
- the fixed cost of one `session.run` and of one more node in a graph,
- a suite of single-op models (convolutions of several kinds, matmuls, elementwise, reductions,
  normalisations, data movement, recurrent cells) at many sizes. Each is profiled with tierml's
  own analyzer, so its FLOPs and bytes are the features the estimator sees, and its efficiency is
  the roofline time max(FLOPs / peak, bytes / bandwidth) divided by the measured time.

The estimator (tierml.hardware.roofline) interpolates those efficiencies for each node of a model.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from pydantic import BaseModel

from tierml.errors import TiermlError
from tierml.files import atomic_write_text
from tierml.hardware.catalog import Device, Number, Source
from tierml.model.measure import time_runs
from tierml.model.profile import analyze
from tierml.model.session import make_session
from tierml.progress import Progress

CALIBRATION_VERSION = 1


class HostInfo(BaseModel):
    cpu: str
    logical_cores: int
    isa: list[str]
    onnxruntime: str
    python: str


class Sample(BaseModel):
    """One calibration case: its features and the efficiency it reached."""

    op_class: str
    op_type: str = ""
    case: str
    flops: int
    bytes: int
    seconds: float  # median, net of session and per-node overhead
    efficiency: float


class Calibration(BaseModel):
    """Everything the host estimator needs, at one thread count."""

    version: int = CALIBRATION_VERSION
    created: str
    threads: int
    host: HostInfo
    matmul_gflops: float
    memory_gbps: float
    bandwidth_sweep: dict[str, float]  # buffer bytes -> GB/s
    session_overhead_us: float
    node_overhead_us: float
    samples: list[Sample]
    seconds_taken: float

    def describe(self) -> str:
        return (f"calibrated on {self.host.cpu} at {self.threads} thread(s) on {self.created[:10]}: "
                f"{self.matmul_gflops:.0f} GFLOP/s matmul, {self.memory_gbps:.1f} GB/s copy, "
                f"{len(self.samples)} op samples")


def host_info() -> HostInfo:
    cpu, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and cpu in ("", platform.machine(), platform.processor()):
                cpu = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    wanted = ["avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "asimd", "asimddp",
              "sve", "i8mm"]
    return HostInfo(cpu=cpu or platform.machine(), logical_cores=os.cpu_count() or 1,
                    isa=[f for f in wanted if f in flags], onnxruntime=ort.__version__,
                    python=platform.python_version())


# ----------------------------------------------------------------------------- the suite


@dataclass
class Case:
    """One calibration op. `chained` (shape-preserving ops) is the op repeated `CHAIN` times: the
    marginal cost of one more link is what the op costs inside a network, where ORT keeps the
    blocked NCHWc layout between convolutions instead of converting around each one."""

    op_class: str
    name: str
    model: onnx.ModelProto
    feeds: dict[str, np.ndarray]
    chained: onnx.ModelProto | None = None


CHAIN = 5


_RNG = np.random.default_rng(20261122)


def _model(nodes: list[onnx.NodeProto], inputs: dict[str, np.ndarray],
           weights: dict[str, np.ndarray], outputs: list[str]) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "calibration",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for n, v in
         inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(v, n) for n, v in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _rand(*shape: int) -> np.ndarray:
    return _RNG.standard_normal(shape).astype(np.float32)


def _single(op_class: str, name: str, op: str, inputs: dict[str, np.ndarray],
            weights: dict[str, np.ndarray] | None = None, **attrs: object) -> Case:
    weights = weights or {}
    node = helper.make_node(op, [*inputs, *weights], ["y"], **attrs)
    return Case(op_class, name, _model([node], inputs, weights, ["y"]), inputs)


def _chained(op_class: str, name: str, op: str, x: np.ndarray, weights: dict[str, np.ndarray],
             **attrs: object) -> Case:
    """A shape-preserving op with one input `x`, alone and repeated CHAIN times (own weights per link)."""

    def build(links: int) -> onnx.ModelProto:
        nodes, params = [], {}
        for i in range(links):
            params.update({f"{k}{i}": v for k, v in weights.items()})
            nodes.append(helper.make_node(op, [f"t{i}", *(f"{k}{i}" for k in weights)], [f"t{i + 1}"], **attrs))
        return _model(nodes, {"t0": x}, params, [f"t{links}"])

    return Case(op_class, name, build(1), {"t0": x}, chained=build(CHAIN))


def _conv_cases() -> Iterator[Case]:
    # Shape-preserving convolutions, measured inside a chain; channels rise as resolution falls.
    for c, hw, k in [(16, 160, 3), (16, 80, 3), (24, 56, 3), (32, 80, 3), (32, 40, 3), (48, 28, 3), (64, 40, 3),
                     (64, 20, 3), (96, 14, 3), (128, 20, 3), (128, 10, 3), (256, 10, 3), (256, 5, 3), (512, 7, 3),
                     (16, 20, 3), (32, 10, 3), (24, 40, 5), (64, 14, 5), (96, 20, 3)]:
        yield _chained("conv", f"conv{k}x{k} {c} @{hw}", "Conv", _rand(1, c, hw, hw),
                       {"w": _rand(c, c, k, k), "b": _rand(c)}, pads=[k // 2] * 4)
    for c, hw in [(16, 112), (24, 56), (64, 28), (96, 40), (128, 20), (256, 14), (512, 7), (1024, 7), (32, 40),
                  (8, 80), (16, 20), (40, 28), (160, 7), (64, 6), (288, 3), (1024, 1)]:
        yield _chained("conv_pointwise", f"conv1x1 {c} @{hw}", "Conv", _rand(1, c, hw, hw),
                       {"w": _rand(c, c, 1, 1), "b": _rand(c)})
    for c, hw, k in [(16, 160, 3), (32, 112, 3), (64, 80, 3), (96, 56, 3), (144, 40, 5), (256, 20, 3),
                     (512, 10, 5), (960, 7, 3), (32, 40, 3), (240, 14, 5), (16, 20, 3), (64, 10, 3), (120, 6, 3),
                     (576, 3, 5), (96, 80, 5), (192, 40, 5), (384, 20, 5), (48, 160, 3), (16, 320, 3)]:
        yield _chained("conv_depthwise", f"dw{k}x{k} {c} @{hw}", "Conv", _rand(1, c, hw, hw),
                       {"w": _rand(c, 1, k, k), "b": _rand(c)}, group=c, pads=[k // 2] * 4)
    # Narrow inputs (fewer than 16 channels): stems and bottleneck projections, a slower kernel path.
    for c, hw, k in [(8, 160, 3), (8, 40, 3), (4, 112, 3), (12, 80, 1), (3, 224, 3)]:
        yield _chained("conv_narrow", f"conv{k}x{k} {c} @{hw}", "Conv", _rand(1, c, hw, hw),
                       {"w": _rand(c, c, k, k), "b": _rand(c)}, pads=[k // 2] * 4)
    for cin, cout, hw, k, s in [(3, 16, 224, 3, 2), (3, 32, 160, 3, 2), (12, 96, 160, 1, 1), (8, 32, 80, 1, 1),
                                (4, 24, 112, 3, 1), (1, 16, 8, 3, 1), (12, 48, 80, 3, 1), (3, 64, 112, 7, 2)]:
        yield _single("conv_narrow", f"conv{k}x{k} {cin}->{cout} @{hw} s{s}", "Conv", {"x": _rand(1, cin, hw, hw)},
                      {"w": _rand(cout, cin, k, k), "b": _rand(cout)}, pads=[k // 2] * 4, strides=[s, s])
    # Convolutions that change shape are measured alone (strided stems and down-sampling).
    for cin, cout, hw, k, s, g in [(16, 64, 112, 1, 1, 1), (64, 16, 80, 1, 1, 1), (32, 32, 112, 3, 2, 32),
                                   (96, 96, 56, 3, 2, 96), (64, 128, 28, 3, 2, 1), (240, 240, 14, 5, 2, 240),
                                   (96, 18, 80, 1, 1, 1), (48, 12, 160, 1, 1, 1)]:
        op_class = "conv_depthwise" if g > 1 else ("conv_pointwise" if k == 1 else "conv")
        yield _single(op_class, f"conv{k}x{k} {cin}->{cout} @{hw} s{s} g{g}", "Conv", {"x": _rand(1, cin, hw, hw)},
                      {"w": _rand(cout, cin // g, k, k), "b": _rand(cout)}, group=g, pads=[k // 2] * 4,
                      strides=[s, s])
    for cin, cout, hw, k in [(64, 32, 40, 2), (96, 24, 80, 2), (256, 128, 20, 4), (32, 16, 160, 2), (16, 1, 160, 2)]:
        yield _single("conv_transpose", f"convT{k} {cin}->{cout} @{hw}", "ConvTranspose",
                      {"x": _rand(1, cin, hw, hw)}, {"w": _rand(cin, cout, k, k), "b": _rand(cout)},
                      strides=[2, 2])


def _matmul_cases() -> Iterator[Case]:
    for m, k, n in [(1, 256, 256), (1, 1024, 1024), (1, 2048, 1000), (8, 512, 512), (40, 120, 360),
                    (64, 256, 256), (80, 64, 64), (128, 768, 768), (197, 384, 1152), (256, 256, 1024),
                    (512, 512, 512), (1024, 1024, 1024), (40, 480, 6625), (16, 64, 16)]:
        yield _single("matmul", f"matmul {m}x{k}x{n}", "MatMul", {"x": _rand(m, k)}, {"w": _rand(k, n)})
    for b, h, s, d in [(1, 8, 40, 16), (1, 12, 128, 64), (1, 4, 256, 32), (1, 2, 40, 60), (1, 8, 16, 8)]:
        yield _single("matmul", f"attention QK^T {b}x{h}x{s}x{d}", "MatMul",
                      {"q": _rand(b, h, s, d), "k": _rand(b, h, d, s)})
    for m, k, n in [(1, 1280, 1000), (32, 512, 128), (4, 64, 10)]:
        yield _single("matmul", f"gemm {m}x{k}x{n}", "Gemm", {"x": _rand(m, k)}, {"w": _rand(k, n), "b": _rand(n)})


_SIZES = [1_000, 10_000, 60_000, 250_000, 1_000_000, 4_000_000]


def _elementwise_cases() -> Iterator[Case]:
    for n in _SIZES:
        for op in ("Add", "Mul", "Sub", "Div"):
            yield _single("elementwise", f"{op} {n}", op, {"a": _rand(n), "b": _rand(n)})
        for op in ("Relu", "Sigmoid", "HardSigmoid", "Tanh", "Sqrt", "Exp"):
            yield _single("elementwise", f"{op} {n}", op, {"x": np.abs(_rand(n))})
        yield _single("elementwise", f"Clip {n}", "Clip", {"x": _rand(n)},
                      {"lo": np.array(0, np.float32), "hi": np.array(6, np.float32)})
        for op in ("Add", "Div", "Pow"):
            yield _single("elementwise", f"{op} const {n}", op, {"x": np.abs(_rand(n))}, {"c": np.array(3, np.float32)})
    for c, hw in [(16, 80), (64, 40), (256, 10)]:
        yield _single("elementwise", f"Mul channel-broadcast {c}@{hw}", "Mul",
                      {"x": _rand(1, c, hw, hw), "s": _rand(1, c, 1, 1)})


def _reduce_cases() -> Iterator[Case]:
    for c, hw in [(16, 160), (64, 40), (256, 20), (960, 7), (32, 10)]:
        yield _single("reduce", f"GlobalAveragePool {c}@{hw}", "GlobalAveragePool", {"x": _rand(1, c, hw, hw)})
    for c, hw in [(16, 160), (64, 56), (256, 14)]:
        yield _single("reduce", f"MaxPool3s2 {c}@{hw}", "MaxPool", {"x": _rand(1, c, hw, hw)},
                      kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    for rows, cols in [(40, 120), (197, 384), (1000, 64), (8, 16)]:
        yield _single("reduce", f"ReduceMean {rows}x{cols}", "ReduceMean", {"x": _rand(1, rows, cols)}, axes=[-1])


def _normalize_cases() -> Iterator[Case]:
    for rows, cols in [(1, 1000), (40, 6625), (8 * 40, 40), (12 * 128, 128), (64, 10), (4 * 256, 256)]:
        yield _single("normalize", f"Softmax {rows}x{cols}", "Softmax", {"x": _rand(rows, cols)}, axis=-1)
    for rows, cols in [(40, 120), (197, 384), (128, 768), (16, 32)]:
        yield _single("normalize", f"LayerNormalization {rows}x{cols}", "LayerNormalization",
                      {"x": _rand(1, rows, cols)}, {"g": _rand(cols), "b": _rand(cols)}, axis=-1)


def _movement_cases() -> Iterator[Case]:
    for c, hw in [(16, 160), (64, 40), (256, 10), (8, 8)]:
        yield _single("movement", f"Transpose {c}@{hw}", "Transpose", {"x": _rand(1, c, hw, hw)}, perm=[0, 2, 3, 1])
        yield _single("movement", f"Concat 2x{c}@{hw}", "Concat", {"a": _rand(1, c, hw, hw), "b": _rand(1, c, hw, hw)},
                      axis=1)
        yield _single("movement", f"Slice {c}@{hw}", "Slice", {"x": _rand(1, c, hw, hw)},
                      {"s": np.array([0], np.int64), "e": np.array([c // 2], np.int64), "a": np.array([1], np.int64)})
    for c, hw, mode in [(64, 40, "nearest"), (96, 20, "nearest"), (16, 80, "linear"), (64, 40, "linear"),
                        (8, 10, "nearest")]:
        yield _single("resize", f"Resize x2 {mode} {c}@{hw}", "Resize", {"x": _rand(1, c, hw, hw)},
                      {"roi": np.array([], np.float32), "scales": np.array([1, 1, 2, 2], np.float32)}, mode=mode)


def _recurrent_cases() -> Iterator[Case]:
    for seq, inp, hidden in [(16, 64, 128), (1, 128, 128), (50, 40, 64)]:
        yield _single("recurrent", f"LSTM seq{seq} {inp}->{hidden}", "LSTM", {"x": _rand(seq, 1, inp)},
                      {"W": _rand(1, 4 * hidden, inp) * 0.1, "R": _rand(1, 4 * hidden, hidden) * 0.1},
                      hidden_size=hidden)


def suite() -> list[Case]:
    """All calibration cases, in a fixed order (chained convolutions first: they also time ORT's layout
    conversions, which later lone cases are corrected by)."""
    return [*_conv_cases(), *_matmul_cases(), *_elementwise_cases(), *_reduce_cases(),
            *_normalize_cases(), *_movement_cases(), *_recurrent_cases()]


# ----------------------------------------------------------------------------- measuring


def median_seconds(model: onnx.ModelProto, feeds: dict[str, np.ndarray], threads: int,
                   budget_s: float = 0.25, min_runs: int = 7, max_runs: int = 200) -> float:
    """Median time of one run, outputs bound to preallocated buffers (no per-run allocation or copy)."""
    session = make_session(model, threads)
    binding = session.io_binding()
    for name, value in feeds.items():
        binding.bind_cpu_input(name, value)
    outputs = session.run(None, feeds)
    for meta, value in zip(session.get_outputs(), outputs, strict=True):
        binding.bind_ortvalue_output(meta.name, ort.OrtValue.ortvalue_from_numpy(np.empty_like(value)))

    def once() -> float:
        start = time.perf_counter()
        session.run_with_iobinding(binding)
        return time.perf_counter() - start

    first = [once() for _ in range(5)]
    runs = int(np.clip(budget_s / max(float(np.median(first)), 1e-6), min_runs, max_runs))
    return float(np.median([once() for _ in range(runs)]))


def case_seconds(case: Case, threads: int) -> tuple[float, float | None]:
    """(median of the lone op's run, marginal cost of one more link of its chain or None)."""
    alone = median_seconds(case.model, case.feeds, threads)
    if case.chained is None:
        return alone, None
    chain = median_seconds(case.chained, case.feeds, threads, budget_s=0.5)
    return alone, max((chain - alone) / (CHAIN - 1), 1e-7)


def matmul_gflops(threads: int, n: int = 1024) -> float:
    case = _single("matmul", "peak", "MatMul", {"x": _rand(n, n)}, {"w": _rand(n, n)})
    return 2 * n**3 / median_seconds(case.model, case.feeds, threads, budget_s=1.0) / 1e9


def bandwidth_sweep(sizes: tuple[int, ...] = (1 << 15, 1 << 18, 1 << 20, 1 << 22, 1 << 24, 1 << 26, 1 << 27)
                    ) -> dict[int, float]:
    """GB/s of a buffer copy (read + write counted) for each buffer size in bytes."""
    result = {}
    for size in sizes:
        src = np.ones(size // 4, np.float32)
        dst = np.empty_like(src)
        np.copyto(dst, src)
        reps = max(3, min(200, (1 << 27) // size))
        samples = []
        for _ in range(reps):
            start = time.perf_counter()
            np.copyto(dst, src)
            samples.append(time.perf_counter() - start)
        result[size] = 2 * size / float(np.median(samples)) / 1e9
    return result


def overheads(threads: int, chain: int = 64) -> tuple[float, float, float]:
    """Seconds per session.run, per run with preallocated outputs, and per extra node, from 1-node and
    `chain`-node tiny graphs. A whole-model estimate adds the first (users call session.run with numpy
    in and out); the calibration cases, timed with preallocated outputs, are net of the second."""
    one = np.ones(1, np.float32)

    def chain_model(length: int) -> onnx.ModelProto:
        nodes = [helper.make_node("Add", [f"t{i}", "one"], [f"t{i + 1}"]) for i in range(length)]
        return _model(nodes, {"t0": one}, {"one": one}, [f"t{length}"])

    single = chain_model(1)
    run_s = float(np.median(time_runs(make_session(single, threads), {"t0": one}, runs=2000, warmup=50)))
    t1 = median_seconds(single, {"t0": one}, threads, budget_s=0.3)
    tn = median_seconds(chain_model(chain), {"t0": one}, threads, budget_s=0.3)
    node_s = max((tn - t1) / (chain - 1), 0.0)
    return run_s, max(t1 - node_s, 0.0), node_s


def calibrate(threads: int = 1, progress: Progress | None = None, quick: bool = False) -> Calibration:
    """Measure this host (about a minute at 1 thread; `quick` uses every third suite case)."""
    started = time.perf_counter()
    cases = suite()[:: 3 if quick else 1]
    total = len(cases) + 3
    if progress:
        progress("matmul peak", 0, total)
    peak = matmul_gflops(threads)
    if progress:
        progress("memory sweep", 1, total)
    sweep = bandwidth_sweep()
    dram = float(np.median([v for k, v in sweep.items() if k >= 1 << 26]))
    if progress:
        progress("overheads", 2, total)
    session_s, bound_s, node_s = overheads(threads)
    samples: list[Sample] = []
    for index, case in enumerate(cases):
        if progress:
            progress(case.name, 3 + index, total)
        profile = analyze(case.model, None)
        node = next(n for n in profile.nodes if not n.folded)
        reorders = profile.runtime_reorders
        alone, marginal = case_seconds(case, threads)
        fixed = bound_s + (1 + len(reorders)) * node_s  # the run, and each node ORT executes
        if marginal is None:  # a lone blocked op pays ORT's layout conversions around it: take them off
            layout = sum(_reorder_seconds(r.bytes, samples) for r in reorders)
            seconds = max(alone - fixed - layout, 0.1 * (alone - bound_s), 1e-7)
        else:
            seconds = marginal
            if reorders and alone - fixed > seconds:  # what the lone run spent beyond the op: its conversions
                per = (alone - fixed - seconds) / len(reorders)
                samples.extend(Sample(op_class="reorder", op_type=f"Reorder{r.direction.title()}", case=case.name,
                                      flops=0, bytes=2 * r.bytes, seconds=per,
                                      efficiency=2 * r.bytes / (dram * 1e9) / per) for r in reorders)
        roofline = max(node.flops / (peak * 1e9), node.bytes_moved / (dram * 1e9))
        samples.append(Sample(op_class=node.op_class, op_type=node.op_type, case=case.name, flops=node.flops,
                              bytes=node.bytes_moved, seconds=seconds, efficiency=roofline / seconds))
    if progress:
        progress("done", total, total)
    return Calibration(
        created=datetime.now(UTC).isoformat(timespec="seconds"), threads=threads, host=host_info(),
        matmul_gflops=peak, memory_gbps=dram, bandwidth_sweep={str(k): v for k, v in sweep.items()},
        session_overhead_us=session_s * 1e6, node_overhead_us=node_s * 1e6, samples=samples,
        seconds_taken=time.perf_counter() - started,
    )


def _reorder_seconds(tensor_bytes: int, samples: list[Sample]) -> float:
    """Interpolated time of converting a tensor of this size (log-log in bytes moved)."""
    known = sorted((s.bytes, s.seconds) for s in samples if s.op_class == "reorder")
    if not known or tensor_bytes <= 0:
        return 0.0
    sizes, times = np.log([k[0] for k in known]), np.log([k[1] for k in known])
    return float(np.exp(np.interp(np.log(2 * tensor_bytes), sizes, times)))


# ----------------------------------------------------------------------------- storage


def cache_dir() -> Path:
    return Path(os.environ.get("TIERML_CACHE", Path.home() / ".cache" / "tierml"))


def default_path(threads: int) -> Path:
    return cache_dir() / "calibration" / f"host-{threads}t.json"


def save(calibration: Calibration, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, calibration.model_dump_json(indent=1))


def load(path: Path) -> Calibration:
    try:
        data = json.loads(path.read_text())
        return Calibration.model_validate(data)
    except FileNotFoundError as exc:
        raise TiermlError(f"calibration file '{path}' not found; create it with `tierml calibrate`") from exc
    except (ValueError, TypeError) as exc:
        raise TiermlError(f"'{path}' is not a tierml calibration file; recreate it with `tierml calibrate`") from exc


def matches_host(calibration: Calibration) -> bool:
    """A stored calibration is reused only on the same CPU model and ONNX Runtime version."""
    here = host_info()
    return (calibration.version == CALIBRATION_VERSION and calibration.host.cpu == here.cpu
            and calibration.host.onnxruntime == here.onnxruntime)


def host_device(calibration: Calibration) -> tuple[Device, Source]:
    """This machine as a catalogue device, its figures measured by `tierml calibrate`."""
    source = Source(title=f"measured on this host by tierml calibrate ({calibration.host.cpu})",
                    date=calibration.created[:10])

    def measured(value: float, note: str = "") -> Number:
        return Number(value=value, source="tierml-calibrate", note=note)

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    free = shutil.disk_usage(cache_dir().anchor or "/").free
    device = Device(
        name="host", title=f"this host: {calibration.host.cpu}, {calibration.threads} thread(s)", tier="edge",
        kind="this-host", compute=f"ONNX Runtime {calibration.host.onnxruntime} CPU, {calibration.threads} thread(s)",
        peak_fp32_gflops=measured(calibration.matmul_gflops, "achieved by a 1024^3 fp32 MatMul"),
        memory_bandwidth_gbps=measured(calibration.memory_gbps, "buffer copy, 64-128 MiB"),
        ram_mb=measured(ram / 1e6, "physical memory"), storage_mb=measured(free / 1e6, "free disk"),
    )
    return device, source
