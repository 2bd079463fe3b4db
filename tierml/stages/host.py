"""This host as a stage input: its calibration (measured once, cached) and the catalogue with it as a device."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from tierml.hardware import calibrate as cal
from tierml.hardware.catalog import Catalog, load_catalog
from tierml.progress import Progress, silent

Notice = Callable[[str], None]  # a one-line message for the user (the CLI prints it on stderr)


def calibrate(threads: int = 1, quick: bool = False, out: Path | None = None,
              progress: Progress = silent) -> cal.Calibration:
    """Measure this host (matmul GFLOP/s, memory bandwidth, per-op-class efficiency) and save it to `out` (default:
    the cache, where every other verb finds it)."""
    result = cal.calibrate(threads, progress=progress, quick=quick)
    cal.save(result, out or cal.default_path(threads))
    return result


def host_calibration(given: Path | cal.Calibration | None = None, threads: int = 1, progress: Progress = silent,
                     notice: Notice | None = None) -> cal.Calibration:
    """The calibration to estimate with: the one given, else the cached one of this host, else a fresh one
    (about 30 s, then cached)."""
    if isinstance(given, cal.Calibration):
        return given
    if given is not None:
        return cal.load(given)
    default = cal.default_path(threads)
    if default.exists():
        stored = cal.load(default)
        if cal.matches_host(stored):
            return stored
    if notice:
        notice(f"no calibration of this host at {threads} thread(s) yet: calibrating (about 30 s), saving to "
               f"{default}")
    fresh = cal.calibrate(threads, progress=progress)
    cal.save(fresh, default)
    return fresh


def catalog_with_host(calibration: cal.Calibration, files: Sequence[Path] = ()) -> Catalog:
    """The device/link catalogue (built-in, then `files` in order) with this host added as device `host`."""
    host, source = cal.host_device(calibration)
    return load_catalog(list(files)).with_device(host, {"tierml-calibrate": source})
