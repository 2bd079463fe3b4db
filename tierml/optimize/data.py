"""Datasets for calibration, evaluation and training: .npz files with `x` (inputs) and optionally `y` (labels)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    dtype = np.dtype(np.float32) if model_input.dtype == "float" else x.dtype
    return Dataset(x.astype(dtype, copy=False), y, str(path))
