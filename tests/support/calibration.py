"""A synthetic host calibration, so estimates in unit tests do not depend on the machine."""

from __future__ import annotations

from tierml.hardware.calibrate import Calibration, HostInfo, Sample

CLASSES = ["conv", "conv_pointwise", "conv_depthwise", "conv_transpose", "matmul", "elementwise", "reduce",
           "normalize", "movement", "resize", "recurrent"]


def calibration(efficiency: float = 1.0, session_us: float = 0.0, node_us: float = 0.0) -> Calibration:
    """A synthetic calibration (unit tests only): the same efficiency for every class and size."""
    samples = [Sample(op_class=c, case=f"{c}-{i}", flops=10**i, bytes=10**i, seconds=1.0, efficiency=efficiency)
               for c in CLASSES for i in range(2, 9)]
    return Calibration(created="2026-11-22T00:00:00+00:00", threads=1,
                       host=HostInfo(cpu="test cpu", logical_cores=2, isa=[], onnxruntime="x", python="3"),
                       matmul_gflops=100.0, memory_gbps=20.0, bandwidth_sweep={}, session_overhead_us=session_us,
                       node_overhead_us=node_us, samples=samples, seconds_taken=0.0)
