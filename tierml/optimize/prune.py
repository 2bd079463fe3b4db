"""Pruning of the PyTorch twin, then fine-tuning.

structured: whole filters/channels removed (Torch-Pruning's dependency graph keeps residual and
concatenated channels consistent), so the network is really smaller and faster in any runtime.
magnitude: individual weights zeroed (torch.nn.utils.prune); the ONNX file keeps dense tensors, so
ONNX Runtime's CPU kernels run it at the same size and speed — it pays off only in runtimes with sparse
kernels or under compression of the stored file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from tierml.errors import TiermlError
from tierml.optimize.passes import ModelState, Pass, PassConfig, TorchModel, Workspace
from tierml.optimize.training import predict, require_torch, train
from tierml.optimize.twin import export


class PruneConfig(PassConfig):
    ratio: float = 0.5  # share of channels (structured) or weights (magnitude) removed
    norm: Literal[1, 2] = 1  # which magnitude ranks filters
    epochs: int = 30  # fine-tuning
    lr: float = 3e-3
    distill: float = 0.5  # weight of the parent's softened outputs in the fine-tuning loss (the rest: labels)


def _twin(state: ModelState, name: str) -> TorchModel:
    if state.torch is None:
        raise TiermlError(f"pass '{name}' needs the PyTorch model: set model.torch (file.py:factory) and "
                          "model.weights in tierml.yaml")
    return state.torch


def _prune(state: ModelState, workspace: Workspace, name: str, config: PruneConfig,
           cut: Callable[[Any, Any], list[str]], finish: Callable[[], None] | None = None
           ) -> tuple[ModelState, list[str]]:
    """Copy the twin, let `cut(module, torch)` remove what it removes (returning notes), recover accuracy
    from the labels and the unpruned parent's softened outputs (distillation), `finish()`, export."""
    import copy

    torch = require_torch()
    twin = _twin(state, name)
    module = copy.deepcopy(twin.module).eval()
    notes = cut(module, torch)
    pruned = TorchModel(module, twin.input_shape, twin.input_name, twin.output_names)
    data = workspace.require(name, workspace.train, "training data")
    teacher = predict(twin.module, data.x) if config.distill > 0 or data.y is None else None
    train(module, data, config.epochs, config.lr, teacher=teacher, alpha=config.distill)
    if finish is not None:
        finish()
    return ModelState(export(pruned), "fp32", pruned), notes


class StructuredPrune(Pass):
    name = "prune-structured"
    Config = PruneConfig

    def apply(self, state: ModelState, workspace: Workspace) -> tuple[ModelState, list[str]]:
        config: PruneConfig = self.config  # type: ignore[assignment]

        def cut(module: Any, torch: Any) -> list[str]:
            import torch_pruning as tp

            example = torch.zeros(_twin(state, self.name).input_shape)
            before, _ = tp.utils.count_ops_and_params(module, example)
            last = [m for m in module.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)][-1:]
            tp.pruner.MagnitudePruner(module, example, importance=tp.importance.MagnitudeImportance(p=config.norm),
                                      pruning_ratio=config.ratio, ignored_layers=last).step()  # output layer whole
            after, _ = tp.utils.count_ops_and_params(module, example)
            return [f"{config.ratio:.0%} of channels removed: {before:,.0f} -> {after:,.0f} MACs "
                    f"({1 - after / before:.0%} fewer), then {config.epochs} epochs of fine-tuning"]

        return _prune(state, workspace, self.name, config, cut)


class MagnitudePrune(Pass):
    name = "prune-magnitude"
    Config = PruneConfig

    def apply(self, state: ModelState, workspace: Workspace) -> tuple[ModelState, list[str]]:
        config: PruneConfig = self.config  # type: ignore[assignment]
        layers: list[tuple[Any, str]] = []

        def cut(module: Any, torch: Any) -> list[str]:
            import torch.nn.utils.prune

            layers.extend((m, "weight") for m in module.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d))
            torch.nn.utils.prune.global_unstructured(layers, pruning_method=torch.nn.utils.prune.L1Unstructured,
                                                     amount=config.ratio)
            return [f"{config.ratio:.0%} of weights zeroed; ONNX Runtime's CPU kernels do not skip zeros, so size "
                    "and speed are unchanged (the stored file compresses better)"]

        def bake() -> None:  # the masks become plain zeros in the weights
            import torch.nn.utils.prune

            for layer, attribute in layers:
                torch.nn.utils.prune.remove(layer, attribute)

        return _prune(state, workspace, self.name, config, cut, bake)
