"""The `split` verb: every valid cut of a model between a device and a server ranked for a link (optionally
written as a bundle of device heads and server tails), and `split run`, the device side of a written bundle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from tierml.errors import TiermlError
from tierml.hardware.calibrate import Calibration
from tierml.hardware.catalog import load_catalog
from tierml.hardware.roofline import RooflineEstimator
from tierml.hybrid.bundle import load_bundle, write_bundle
from tierml.hybrid.encoding import Encoding
from tierml.hybrid.planner import SplitPlan, link_state, plan_split, side_for
from tierml.hybrid.runtime import SplitRuntime
from tierml.model.shapes import dummy_inputs, resolve_input_shapes
from tierml.stages.host import Notice, host_calibration
from tierml.stages.models import InputShapes, load

DEFAULT_ENCODINGS = ("fp32", "fp32+lz4", "fp16", "fp16+lz4")


@dataclass
class SplitResult:
    """`tierml split`: the ranked cuts of the model loaded from `source`."""

    source: str
    plan: SplitPlan


def split(model: str | Path, device: str = "host", server: str = "host", link: str = "dads-4g",
          input_shapes: InputShapes = None, encodings: Sequence[str] = DEFAULT_ENCODINGS, device_factor: float = 1.0,
          objective: str = "latency", out: Path | None = None, catalogs: Sequence[Path] = (),
          calibration: Path | Calibration | None = None, notice: Notice | None = None) -> SplitResult:
    """Rank the cuts of `model` between `device` and `server` (`host` is measured here, catalogue devices are
    estimated) over a catalogue `link`; with `out`, write the bundle `split run` and `tierml serve` use."""
    for code in encodings:
        try:
            Encoding.parse(code)
        except ValueError as exc:
            raise TiermlError(f"--encodings: {exc}") from None
    if objective not in ("latency", "throughput"):
        raise TiermlError(f"--objective must be latency or throughput, not '{objective}'")
    catalog = load_catalog(list(catalogs))
    chosen = catalog.link(link)
    estimator = None
    if device != "host" or server != "host":
        for name in (device, server):
            if name != "host":
                catalog.device(name)
        estimator = RooflineEstimator(host_calibration(calibration, 1, notice=notice))
    loaded, shapes = load(str(model), input_shapes)
    result = plan_split(loaded.proto, shapes, side_for(device, device_factor, catalog.devices, estimator),
                        side_for(server, 1.0, catalog.devices, estimator), link_state(chosen), list(encodings),
                        objective=objective)
    if out is not None:
        write_bundle(out, Path(loaded.source).stem, result.graph, result.profiles, result.table, list(encodings))
    return SplitResult(loaded.source, result)


def split_run(bundle: Path, server_url: str, requests: int = 20, deadline_ms: float | None = None,
              device_factor: float = 1.0) -> dict[str, Any]:
    """Run the device side of a written bundle against the server hosting its tails: `requests` requests with
    bandwidth/RTT estimation, cut switching and local fallback; latency figures and each request's summary."""
    if not (bundle / "split.json").exists():
        raise TiermlError("split run needs the bundle folder: tierml split MODEL --out DIR, then "
                          "tierml serve DIR/server and tierml split run DIR --server http://HOST:PORT")
    if "://" not in server_url:
        raise TiermlError(f"split run: --server is the URL of the tierml server hosting the tails, not '{server_url}'")
    loaded = load_bundle(bundle)
    feeds = dummy_inputs(resolve_input_shapes(onnx.load(bundle / "device" / "full.onnx")))
    with SplitRuntime(loaded, server_url, deadline_ms=deadline_ms, device_factor=device_factor) as runtime:
        results = [runtime.infer(feeds).summary() for _ in range(requests)]
        switches = runtime.policy.switches
    latencies = [r["latency_ms"] for r in results]
    return {"requests": requests, "degraded": sum(r["degraded"] for r in results),
            "median_ms": float(np.median(latencies)), "p95_ms": float(np.percentile(latencies, 95)),
            "switches": switches, "results": results}
