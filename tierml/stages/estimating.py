"""The `estimate` verb: fit, latency and energy of a model on each device, and each link's round trip."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tierml.errors import TiermlError
from tierml.hardware.assessment import ModelEstimate, assess
from tierml.hardware.calibrate import Calibration
from tierml.hardware.catalog import load_catalog
from tierml.hardware.roofline import RooflineEstimator
from tierml.progress import Progress, silent
from tierml.stages.host import Notice, catalog_with_host, host_calibration
from tierml.stages.models import InputShapes, measure, profiled


def estimate(model: str, input_shapes: InputShapes = None, devices: Sequence[str] = (), links: Sequence[str] = (),
             precision: str = "auto", catalogs: Sequence[Path] = (), calibration: Path | Calibration | None = None,
             threads: int = 1, measure_latency: bool = False, progress: Progress = silent,
             notice: Notice | None = None) -> ModelEstimate:
    """For every device (default: this host and the whole catalogue): fits, latency, energy, each labelled
    measured / calibrated / catalogue; for every link (default: all): round trip with the input, energy, cost."""
    if precision not in ("auto", "fp32", "int8"):
        raise TiermlError(f"--precision must be auto, fp32 or int8, not '{precision}'")
    known = load_catalog(list(catalogs))
    for name in devices:
        if name != "host":
            known.device(name)  # unknown names fail before any slow work
    for name in links:
        known.link(name)
    loaded, profile = profiled(model, input_shapes)
    cal = host_calibration(calibration, threads, progress, notice)
    catalog = catalog_with_host(cal, catalogs)
    names = list(devices) or ["host", *[d for d in catalog.devices if d != "host"]]
    stats = measure(loaded, profile, threads, 30, False, progress) if measure_latency else None
    return assess(profile, catalog, RooflineEstimator(cal), names, list(links), precision, cal.describe(), stats)
