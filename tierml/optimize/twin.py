"""The PyTorch twin of an ONNX model: the same network as a torch module with weights, checked to agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx

from tierml.data.scoring import run
from tierml.errors import TiermlError
from tierml.model.load import call_recipe, from_torch
from tierml.optimize.passes import TorchModel
from tierml.optimize.training import predict, require_torch


def load_twin(recipe: str, weights: str | None, onnx_model: onnx.ModelProto, sample: np.ndarray) -> TorchModel:
    """Build the module from `file.py:factory`, load its state_dict, and require it to match the ONNX model."""
    torch = require_torch()
    input_name = onnx_model.graph.input[0].name
    shape = (1, *sample.shape[1:])
    module = load_model_module(recipe)
    if weights:
        try:
            module.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        except Exception as exc:
            first = str(exc).splitlines()[0][:200]
            raise TiermlError(f"weights '{weights}' do not load into {recipe}: {first}") from exc
    twin = TorchModel(module.eval(), shape, input_name, tuple(o.name for o in onnx_model.graph.output))
    expected = run(onnx_model, sample)
    got = predict(twin.module, sample)
    if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-3, rtol=1e-3):
        worst = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
        raise TiermlError(f"the PyTorch model {recipe} (weights {weights}) does not compute what the ONNX model "
                          f"does (largest difference {worst:.3g}); give the matching weights")
    return twin


def load_model_module(recipe: str) -> Any:
    """The torch.nn.Module a `file.py:factory` recipe builds."""
    torch = require_torch()
    head, _, factory = recipe.rpartition(":")
    module = call_recipe(Path(head), factory)
    if not isinstance(module, torch.nn.Module):
        raise TiermlError(f"'{recipe}' must return a torch.nn.Module for training-based passes")
    return module


def export(twin: TorchModel) -> onnx.ModelProto:
    """ONNX of the twin's current module, with a free batch dimension and the parent's output names
    (clients of the served model ask for outputs by name)."""
    model = from_torch(twin.module, {twin.input_name: twin.input_shape}, dynamic_batch=True)
    if len(twin.output_names) == len(model.graph.output):
        rename = {o.name: new for o, new in zip(model.graph.output, twin.output_names, strict=True) if o.name != new}
        for node in model.graph.node:
            node.output[:] = [rename.get(name, name) for name in node.output]
            node.input[:] = [rename.get(name, name) for name in node.input]
        for output in model.graph.output:
            output.name = rename.get(output.name, output.name)
    return model
