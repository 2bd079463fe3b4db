"""Run a model over a dataset and score its outputs: the one place every verb measures quality."""

from __future__ import annotations

import numpy as np
import onnx

from tierml.data.dataset import Dataset
from tierml.data.metrics import Quality, quality
from tierml.model.session import make_session


def run(model: onnx.ModelProto, x: np.ndarray, threads: int = 1, batch: int = 32) -> np.ndarray:
    """The model's first output for every row of x (in batches when the batch dim is free, else padded batches)."""
    session = make_session(model, threads)
    meta = session.get_inputs()[0]
    fixed = isinstance(meta.shape[0], int) and meta.shape[0] > 0
    step = meta.shape[0] if fixed else batch
    outputs = []
    for start in range(0, len(x), step):
        chunk = x[start:start + step]
        if len(chunk) < step and fixed:
            pad = np.zeros((step - len(chunk), *chunk.shape[1:]), chunk.dtype)
            outputs.append(session.run(None, {meta.name: np.concatenate([chunk, pad])})[0][: len(chunk)])
        else:
            outputs.append(session.run(None, {meta.name: chunk})[0])
    return np.concatenate(outputs)


def score(model: onnx.ModelProto, dataset: Dataset, reference: np.ndarray | None = None,
          threads: int = 1) -> tuple[Quality, np.ndarray]:
    """The model's quality on the dataset (accuracy with labels, else agreement with `reference`) and its outputs."""
    outputs = run(model, dataset.x, threads)
    return quality(outputs, outputs if reference is None else reference, dataset.y), outputs
