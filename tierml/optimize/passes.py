"""The Pass interface: one optimization step with a declared config and `run(model) -> model`.

A pass registers itself by `name`; `tierml optimize --pass NAME[:key=value,...]` finds it there.
Passes compose: each takes the ModelState the previous one returned, and every pass it applies is
recorded in the result's lineage.
"""

from __future__ import annotations

import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import onnx
from pydantic import BaseModel, ConfigDict, ValidationError

from tierml.data.dataset import Dataset
from tierml.errors import TiermlError, did_you_mean
from tierml.progress import Progress


class PassConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PassRecord(BaseModel):
    """One applied pass, as the lineage keeps it."""

    name: str
    config: dict[str, Any]
    seconds: float
    notes: list[str] = []


@dataclass
class TorchModel:
    """A PyTorch module that computes the same function as the ONNX model (for training-based passes)."""

    module: Any  # torch.nn.Module
    input_shape: tuple[int, ...]
    input_name: str
    output_names: tuple[str, ...] = ()  # the parent ONNX model's: a variant is a drop-in replacement


@dataclass
class ModelState:
    """What flows between passes."""

    proto: onnx.ModelProto
    precision: str = "fp32"  # fp32 | fp16 | int8 | mixed
    torch: TorchModel | None = None
    history: list[PassRecord] = field(default_factory=list)


@dataclass
class Workspace:
    """What passes may use: data, threads, a progress callback and the reference outputs."""

    calibration: Dataset | None = None
    eval: Dataset | None = None
    train: Dataset | None = None
    threads: int = 1
    progress: Progress | None = None
    min_quality: float | None = None  # accuracy (with labels) or agreement (without) a result must keep
    estimator: Any = None  # a tierml.hardware LatencyEstimator, for passes that search under device budgets
    catalog: Any = None  # a tierml.hardware Catalog
    _scratch: tempfile.TemporaryDirectory | None = None

    def scratch(self) -> Path:
        """A folder for caches that live as long as the workspace (calibration ranges)."""
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="tierml-optimize-")
        return Path(self._scratch.name)

    def report(self, stage: str, done: int, total: int) -> None:
        if self.progress:
            self.progress(stage, done, total)

    def require(self, name: str, dataset: Dataset | None, what: str) -> Dataset:
        if dataset is None:
            raise TiermlError(f"pass '{name}' needs {what}; give it in the spec's data section or with the "
                              f"matching --{what.split()[0]} option")
        return dataset


class Pass(ABC):
    """One optimization step. Subclasses set `name` and `Config` and implement `apply`."""

    name: ClassVar[str]
    Config: ClassVar[type[PassConfig]] = PassConfig
    registry: ClassVar[dict[str, type[Pass]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            Pass.registry[cls.name] = cls

    def __init__(self, config: PassConfig | dict[str, Any] | None = None) -> None:
        try:
            self.config = config if isinstance(config, PassConfig) else self.Config.model_validate(config or {})
        except ValidationError as exc:
            error = exc.errors()[0]
            field_name = ".".join(str(p) for p in error["loc"]) or "config"
            raise TiermlError(f"pass '{self.name}': {field_name}: {error['msg']}") from exc

    def run(self, state: ModelState, workspace: Workspace) -> ModelState:
        """Apply the pass and record it in the lineage."""
        started = time.perf_counter()
        result, notes = self.apply(state, workspace)
        record = PassRecord(name=self.name, config=self.config.model_dump(), seconds=time.perf_counter() - started,
                            notes=notes)
        result.history = [*state.history, record]
        return result

    @abstractmethod
    def apply(self, state: ModelState, workspace: Workspace) -> tuple[ModelState, list[str]]:
        """The new state and notes worth keeping in the lineage."""


def parse_pass(text: str) -> Pass:
    """`quantize-static:per_channel=true,activation_type=uint8` -> a configured pass."""
    name, _, options = text.partition(":")
    if name not in Pass.registry:
        raise TiermlError(f"unknown pass '{name}'; {did_you_mean(name, Pass.registry)}known passes: "
                          f"{', '.join(sorted(Pass.registry))}")
    config: dict[str, Any] = {}
    for item in filter(None, options.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise TiermlError(f"bad option '{item}' for pass '{name}': write key=value, e.g. {name}:per_channel=true")
        config[key.strip()] = _value(value.strip())
    return Pass.registry[name](config)


def _value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return [_value(v) for v in text.split("+")] if "+" in text else text
