"""The bundled examples, copied into a test's folder and set up to build fast."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import ROOT

DIGITS_APP = ROOT / "examples" / "digits"


def quick_spec(folder: Path, torch: bool = True, **build: Any) -> Path:
    """A copy of the digits example whose spec has `build` as its build section (few epochs, chosen targets...);
    without `torch` the build makes only the fp32, fp16 and int8 variants (no pruning or distillation): seconds."""
    copy = folder / "digits"
    shutil.copytree(DIGITS_APP, copy, ignore=shutil.ignore_patterns("__pycache__"))
    spec = yaml.safe_load((copy / "tierml.yaml").read_text())
    spec["build"] = build
    if not torch:
        del spec["model"]["torch"], spec["model"]["weights"]
    (copy / "tierml.yaml").write_text(yaml.safe_dump(spec))
    return copy / "tierml.yaml"
