"""Per-node roofline latency scaled by efficiencies calibrated on this host.

For a node with F FLOPs moving B bytes on a device with peak P and bandwidth W, the roofline time
is max(F / P, B / W). Real kernels reach only a fraction of it, and the fraction depends on the
kind of op and its size: a 3x3 convolution with 128 channels runs near the matmul peak, a
depthwise one or a 1,000-element Add is bound by memory and per-call cost. `tierml calibrate`
measures that fraction (the efficiency) for a suite of op classes and sizes on this host; here
each node takes the efficiency of its nearest calibrated neighbours of the same class (distance in
log FLOPs and log bytes). Time = per-node overhead + roofline / efficiency.

On this host the peaks are the measured ones and the result is `calibrated`. On a catalogue
device the peaks come from the catalogue, the efficiency is the host's times the device's
catalogue `efficiency` factor, and the result is `catalogue`.
"""

from __future__ import annotations

import math

import numpy as np

from tierml.errors import TiermlError
from tierml.hardware.calibrate import Calibration
from tierml.hardware.catalog import Device
from tierml.hardware.estimate import Estimate, LatencyBreakdown, LatencyEstimator, NodeTime, Precision
from tierml.model.fusion import runtime_fusions
from tierml.model.profile import ModelProfile, NodeProfile

HOST = "host"
_OVERHEAD_ONLY = frozenset({"view", "shape"})
_FALLBACK_CLASS = {"conv_narrow": "conv", "conv": "conv_pointwise", "conv_transpose": "conv", "recurrent": "matmul",
                   "resize": "movement", "control": "elementwise", "reorder": "movement"}
_OP_MISMATCH = 0.5  # distance added to a sample of another op type (in decades of size)
_NEIGHBOURS = 3


class RooflineEstimator(LatencyEstimator):
    """Calibrated per-node roofline (see the module docstring)."""

    name = "roofline"

    def __init__(self, calibration: Calibration) -> None:
        self.calibration = calibration
        self._classes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        by_class: dict[str, list] = {}
        for s in calibration.samples:
            by_class.setdefault(s.op_class, []).append(
                (math.log10(s.flops + 1), math.log10(s.bytes + 1), math.log(max(s.efficiency, 1e-6)), s.op_type))
        for op_class, rows in by_class.items():
            data = np.array([r[:3] for r in rows])
            self._classes[op_class] = (data[:, :2], data[:, 2], np.array([r[3] for r in rows]))

    def efficiency(self, node: NodeProfile) -> float:
        """Interpolated efficiency of this node's class at its size (inverse-distance weighted, log space)."""
        return self.class_efficiency(node.op_class, node.flops, node.bytes_moved, node.op_type)

    def class_efficiency(self, op_class: str, flops: int, moved: int, op_type: str = "") -> float:
        while op_class not in self._classes and op_class in _FALLBACK_CLASS:
            op_class = _FALLBACK_CLASS[op_class]
        if op_class not in self._classes:
            op_class = "elementwise" if "elementwise" in self._classes else next(iter(self._classes))
        features, log_eff, op_types = self._classes[op_class]
        query = np.array([math.log10(flops + 1), math.log10(moved + 1)])
        distance = np.linalg.norm(features - query, axis=1) + _OP_MISMATCH * (op_types != op_type)
        nearest = np.argsort(distance)[:_NEIGHBOURS]
        weights = 1.0 / (distance[nearest] + 0.05)
        return float(np.exp(np.sum(weights * log_eff[nearest]) / np.sum(weights)))

    def peaks(self, device: Device, precision: Precision) -> tuple[float, float, float, float, float]:
        """(FLOP/s, bytes/s, efficiency factor, per-node and per-request overhead seconds) for one unit."""
        node = (device.node_overhead_us.value if device.node_overhead_us else self.calibration.node_overhead_us) * 1e-6
        request = (device.request_overhead_us.value if device.request_overhead_us
                   else self.calibration.session_overhead_us) * 1e-6
        if device.name == HOST:
            return (self.calibration.matmul_gflops * 1e9, self.calibration.memory_gbps * 1e9, 1.0, node, request)
        factor = device.efficiency.value if device.efficiency else 1.0
        flops = device.peak_flops(precision)
        if not flops and precision == "fp32":
            raise TiermlError(f"{device.name} has no fp32 compute (int8 only); estimate it with --precision int8 "
                              "or auto")
        return flops or device.peak_flops("fp32"), device.bandwidth, factor, node, request

    def latency(self, profile: ModelProfile, device: Device, precision: Precision = "fp32") -> LatencyBreakdown:
        peak, bandwidth, factor, overhead, request = self.peaks(device, precision)
        fused = runtime_fusions(profile)
        on_host = device.name == HOST
        times = []
        for node in profile.nodes:
            if node.folded:
                continue
            if node.name in fused:
                times.append(NodeTime(node=node.name, op_type=node.op_type, seconds=0.0, bound="fused"))
                continue
            if node.op_class in _OVERHEAD_ONLY:
                times.append(NodeTime(node=node.name, op_type=node.op_type, seconds=overhead, bound="overhead"))
                continue
            compute = node.flops / peak
            memory = (node.int8_bytes_moved if precision == "int8" else node.bytes_moved) / bandwidth
            efficiency = self.efficiency(node)
            seconds = overhead + max(compute, memory) / (efficiency * factor)
            bound = "compute" if compute >= memory else "memory"
            times.append(NodeTime(node=node.name, op_type=node.op_type, seconds=seconds, bound=bound))
        # ORT's layout conversions belong to the host runtime the profile was taken with.
        reorders = profile.runtime_reorders if on_host else []
        for r in reorders:
            moved = 2 * r.bytes
            seconds = overhead + moved / bandwidth / self.class_efficiency("reorder", 0, moved)
            times.append(NodeTime(node=f"{r.direction} layout conversion of {r.tensor}",
                                  op_type="ReorderInput" if r.direction == "input" else "ReorderOutput",
                                  seconds=seconds, bound="memory"))
        total = request + sum(t.seconds for t in times)
        basis = (f"per-node roofline over {len(times) - len(reorders)} nodes ({len(fused)} fused by the runtime, "
                 f"{len(reorders)} layout conversions), efficiencies "
                 f"{self.calibration.describe()}")
        if not on_host:
            basis += (f"; catalogue peaks of {device.name} ({peak / 1e9:.4g} G{'FLOP' if precision == 'fp32' else 'OP'}"
                      f"/s, {bandwidth / 1e9:.4g} GB/s) x efficiency factor {factor:g}")
        return LatencyBreakdown(
            total=Estimate(value=total * 1e3, unit="ms", method="calibrated" if on_host else "catalogue", basis=basis),
            nodes=times,
        )
