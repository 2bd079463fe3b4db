"""MCU export against TFLite Micro: bit-exactness, arena, flash, and Cortex-M4 instructions (plain C vs DSP).

For each reference model (tests/support/mcu_models.py): export it, run the generated C on the host
(gcc, ASan/UBSan) and TFLM (pip tflite-micro, reference kernels) on the same int8 inputs, compare
arenas (TFLM's from print_allocations), then cross-build for mps2-an386 (Cortex-M4F, Nano 33 BLE
budget) with plain-C and DSP kernels, run under QEMU and count one model_invoke's guest instructions
with the TCG plugin. Instruction counts are deterministic; they are instructions, not cycles.

    python benchmarks/mcu_export.py [--models mlp ds_cnn kws digits] [--inputs 32]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import print_table, write_results

from tests.support.mcu_models import reference_models
from tierml.export.mcu import export_mcu, qemu_run, verify
from tierml.export.mcu_build import arm_toolchain_missing
from tierml.export.mcu_plan import plan_memory
from tierml.export.mcu_tflite import quantize_input
from tierml.hardware.catalog import load_catalog
from tierml.model.profile import analyze


def measure(name: str, inputs: int, work: Path) -> dict:
    (m,) = reference_models([name], eval_count=inputs)
    profile = analyze(m.model, {"input": m.input_shape})
    report, compiled = export_mcu(m.model, profile, m.calib, work / name, load_catalog([]),
                                  ["arduino-nano-33-ble-sense"])
    check = verify(m.model, compiled, work / name / "verify", m.eval, sanitize=True)
    row = {"model": name, "input": list(m.input_shape), "layers": report.layers, "macs": report.macs,
           "weights_bytes": report.weight_bytes, "flash_bytes": report.flash_bytes,
           "flash_method": report.flash_method, "arena_bytes": report.arena_bytes,
           "arena_no_in_place_bytes": plan_memory(compiled.graph, in_place=False).arena_bytes,
           "arena_one_buffer_per_tensor_bytes": report.naive_arena_bytes, "ram_bytes": report.ram_bytes,
           "nano33_flash_margin_bytes": report.fits[0].flash_margin_bytes,
           "nano33_ram_margin_bytes": report.fits[0].ram_margin_bytes,
           "tflm_arena_bytes": check.tflm_arena_bytes, "tflm_arena_head_bytes": check.tflm_arena_head_bytes,
           "tflm_arena_tail_bytes": check.tflm_arena_tail_bytes, "arena_vs_tflm": check.arena_vs_tflm,
           "inputs": check.inputs, "host_bit_exact": check.host_bit_exact,
           "float_argmax_agreement": check.float_argmax_agreement}
    if not arm_toolchain_missing():
        x = quantize_input(compiled.quantized, m.eval)
        golden = compiled_golden(compiled, x)
        for kernels in ("plain-c", "dsp"):
            run = qemu_run(compiled, work / name / "verify", x, golden, "mps2-an386", kernels)
            key = kernels.replace("-", "_")
            row[f"qemu_{key}_bit_exact"] = run.bit_exact
            row[f"qemu_{key}_instructions"] = run.instructions
            row[f"qemu_{key}_insn_per_mac"] = run.instructions_per_mac
            row[f"qemu_{key}_text_bytes"] = run.text_bytes
        row["dsp_speedup"] = row["qemu_plain_c_instructions"] / row["qemu_dsp_instructions"]
    return row


def compiled_golden(compiled, x):  # noqa: ANN001, ANN201 - (Compiled, int8 rows) -> int8 rows
    from tierml.export.mcu_tflite import run_tflm, to_tflite

    return run_tflm(to_tflite(compiled.quantized), x).outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mlp", "ds_cnn", "kws", "digits", "vww"])
    parser.add_argument("--inputs", type=int, default=32, help="evaluation inputs per model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tierml-mcu-bench-") as tmp:
        rows = [measure(name, args.inputs, Path(tmp)) for name in args.models]
    header = ["model", "MACs", "host = TFLM", "QEMU = TFLM", "arena B", "TFLM arena B", "ratio", "flash B",
              "plain-C insn", "DSP insn", "insn/MAC plain/DSP", "DSP speed-up"]
    table = []
    for r in rows:
        qemu = r.get("qemu_plain_c_bit_exact") and r.get("qemu_dsp_bit_exact")
        table.append([r["model"], f"{r['macs']:,}", "yes" if r["host_bit_exact"] else "NO",
                      "-" if "dsp_speedup" not in r else "yes" if qemu else "NO", f"{r['arena_bytes']:,}",
                      f"{r['tflm_arena_bytes']:,}", f"{r['arena_vs_tflm']:.2f}", f"{r['flash_bytes']:,}",
                      f"{r.get('qemu_plain_c_instructions') or 0:,}", f"{r.get('qemu_dsp_instructions') or 0:,}",
                      f"{r.get('qemu_plain_c_insn_per_mac') or 0:.2f} / {r.get('qemu_dsp_insn_per_mac') or 0:.2f}",
                      f"{r.get('dsp_speedup', 0):.2f}x"])
    print_table("tierml export --target mcu vs TFLite Micro", header, table)
    toolchain = arm_toolchain_missing() or "arm-none-eabi-gcc -O2 -mcpu=cortex-m4 -mfloat-abi=hard; qemu-system-arm 7.2"
    path = write_results("mcu_export", {"toolchain": toolchain, "board": "mps2-an386 (Nano 33 BLE budget)",
                                        "models": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
