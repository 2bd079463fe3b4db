"""Estimates: a value, its unit, and how it was obtained; and the estimator interface.

`method` is one of
- measured:   timed on this host (tierml analyze --measure),
- calibrated: a model of this host fitted to measurements (tierml calibrate),
- catalogue:  computed from catalogue figures (peaks, bandwidths, power, prices).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal

from pydantic import BaseModel

from tierml.hardware.catalog import Device
from tierml.model.profile import ModelProfile

Method = Literal["measured", "calibrated", "catalogue"]
Precision = Literal["fp32", "int8"]
_RANK = {"measured": 0, "calibrated": 1, "catalogue": 2}


class Estimate(BaseModel):
    """A number that says how it was obtained."""

    value: float
    unit: str
    method: Method
    basis: str = ""

    def __str__(self) -> str:
        return f"{self.value:.4g} {self.unit} ({self.method})"


def weakest(*methods: Method) -> Method:
    """The least direct of several methods: a product is only as good as its weakest factor."""
    return max(methods, key=_RANK.__getitem__)


class NodeTime(BaseModel):
    node: str
    op_type: str
    seconds: float
    bound: Literal["compute", "memory", "overhead", "fused"]


class LatencyBreakdown(BaseModel):
    """Estimated latency of one inference and where the time goes."""

    total: Estimate
    nodes: list[NodeTime]


class LatencyEstimator(ABC):
    """A way to predict a model's latency on a device."""

    name: ClassVar[str]

    @abstractmethod
    def latency(self, profile: ModelProfile, device: Device, precision: Precision) -> LatencyBreakdown:
        """Latency of one inference of `profile` on `device` at `precision`."""
