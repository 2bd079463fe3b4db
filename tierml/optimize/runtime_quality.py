"""Quality on the devices whose runtime does not compute what ONNX Runtime computes (a microcontroller's int8 C).

Why measure it rather than carry a QDQ variant's scales into the C: an MCU runs int8 C in TFLite Micro's
scheme — per-channel symmetric int8 weights for convolutions but per-tensor for fully connected layers,
asymmetric int8 activations, int32 bias, softmax output fixed at (1/256, -128), pooling/reshape/concat sharing
their input's parameters, Q31 fixed-point requantization. ORT's QDQ is a family of options (uint8 or int8,
per-tensor or per-channel, symmetric activations, activations folded into a QuantizeLinear's range) that fits
that scheme only in part, and even with identical scales ORT's float requantization rounds differently. Reused
scales would still leave the reported figure ORT's, not the C's. So `build` runs the artifact's own arithmetic
on the same eval set and scores it with the same `quality` function: the figure is the C's by construction.
The runtimes come from the caller (the export targets, a later stage than this one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import onnx

from tierml.data.dataset import Dataset
from tierml.data.metrics import Quality, quality
from tierml.errors import TiermlError
from tierml.hardware.catalog import Device
from tierml.optimize.variant import Variant

# (model, calibration inputs, eval inputs) -> what the device computes for the eval inputs (first output, ONNX
# layout, batch first), or None when the device runs the model on ONNX Runtime after all
RuntimeOutputs = Callable[[onnx.ModelProto, np.ndarray, np.ndarray], np.ndarray | None]


def measure_on_runtimes(variants: Sequence[Variant], models: Sequence[onnx.ModelProto], devices: Sequence[Device],
                        runtimes: Mapping[str, RuntimeOutputs], calibration: Dataset, eval_set: Dataset,
                        reference: np.ndarray) -> tuple[list[Variant], list[str]]:
    """The variants with each device's figures carrying the quality its runtime measured (runtimes keyed by
    device tier), and notes saying which devices were measured that way."""
    result = list(variants)
    notes = []
    for tier, run in runtimes.items():
        names = {d.name: d for d in devices if d.tier == tier}
        if not names:
            continue
        for index, (variant, model) in enumerate(zip(result, models, strict=True)):
            if not any(variant.precision in d.precisions for d in names.values()):
                continue  # no device of this tier runs this precision: nothing to measure
            measured, refused = _measure(run, model, calibration, eval_set, reference, tier)
            if measured is None and not refused:
                continue
            figures = [f.model_copy(update={"quality": measured, "refused": refused}) if f.device in names else f
                       for f in variant.metrics.devices]
            result[index] = variant.model_copy(update={"metrics": variant.metrics.model_copy(
                update={"devices": figures})})
        notes.append(f"{tier} devices ({', '.join(names)}): quality measured on their runtime's own arithmetic "
                     "(for an MCU, the int8 C that `tierml export --target mcu` writes with the build's calibration "
                     "set, built and run on this host), not ONNX Runtime's")
    return result, notes


def _measure(run: RuntimeOutputs, model: onnx.ModelProto, calibration: Dataset, eval_set: Dataset,
             reference: np.ndarray, tier: str) -> tuple[Quality | None, str]:
    try:
        outputs = run(model, calibration.x, eval_set.x)
    except Exception as exc:  # a variant the runtime cannot take is rejected for its devices, not fatal
        reason = str(exc) if isinstance(exc, TiermlError) else f"{type(exc).__name__}: {str(exc)[:200]}"
        return None, f"the {tier} runtime cannot run it: {reason}"
    if outputs is None:
        return None, ""
    return quality(outputs, reference, eval_set.y), ""
