"""The stage layer: every verb as a documented Python function taking typed inputs and returning the typed result
the CLI renders (`tierml.stages.plan("tierml.yaml")` is `tierml plan tierml.yaml` without the tables).

It knows files and the host (it loads specs, models, datasets, calibrations and catalogues) and hands plain data
to the stages below it: planning never opens a file or a session. Verbs are imported on first use, so `plan`
does not pull in what `split` needs (the serving extra).
"""

from __future__ import annotations

import importlib
from typing import Any

VERBS = {  # verb -> the module of this package that defines it
    "analyze": "models", "estimate": "estimating", "plan": "planning", "build": "building", "optimize": "building",
    "export": "exporting", "split": "splitting", "split_run": "splitting", "calibrate": "host",
    "publish": "registering",  # the other registry verbs stay in tierml.stages.registering (their names are generic)
}
__all__ = sorted(VERBS)


def __getattr__(name: str) -> Any:
    if name not in VERBS:
        raise AttributeError(f"module 'tierml.stages' has no attribute '{name}'")
    return getattr(importlib.import_module(f"tierml.stages.{VERBS[name]}"), name)
