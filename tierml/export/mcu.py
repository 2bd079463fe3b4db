"""`tierml export --target mcu`: ONNX -> int8 C for microcontrollers, sized against each catalogue MCU, verified.

The pipeline: lower the ONNX graph to MCU layers (`mcu_graph`), quantize it in TFLM's scheme from
calibration inputs (`mcu_quant`), plan one static arena (`mcu_plan`), generate model.c/model.h
(`mcu_codegen`). Verification builds the C for the host (and, with a board, for a Cortex-M4 under
QEMU) and requires int8 outputs identical to the TFLite Micro interpreter running the same graph.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnx
from pydantic import BaseModel

from tierml.errors import TiermlError, did_you_mean
from tierml.export import mcu_build as build
from tierml.export.mcu_codegen import CSource, generate
from tierml.export.mcu_graph import Graph, lower
from tierml.export.mcu_plan import MemoryPlan, plan_memory
from tierml.export.mcu_quant import QuantizedGraph, calibration_ranges, quantize
from tierml.export.mcu_tflite import quantize_input, run_tflm, to_tflite
from tierml.export.target import Target
from tierml.hardware.catalog import Catalog, Device
from tierml.model.profile import ModelProfile
from tierml.model.runtimes import MCU_INT8
from tierml.model.session import make_session
from tierml.optimize.evaluate import profile_at_batch_one

CODE_PER_KERNEL_ESTIMATE = 700  # bytes of Thumb-2 code per kernel file at -O2 (measured range 300-1,200)
STACK_ESTIMATE = 1024  # bytes, when no Arm compiler is here to measure -fstack-usage


class McuFit(BaseModel):
    """The export against one MCU's flash and RAM."""

    device: str
    title: str
    flash_budget_bytes: int
    ram_budget_bytes: int
    flash_margin_bytes: int
    ram_margin_bytes: int
    fits: bool
    binding: str  # "flash" | "ram" | "" when it fits


class QemuRun(BaseModel):
    """One Cortex-M4 build run under QEMU."""

    board: str
    kernels: str  # "plain-c" | "dsp"
    bit_exact: bool
    mismatches: int
    instructions: int | None  # guest instructions in one model_invoke (TCG plugin)
    instructions_per_mac: float | None
    text_bytes: int
    data_bytes: int
    bss_bytes: int


class Verification(BaseModel):
    """Generated C against the TFLite Micro interpreter on the same int8 inputs."""

    inputs: int
    golden: str
    host_bit_exact: bool
    host_mismatches: int
    sanitized: bool
    tflm_arena_bytes: int
    tflm_arena_head_bytes: int
    tflm_arena_tail_bytes: int
    arena_vs_tflm: float
    float_max_abs_error: float  # dequantized int8 output vs the fp32 ONNX model
    float_argmax_agreement: float
    qemu: list[QemuRun] = []


class McuExport(BaseModel):
    """What `tierml export --target mcu` produced, its flash/RAM against each MCU, and its verification."""

    model: str
    sha256: str
    out_dir: str
    files: list[str]
    layers: int
    in_place_layers: int
    macs: int
    weight_bytes: int  # int8 weights only
    const_bytes: int  # weights + biases + multipliers + shifts + parameter blocks
    code_bytes: int
    flash_bytes: int
    flash_method: str
    arena_bytes: int
    naive_arena_bytes: int  # one buffer per tensor, for comparison
    stack_bytes: int
    stack_method: str
    io_bytes: int  # the caller's input and output buffers
    ram_bytes: int  # arena + stack + io
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    fits: list[McuFit]
    verification: Verification | None = None


@dataclass
class Compiled:
    """Every stage's result for one model."""

    graph: Graph
    quantized: QuantizedGraph
    plan: MemoryPlan
    source: CSource


def compile_mcu(model: onnx.ModelProto, profile: ModelProfile, calib: np.ndarray, in_place: bool = True,
                source: str = "") -> Compiled:
    """Lower, quantize (calibration inputs in the ONNX layout, batch first), plan and generate C."""
    graph = lower(model, profile)
    shape = tuple(profile.inputs[0].shape[1:])
    if tuple(calib.shape[1:]) != shape:
        raise TiermlError(f"calibration inputs have shape {tuple(calib.shape)}; the model takes N x "
                          f"{'x'.join(map(str, shape))}")
    ranges = calibration_ranges(model, graph, (x[None] for x in calib))
    quantized = quantize(graph, ranges)
    plan = plan_memory(graph, in_place)
    return Compiled(graph, quantized, plan, generate(quantized, plan, source))


def _measure_flash_and_stack(folder: Path, compiled: Compiled) -> tuple[int, int, str, int, str]:
    """Flash (code + constants) and stack of model.c built for the Cortex-M4, or catalogue-style estimates."""
    if build.arm_toolchain_missing():
        kernels = len(set(re.findall(r"^static void (tml_\w+)\(", compiled.source.model_c, re.M)))
        code = CODE_PER_KERNEL_ESTIMATE * kernels
        return (code, compiled.source.const_bytes + code, "estimate: constants counted, code ~700 B per kernel",
                STACK_ESTIMATE, "assumption (no arm-none-eabi-gcc to measure)")
    obj = folder / "model_m4.o"
    build.run_tool(["arm-none-eabi-gcc", *build.M4_FLAGS, "-O2", "-fstack-usage", "-c", str(folder / "model.c"),
                    "-o", str(obj)], "Cortex-M4 compile of model.c (for its size)", cwd=folder)
    text, data, _ = build.elf_sizes(obj)
    usage = obj.with_suffix(".su")
    frames = [int(line.split("\t")[1]) for line in usage.read_text().splitlines() if "\t" in line]
    obj.unlink()
    usage.unlink()
    flash = text + data
    return (max(flash - compiled.source.const_bytes, 0), flash, "measured: arm-none-eabi-gcc -O2, cortex-m4 DSP",
            sum(frames), "upper bound: sum of every function's -fstack-usage frame")


def fit_devices(flash: int, ram: int, devices: list[Device]) -> list[McuFit]:
    """Margins against each device's flash and RAM; the binding budget when it does not fit."""
    fits = []
    for d in devices:
        flash_budget = int(d.storage_bytes or 0)
        ram_budget = int(d.ram_bytes)
        flash_margin, ram_margin = flash_budget - flash, ram_budget - ram
        binding = "flash" if flash_margin < 0 else "ram" if ram_margin < 0 else ""
        fits.append(McuFit(device=d.name, title=d.title, flash_budget_bytes=flash_budget, ram_budget_bytes=ram_budget,
                        flash_margin_bytes=flash_margin, ram_margin_bytes=ram_margin, fits=not binding,
                        binding=binding))
    return fits


def mcu_devices(catalog: Catalog, names: list[str] | None) -> list[Device]:
    """The named devices, or every MCU in the catalogue."""
    if names:
        return [catalog.device(n) for n in names]
    return [d for d in catalog.devices.values() if d.tier == "mcu"]


def refusal(result: McuExport, fits: list[McuFit]) -> str:
    """Why the export is refused, with the numbers, when no requested device can hold it."""
    parts = []
    for f in fits:
        over = [f"flash {result.flash_bytes:,} B of {f.flash_budget_bytes:,} B (over by {-f.flash_margin_bytes:,})"
                if f.flash_margin_bytes < 0 else "",
                f"RAM {result.ram_bytes:,} B of {f.ram_budget_bytes:,} B (over by {-f.ram_margin_bytes:,})"
                if f.ram_margin_bytes < 0 else ""]
        parts.append(f"{f.device}: " + ", ".join(o for o in over if o))
    return ("the model does not fit " + "; ".join(parts) + f" (arena {result.arena_bytes:,} B, stack "
            f"{result.stack_bytes:,} B, weights {result.weight_bytes:,} B). Shrink the model (fewer channels, "
            "smaller input) or pick a bigger MCU with --device")


def export_mcu(model: onnx.ModelProto, profile: ModelProfile, calib: np.ndarray, out_dir: Path, catalog: Catalog,
               devices: list[str] | None = None, in_place: bool = True) -> tuple[McuExport, Compiled]:
    """Generate model.c/model.h into `out_dir` with its flash/RAM report; refuse a model no device can hold."""
    compiled = compile_mcu(model, profile, calib, in_place, source=Path(profile.model).name)
    g, q, plan = compiled.graph, compiled.quantized, compiled.plan
    with tempfile.TemporaryDirectory(prefix="tierml-mcu-") as tmp:
        staging = Path(tmp)
        build.write_sources(staging, compiled.source.model_c, compiled.source.model_h)
        code, flash, flash_method, stack, stack_method = _measure_flash_and_stack(staging, compiled)
        io = g.size(g.input) + g.size(g.output)
        ram = plan.arena_bytes + stack + io
        targets = mcu_devices(catalog, devices)
        fits = fit_devices(flash, ram, targets)
        result = McuExport(
            model=profile.model, sha256=profile.sha256, out_dir=str(out_dir), files=["model.c", "model.h"],
            layers=sum(1 for layer in g.layers if layer.op != "reshape"),
            in_place_layers=sum(1 for m in plan.layers if m.in_place), macs=g.total_macs,
            weight_bytes=sum(int(layer.weight.size) for layer in q.layers if layer.weight is not None),
            const_bytes=compiled.source.const_bytes, code_bytes=code, flash_bytes=flash, flash_method=flash_method,
            arena_bytes=plan.arena_bytes, naive_arena_bytes=plan.naive_bytes(g), stack_bytes=stack,
            stack_method=stack_method, io_bytes=io, ram_bytes=ram, input_scale=float(q.input.scale),
            input_zero_point=q.input.zero_point, output_scale=float(q.output.scale),
            output_zero_point=q.output.zero_point, fits=fits)
        if fits and not any(f.fits for f in fits):
            raise TiermlError(refusal(result, fits))
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in result.files:
            shutil.copyfile(staging / name, out_dir / name)
    return result, compiled


@dataclass
class McuTarget(Target):
    """int8 C for microcontrollers: `calib` inputs set the int8 ranges; sized against `devices` (default: all MCUs)."""

    calib: np.ndarray
    catalog: Catalog
    devices: list[str] | None = None
    in_place: bool = True
    compiled: Compiled | None = None  # set by export, for verify

    name: ClassVar[str] = "mcu"
    tier: ClassVar[str] = "mcu"
    supported_ops: ClassVar[frozenset[str]] = MCU_INT8.supported
    folded_ops: ClassVar[frozenset[str]] = MCU_INT8.folded
    alternatives: ClassVar[Mapping[str, str]] = MCU_INT8.alternatives

    def export(self, model: onnx.ModelProto, profile: ModelProfile, out_dir: Path) -> McuExport:
        result, self.compiled = export_mcu(model, profile, self.calib, out_dir, self.catalog, self.devices,
                                           self.in_place)
        return result

    @classmethod
    def outputs(cls, model: onnx.ModelProto, calibration: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The int8 C's outputs for `x`, dequantized: `model` exported as `tierml export --target mcu --calib` would
        with these calibration inputs, built for this host and run. The host build computes what the MCU does
        (the tests hold it, both Cortex-M builds and TFLite Micro bit-exact with each other), and unlike TFLM it
        runs every layer the exporter writes (TFLite cannot express asymmetric ONNX pads)."""
        compiled = compile_mcu(model, profile_at_batch_one(model, x.shape[1:]), calibration)
        g, q = compiled.graph, compiled.quantized
        with tempfile.TemporaryDirectory(prefix="tierml-mcu-") as tmp:
            folder = Path(tmp)
            build.write_sources(folder, compiled.source.model_c, compiled.source.model_h)
            rows = build.run_host(build.build_host(folder), quantize_input(q, x), g.size(g.output))
        return g.onnx_layout(q.output.dequantize(rows))


def _float_outputs(model: onnx.ModelProto, graph: Graph, inputs: np.ndarray) -> np.ndarray:
    session = make_session(model, threads=None)
    rows = [session.run(None, {graph.input: x[None].astype(np.float32)})[0] for x in inputs]
    return graph.channels_last(np.concatenate(rows)).reshape(len(inputs), -1)


def verify(model: onnx.ModelProto, compiled: Compiled, folder: Path, inputs: np.ndarray, sanitize: bool = False,
           board: str | None = None) -> Verification:
    """Run the generated C (host, and the board under QEMU) and TFLM on `inputs`; compare int8 outputs.

    `folder` is the build folder: the sources, executables, ELFs and the QEMU plugin go there.
    """
    g, q = compiled.graph, compiled.quantized
    build.write_sources(folder, compiled.source.model_c, compiled.source.model_h)
    x = quantize_input(q, inputs)
    golden = run_tflm(to_tflite(q), x)
    exe = build.build_host(folder, sanitize=sanitize)
    host = build.run_host(exe, x, g.size(g.output))
    reference = _float_outputs(model, g, inputs)
    dequantized = q.output.dequantize(golden.outputs)
    result = Verification(
        inputs=len(x), golden=f"tflite-micro {_tflm_version()} (reference kernels)",
        host_bit_exact=bool(np.array_equal(host, golden.outputs)), host_mismatches=int(np.sum(host != golden.outputs)),
        sanitized=sanitize, tflm_arena_bytes=golden.arena_bytes, tflm_arena_head_bytes=golden.arena_head_bytes,
        tflm_arena_tail_bytes=golden.arena_tail_bytes,
        arena_vs_tflm=compiled.plan.arena_bytes / golden.arena_bytes if golden.arena_bytes else float("nan"),
        float_max_abs_error=float(np.max(np.abs(dequantized - reference))),
        float_argmax_agreement=float(np.mean(dequantized.argmax(axis=1) == reference.argmax(axis=1))))
    if board is not None:
        kernels = ("plain-c", "dsp") if _board(board).dsp else ("plain-c",)
        result.qemu = [qemu_run(compiled, folder, x, golden.outputs, board, k) for k in kernels]
    return result


def qemu_run(compiled: Compiled, folder: Path, x: np.ndarray, expected: np.ndarray, board: str,
             kernels: str) -> QemuRun:
    """Cross-build for `board` with plain-C or DSP kernels, run under QEMU, count one inference's instructions."""
    spec = _board(board)
    size = compiled.graph.size(compiled.graph.output)
    build.write_sources(folder, compiled.source.model_c, compiled.source.model_h)
    elf = build.build_arm(folder, spec, x, size, dsp=kernels == "dsp")
    run = build.run_arm(elf, spec, size, len(x), build.plugin_path(folder))
    macs = compiled.graph.total_macs
    return QemuRun(board=board, kernels=kernels, bit_exact=bool(np.array_equal(run.outputs, expected)),
                   mismatches=int(np.sum(run.outputs != expected)), instructions=run.instructions,
                   instructions_per_mac=run.instructions / macs if run.instructions and macs else None,
                   text_bytes=run.text_bytes, data_bytes=run.data_bytes, bss_bytes=run.bss_bytes)


def _board(name: str) -> build.Board:
    if name not in build.BOARDS:
        known = ", ".join(build.BOARDS)
        raise TiermlError(f"unknown --board '{name}'; {did_you_mean(name, build.BOARDS)}known: {known}")
    return build.BOARDS[name]


def _tflm_version() -> str:
    try:
        from importlib.metadata import version

        return version("tflite-micro")
    except Exception:  # the version is only a label
        return "?"

