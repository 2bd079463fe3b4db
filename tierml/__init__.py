"""tierml: place one trained model on the cloud-edge-mobile-tiny spectrum, measured.

Every verb of the `tierml` command is a function here, taking what the command takes and returning the typed
result it renders::

    import tierml
    plan = tierml.plan("examples/digits/tierml.yaml")
    print(plan.winner)
"""

from __future__ import annotations

import importlib
import types
from typing import Any

from tierml.stages import VERBS

__version__ = "0.1.0"
__all__ = ["__version__", *sorted(VERBS)]


class _StagePackage(types.ModuleType):
    """A stage package that is also its verb: `tierml.plan(spec)` plans, while `tierml.plan.planner` stays the
    planner's module (so dotted paths, pickling and monkeypatching keep working)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module("tierml.stages"), self.__name__.rpartition(".")[2])(*args, **kwargs)


for _name in ("plan", "optimize", "export"):  # the verbs that share their name with a package (their __init__ is empty)
    importlib.import_module(f"{__name__}.{_name}").__class__ = _StagePackage


def __getattr__(name: str) -> Any:
    if name in VERBS:
        return getattr(importlib.import_module("tierml.stages"), name)
    raise AttributeError(f"module 'tierml' has no attribute '{name}'")
