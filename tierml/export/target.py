"""The export `Target` interface: one class per target, registered by name when it is defined.

A target declares the runtime it exports for as class data — the device tier it serves and the ops that
runtime runs, folds away, and what to use instead of the rest (from that runtime's table in
`tierml.model.runtimes`, which `tierml analyze` reads too) — and implements `export`, and `outputs` when what it
writes does not compute what ONNX Runtime computes (so `tierml build` measures the quality those devices get).
Defining the class in a module of this package is all it takes to add one: `target_class` finds it there.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnx
from pydantic import BaseModel

from tierml.errors import TiermlError, did_you_mean
from tierml.model.profile import ModelProfile
from tierml.optimize.runtime_quality import RuntimeOutputs

_DECLARED = ("tier", "supported_ops", "folded_ops", "alternatives")


class Target(ABC):
    """Turns a profiled ONNX model into deployable artifacts for one runtime, in a folder, and reports what it wrote."""

    name: ClassVar[str]  # `tierml export --target NAME`
    tier: ClassVar[str]  # the catalogue tier whose devices run what it writes: mcu | mobile | browser | ...
    supported_ops: ClassVar[frozenset[str]]  # ops its runtime runs (`op_key` names: `Conv`, `com.microsoft:Gelu`)
    folded_ops: ClassVar[frozenset[str]]  # ops it removes at export (into weights, views, the int8 boundary)
    alternatives: ClassVar[Mapping[str, str]]  # op it cannot run -> what to use instead, for error messages
    registry: ClassVar[dict[str, type[Target]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            return
        missing = [a for a in _DECLARED if not hasattr(cls, a)]
        if missing:
            raise TypeError(f"export target '{cls.name}' ({cls.__qualname__}) must declare {', '.join(missing)} "
                            "as class data (see tierml.export.target.Target)")
        Target.registry[cls.name] = cls

    @abstractmethod
    def export(self, model: onnx.ModelProto, profile: ModelProfile, out_dir: Path) -> BaseModel:
        """Write the artifacts into `out_dir`; return the report (sizes, fit, files)."""

    @classmethod
    def outputs(cls, model: onnx.ModelProto, calibration: np.ndarray, x: np.ndarray) -> np.ndarray | None:
        """What the exported artifact computes for inputs `x` (its first output, ONNX layout, batch first) when that
        is not what ONNX Runtime computes for `model`; None (the default) when the artifact runs on ONNX Runtime."""
        return None


def targets() -> dict[str, type[Target]]:
    """Every export target, by name (each module of this package is imported so its targets register)."""
    package = importlib.import_module("tierml.export")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    return dict(Target.registry)


def target_class(name: str) -> type[Target]:
    """The Target class registered as `name`."""
    known = targets()
    if name not in known:
        raise TiermlError(f"unknown export target '{name}'; {did_you_mean(name, known)}known: "
                          f"{', '.join(sorted(known))}")
    return known[name]


def device_runtimes() -> dict[str, RuntimeOutputs]:
    """Each target's `outputs`, by the device tier it serves: how `tierml build` measures the quality those devices
    get (`tierml.optimize.runtime_quality`)."""
    return {cls.tier: cls.outputs for cls in targets().values()}
