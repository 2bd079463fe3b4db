"""What every benchmark shares: machine description, results files, and the table printer.

Importing it puts the repository root on sys.path, so a benchmark run as `python benchmarks/<name>.py`
imports this checkout's tierml and the models and load generator in tests/support (import it first)."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import onnxruntime as ort
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tierml.hardware.calibrate import host_info  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
console = Console(width=160)


def machine() -> dict:
    info = host_info()
    return {"cpu": info.cpu, "logical_cores": info.logical_cores, "isa": info.isa, "onnxruntime": ort.__version__,
            "python": platform.python_version(), "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}


def write_results(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    record = {"benchmark": name, "command": " ".join(["python", *sys.argv]),
              "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), **payload}
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def print_table(title: str, header: list[str], rows: list[list[object]]) -> None:
    table = Table(title=title, title_justify="left")
    for col in header:
        table.add_column(col, justify="left" if col in (header[0], "kind", "input", "within ±20%") else "right")
    for row in rows:
        table.add_row(*[f"{v:,.4g}" if isinstance(v, float) else (f"{v:,}" if isinstance(v, int) else str(v))
                        for v in row])
    console.print(table)
