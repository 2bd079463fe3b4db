"""How close a variant's outputs are to the reference: task accuracy with labels, agreement without."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel


class Quality(BaseModel):
    """`value` is accuracy (labels given) or agreement with the fp32 parent (top-1 or cosine)."""

    metric: str  # "accuracy" | "top-1 agreement" | "cosine"
    value: float
    samples: int


def is_scores(shape: Sequence[int]) -> bool:
    """Class scores: [N, C] or [N, T, C] with a modest number of classes."""
    return len(shape) in (2, 3) and 1 < shape[-1] <= 100_000 and (len(shape) == 2 or shape[-1] >= shape[-2] // 4)


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    return float((scores.reshape(len(labels), -1).argmax(axis=1) == labels.reshape(-1)).mean())


def agreement(candidate: np.ndarray, reference: np.ndarray) -> tuple[str, float]:
    """Top-1 agreement along the class axis for score tensors, cosine similarity otherwise."""
    if is_scores(reference.shape):
        return "top-1 agreement", float((candidate.argmax(axis=-1) == reference.argmax(axis=-1)).mean())
    a, b = candidate.reshape(len(candidate), -1).astype(np.float64), reference.reshape(len(reference), -1)
    if a.shape[1] < 8:  # a cosine of a few numbers per sample says little (of one number: only its sign)
        error = float(np.linalg.norm(a - b) / max(float(np.linalg.norm(b)), 1e-30))
        return "1 - relative error", max(0.0, 1.0 - error)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.where(norms > 0, (a * b).sum(axis=1) / np.maximum(norms, 1e-30), 1.0)
    return "cosine", float(cos.mean())


def binary_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """One score per sample: probabilities split at 0.5, logits at 0."""
    flat = scores.reshape(len(labels)).astype(np.float64)
    threshold = 0.5 if flat.min() >= 0 and flat.max() <= 1 else 0.0
    return float(((flat > threshold).astype(np.int64) == labels.reshape(-1)).mean())


def quality(candidate: np.ndarray, reference: np.ndarray, labels: np.ndarray | None) -> Quality:
    """Accuracy when there are labels and the output is class scores ([N, C], or [N, 1] / [N] for two
    classes); agreement with the reference otherwise (metric says which)."""
    if labels is not None and is_scores(candidate.shape) and candidate.ndim == 2:
        return Quality(metric="accuracy", value=accuracy(candidate, labels), samples=len(labels))
    if labels is not None and candidate.size == len(labels):
        return Quality(metric="accuracy", value=binary_accuracy(candidate, labels), samples=len(labels))
    metric, value = agreement(candidate, reference)
    return Quality(metric=metric, value=value, samples=len(candidate))
