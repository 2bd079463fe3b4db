"""Build and run the generated C: on the host with gcc, and for a Cortex-M4 board under QEMU."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tierml.errors import TiermlError
from tierml.export.mcu_codegen import kernel_source

HOST_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]
C_FLAGS = ["-mthumb", "-std=c99", "-Wall", "-Wextra", "-Werror", "-ffunction-sections", "-fdata-sections"]
M4_FLAGS = ["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", *C_FLAGS]


@dataclass(frozen=True)
class Board:
    """A QEMU machine standing in for an MCU: the memory map and the budget the linker enforces."""

    name: str
    machine: str
    flash_origin: int
    ram_origin: int
    flash_bytes: int
    ram_bytes: int
    cpu_flags: tuple[str, ...]
    dsp: bool  # has the DSP extension (SXTB16/SMLAD): build both kernel sets
    stack_bytes: int = 8 * 1024


# QEMU's mps2 boards map 4 MB at 0x0 and at 0x20000000. mps2-an386 is a Cortex-M4F; its lengths are the
# Arduino Nano 33 BLE Sense's (nRF52840: 1 MB flash, 256 KB RAM), so the link fails exactly when that board
# would not hold the model. mps2-an385 is a Cortex-M3 (no DSP, no FPU), with the same budget, to keep the
# plain-C kernels honest on the smallest cores.
BOARDS = {
    "mps2-an386": Board("mps2-an386", "mps2-an386", 0x0, 0x20000000, 1024 * 1024, 256 * 1024,
                        ("-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"), dsp=True),
    "mps2-an385": Board("mps2-an385", "mps2-an385", 0x0, 0x20000000, 1024 * 1024, 256 * 1024,
                        ("-mcpu=cortex-m3", "-mfloat-abi=soft"), dsp=False),
}


def run_tool(cmd: list[str], what: str, cwd: Path | None = None, stdin: bytes | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    try:
        result = subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise TiermlError(f"{what}: '{cmd[0]}' is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise TiermlError(f"{what} did not finish in {timeout:.0f} s") from exc
    if result.returncode != 0:
        text = (result.stderr or result.stdout).decode(errors="replace").strip()
        raise TiermlError(f"{what} failed (exit {result.returncode}): {text[-2000:]}")
    return result


def write_sources(folder: Path, model_c: str, model_h: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.c").write_text(model_c)
    (folder / "model.h").write_text(model_h)


def build_host(folder: Path, sanitize: bool = False, extra: list[str] | None = None) -> Path:
    """Compile model.c with the host test driver; returns the executable."""
    compiler = os.environ.get("CC", "gcc")
    (folder / "host_main.c").write_text(kernel_source("host_main.c"))
    exe = folder / ("model_host_san" if sanitize else "model_host")
    flags = HOST_FLAGS + (SANITIZE if sanitize else []) + (extra or [])
    sources = [str(folder / "model.c"), str(folder / "host_main.c")]
    run_tool([compiler, *flags, "-I", str(folder), *sources, "-o", str(exe)], "host build of the generated C")
    return exe


def run_host(exe: Path, inputs: np.ndarray, output_size: int) -> np.ndarray:
    """Run int8 input rows through the host build; one output row each."""
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=0", "UBSAN_OPTIONS": "print_stacktrace=1"}
    try:
        result = subprocess.run([str(exe)], input=np.ascontiguousarray(inputs, np.int8).tobytes(),
                                capture_output=True, timeout=300, check=False, env=env)
    except subprocess.TimeoutExpired as exc:
        raise TiermlError("the host build of the generated C did not finish in 300 s") from exc
    if result.returncode != 0 or result.stderr:
        raise TiermlError(f"the host build of the generated C failed (exit {result.returncode}): "
                          f"{result.stderr.decode(errors='replace')[-2000:]}")
    return np.frombuffer(result.stdout, np.int8).reshape(len(inputs), output_size)


def arm_toolchain_missing() -> str:
    """Why the Cortex-M build cannot run here, or '' when it can."""
    missing = [t for t in ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm") if shutil.which(t) is None]
    if missing:
        return (f"{', '.join(missing)} not found: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                "qemu-system-arm")
    return ""


@dataclass
class ArmRun:
    """The Cortex-M build: its sizes, its outputs under QEMU, and the instructions one inference took."""

    outputs: np.ndarray
    text_bytes: int
    data_bytes: int
    bss_bytes: int
    instructions: int | None  # guest instructions in one model_invoke (None without the counting plugin)


def _verify_source(inputs: np.ndarray, output_size: int) -> str:
    rows = ",\n".join("{" + ", ".join(str(int(v)) for v in row) + "}" for row in inputs)
    return (f'#include "model.h"\n#define TML_COUNT {len(inputs)}\n'
            f"static const int8_t tml_inputs[TML_COUNT][MODEL_INPUT_SIZE] = {{\n{rows}\n}};\n"
            f"#define TML_OUTPUT_SIZE {output_size}\n")


def build_arm(folder: Path, board: Board, inputs: np.ndarray, output_size: int, dsp: bool,
              optimize: str = "-O2") -> Path:
    """Cross-build model.c + the board's start-up, linker script and a driver that prints every output."""
    if reason := arm_toolchain_missing():
        raise TiermlError(f"--board {board.name} needs the Arm toolchain and QEMU: {reason}")
    build = folder / f"{board.name}-{'dsp' if dsp else 'plain'}"
    build.mkdir(parents=True, exist_ok=True)
    (build / "startup.c").write_text(kernel_source("boards/startup.c"))
    (build / "arm_main.c").write_text(kernel_source("boards/arm_main.c"))
    (build / "verify_data.h").write_text(_verify_source(inputs, output_size))
    script = kernel_source("boards/mps2.ld")
    for key, value in {"FLASH_ORIGIN": board.flash_origin, "RAM_ORIGIN": board.ram_origin,
                       "FLASH_LENGTH": board.flash_bytes, "RAM_LENGTH": board.ram_bytes,
                       "STACK_SIZE": board.stack_bytes}.items():
        script = script.replace(f"@{key}@", hex(value))
    (build / "board.ld").write_text(script)
    elf = build / "model.elf"
    flags = [*board.cpu_flags, *C_FLAGS, optimize, *([] if dsp else ["-DTML_PLAIN_C"])]
    run_tool(["arm-none-eabi-gcc", *flags, "-I", str(folder), "-I", str(build), "--specs=nano.specs",
          "--specs=rdimon.specs", "-nostartfiles", "-T", str(build / "board.ld"), "-Wl,--gc-sections",
          f"-Wl,-Map={build / 'model.map'}", str(build / "startup.c"), str(build / "arm_main.c"),
          str(folder / "model.c"), "-o", str(elf)], f"Cortex-M4 build for {board.name}")
    return elf


def elf_sizes(elf: Path) -> tuple[int, int, int]:
    """text, data, bss of an ELF (arm-none-eabi-size, Berkeley format)."""
    out = run_tool(["arm-none-eabi-size", str(elf)], "arm-none-eabi-size").stdout.decode().splitlines()
    text, data, bss = (int(v) for v in out[1].split()[:3])
    return text, data, bss


def plugin_path(work: Path) -> Path | None:
    """The instruction-counting TCG plugin, compiled from C on first use (None when it cannot be built)."""
    target = work / "libtml_insn.so"
    if target.exists():
        return target
    source = work / "tml_insn.c"
    source.write_text(kernel_source("boards/tml_insn.c"))
    compiler = os.environ.get("CC", "gcc")
    result = subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(target), str(source)],
                            capture_output=True, check=False)
    return target if result.returncode == 0 else None


def run_arm(elf: Path, board: Board, output_size: int, count: int, plugin: Path | None) -> ArmRun:
    """Run the ELF under qemu-system-arm with semihosting; parse outputs and the instruction count."""
    symbols = run_tool(["arm-none-eabi-nm", str(elf)], "arm-none-eabi-nm").stdout.decode()
    cmd = ["qemu-system-arm", "-M", board.machine, "-nographic", "-semihosting", "-kernel", str(elf)]
    log = elf.with_suffix(".insn")
    if plugin is not None:
        begin = re.search(r"^([0-9a-f]+) T roi_begin$", symbols, re.M)
        end = re.search(r"^([0-9a-f]+) T roi_end$", symbols, re.M)
        if begin and end:
            log.unlink(missing_ok=True)
            cmd += ["-plugin", f"{plugin},on=0x{begin.group(1)},off=0x{end.group(1)}", "-d", "plugin",
                    "-D", str(log)]
    result = run_tool(cmd, f"QEMU run on {board.name}", timeout=600)
    lines = result.stdout.decode(errors="replace").splitlines()
    rows = [[int(v) for v in line.split()[1:]] for line in lines if line.startswith("out ")]
    if len(rows) != count or any(len(r) != output_size for r in rows):
        raise TiermlError(f"the QEMU run printed {len(rows)} output rows, expected {count}: "
                          f"{' '.join(lines[-5:])}")
    instructions = None
    if plugin is not None and log.exists():
        match = re.search(r"roi=(\d+)", log.read_text())
        instructions = int(match.group(1)) if match else None
    text, data, bss = elf_sizes(elf)
    return ArmRun(np.array(rows, np.int8), text, data, bss, instructions)
