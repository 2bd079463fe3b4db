"""Tests depend on tierml and tests/support only: nothing under tests/ imports the benchmarks."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.paths import ROOT

# `benchmarks` itself, and every module in it (reachable as a bare name once benchmarks/ is on sys.path).
BENCHMARK_MODULES = {"benchmarks"} | {p.stem for p in (ROOT / "benchmarks").rglob("*.py")}


def benchmark_imports(path: Path) -> list[str]:
    """`file:line module` for each import in a Python file whose top-level module is one of BENCHMARK_MODULES."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{path}:{node.lineno} {name}" for name in names if name.split(".")[0] in BENCHMARK_MODULES]
    return found


def test_no_test_file_imports_the_benchmarks():
    offenders = [hit for path in sorted((ROOT / "tests").rglob("*.py")) for hit in benchmark_imports(path)]
    assert not offenders, "move what tests need into tests/support/:\n" + "\n".join(offenders)


def test_the_scan_sees_both_ways_of_importing_a_benchmark(tmp_path):
    source = tmp_path / "test_x.py"
    source.write_text("import json\nimport benchmarks.common\n\ndef f():\n    from common import write_results\n")
    assert benchmark_imports(source) == [f"{source}:2 benchmarks.common", f"{source}:5 common"]
