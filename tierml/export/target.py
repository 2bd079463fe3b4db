"""The export `Target` interface: one file per target, found by name."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import onnx
from pydantic import BaseModel

from tierml.errors import TiermlError, did_you_mean
from tierml.model.profile import ModelProfile

KNOWN = ("mcu",)  # modules tierml.export.<name> that define a Target


class Target(ABC):
    """Turns a profiled ONNX model into deployable artifacts in a folder and describes what it wrote."""

    name: ClassVar[str]

    @abstractmethod
    def export(self, model: onnx.ModelProto, profile: ModelProfile, out_dir: Path) -> BaseModel:
        """Write the artifacts into `out_dir`; return the report (sizes, fit, files)."""


def target_class(name: str) -> type[Target]:
    """The Target class named `name` (module tierml.export.<name>)."""
    if name not in KNOWN:
        raise TiermlError(f"unknown export target '{name}'; {did_you_mean(name, KNOWN)}known: {', '.join(KNOWN)}")
    module = importlib.import_module(f"tierml.export.{name}")
    return next(obj for obj in vars(module).values()
                if isinstance(obj, type) and issubclass(obj, Target) and obj is not Target and obj.name == name)
