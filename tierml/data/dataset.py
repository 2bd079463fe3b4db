"""Datasets for calibration, evaluation and training: .npz files with `x` (inputs) and optionally `y` (labels)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from tierml.errors import TiermlError
from tierml.model.tensors import TensorInfo


@dataclass
class Dataset:
    x: np.ndarray
    y: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return len(self.x)

    def head(self, count: int) -> Dataset:
        return Dataset(self.x[:count], None if self.y is None else self.y[:count], self.source)


def model_input(model: onnx.ModelProto, shapes: Mapping[str | None, tuple[int, ...]]) -> TensorInfo:
    """The one input the compression passes feed, with its sample shape; models they cannot feed are refused."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise TiermlError(f"tierml optimize/build feed models with exactly one input; this one has {len(inputs)} "
                          f"({', '.join(i.name for i in inputs)}): export a single-input wrapper")
    graph_input = inputs[0]
    declared = [d.dim_value if d.HasField("dim_value") else 0 for d in graph_input.type.tensor_type.shape.dim]
    if declared and declared[0] > 1:
        raise TiermlError(f"input '{graph_input.name}' has a fixed batch of {declared[0]}; calibration, evaluation "
                          "and timing run one sample at a time: export the model with batch 1 or a free batch dim")
    given = shapes.get(graph_input.name) or shapes.get(None)
    dims = tuple(given) if given else tuple(d or 1 for d in declared)
    return TensorInfo(name=graph_input.name, elem_type=graph_input.type.tensor_type.elem_type, shape=dims)


def load_dataset(path: Path, model_input: TensorInfo, role: str, need_labels: bool = False) -> Dataset:
    """Load and check a set against the model's input: sample shape and a floating or matching dtype."""
    try:
        data = np.load(path)
        x = data["x"]
        y = data["y"] if "y" in data.files else None
    except FileNotFoundError as exc:
        raise TiermlError(f"{role} set '{path}' not found") from exc
    except (OSError, ValueError, KeyError) as exc:
        raise TiermlError(f"{role} set '{path}' must be an .npz with an array 'x' (and 'y' for labels): {exc}") from exc
    expected = tuple(model_input.shape[1:])
    if tuple(x.shape[1:]) != expected:
        raise TiermlError(f"{role} set '{path.name}': x has samples of shape {tuple(x.shape[1:])} but model input "
                          f"'{model_input.name}' takes {expected} (x must be [n, {', '.join(map(str, expected))}])")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise TiermlError(f"{role} set '{path.name}': x has dtype {x.dtype}; input '{model_input.name}' takes "
                          f"{model_input.dtype} numbers")
    if need_labels and y is None:
        raise TiermlError(f"{role} set '{path.name}' has no labels 'y', but accuracy was asked for; add y or drop "
                          "requirements.min_accuracy to compare against the fp32 model instead")
    if y is not None and len(y) != len(x):
        raise TiermlError(f"{role} set '{path.name}': {len(x)} samples in x but {len(y)} labels in y")
    if y is not None:
        y = _class_indices(y, path.name, role)
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(model_input.elem_type))
    if np.issubdtype(dtype, np.integer) and np.issubdtype(x.dtype, np.floating) and not np.all(np.mod(x, 1) == 0):
        raise TiermlError(f"{role} set '{path.name}': x holds fractions but input '{model_input.name}' takes "
                          f"{dtype} integers (token ids?): save x as integers")
    return Dataset(x.astype(dtype, copy=False), y, str(path))


def _class_indices(y: np.ndarray, name: str, role: str) -> np.ndarray:
    """Labels as class indices: [n] or [n, 1] as they are, one-hot / probability rows [n, C] by argmax."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2:
        y = y.argmax(axis=1)
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or np.all(np.mod(y, 1) == 0)):
        raise TiermlError(f"{role} set '{name}': y must hold one class index per sample ([n] integers, or one-hot "
                          f"rows [n, classes]); got shape {y.shape}, dtype {y.dtype}")
    return y.astype(np.int64)


def load_samples(path: Path) -> np.ndarray:
    """Unlabelled model inputs from .npy or .npz (the array named x, or the only array), batch first, float32
    (what `tierml export` calibrates and verifies on)."""
    try:
        data = np.load(path)
    except (OSError, ValueError) as exc:
        raise TiermlError(f"cannot read inputs from {path}: {exc}") from exc
    if isinstance(data, np.lib.npyio.NpzFile):
        keys = list(data.keys())
        if "x" not in keys and len(keys) != 1:
            raise TiermlError(f"{path} holds arrays {keys}; name the model inputs 'x'")
        data = data["x" if "x" in keys else keys[0]]
    return np.asarray(data, np.float32)
