"""Training loops the compression passes share: supervised fine-tuning and knowledge distillation (Hinton et al.).

A seeded split of the training set (15%) is held out to choose the best epoch, so the eval set stays
untouched for reporting. Image-shaped inputs get one-pixel random shifts as augmentation.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from tierml.data.dataset import Dataset
from tierml.errors import TiermlError

HOLDOUT = 0.15


def require_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise TiermlError("this pass trains with PyTorch: pip install torch==2.13.0 && pip install "
                          "'tierml[torch]'") from exc
    return torch


def train(module: Any, data: Dataset, epochs: int, lr: float, batch: int = 64, teacher: np.ndarray | None = None,
          temperature: float = 4.0, alpha: float = 0.7, seed: int = 0, augment: bool = True) -> Any:
    """Fit `module` on data and return it with the weights of its best epoch on the held-out split.

    With `teacher` logits the loss is alpha * T^2 * KL(student_T || teacher_T) + (1 - alpha) *
    cross-entropy with the labels (alpha = 1 when there are no labels).
    """
    torch = require_torch()
    if data.y is None and teacher is None:
        raise TiermlError(f"training on '{data.source}' needs labels y or a teacher's outputs")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    xs = torch.from_numpy(np.ascontiguousarray(data.x, np.float32))
    ys = torch.from_numpy(data.y.astype(np.int64)) if data.y is not None else None
    soft = torch.from_numpy(teacher.astype(np.float32)) if teacher is not None else None
    order = torch.randperm(len(xs), generator=generator)
    held = order[: int(len(xs) * HOLDOUT)] if len(xs) >= 20 else order[:0]
    fit = order[len(held):]
    weight = alpha if ys is not None else 1.0
    shift = augment and xs.dim() == 4 and min(xs.shape[2:]) >= 8
    optimizer = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=1e-4)
    best_score, best_state = -np.inf, copy.deepcopy(module.state_dict())
    for _ in range(epochs):
        module.train()
        shuffled = fit[torch.randperm(len(fit), generator=generator)]
        for start in range(0, len(shuffled), batch):
            rows = shuffled[start:start + batch]
            inputs = _shift(xs[rows], generator) if shift else xs[rows]
            loss = _loss(torch, module(inputs), rows, ys, soft, weight, temperature)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        score = _score(torch, module, xs, ys, soft, held if len(held) else fit)
        if score > best_score:
            best_score, best_state = score, copy.deepcopy(module.state_dict())
    module.load_state_dict(best_state)
    return module.eval()


def _loss(torch: Any, logits: Any, rows: Any, ys: Any, soft: Any, weight: float, temperature: float) -> Any:
    functional = torch.nn.functional
    loss = torch.zeros(())
    if soft is not None:
        log_p = functional.log_softmax(logits / temperature, dim=1)
        q = functional.softmax(soft[rows] / temperature, dim=1)
        loss = loss + weight * temperature**2 * functional.kl_div(log_p, q, reduction="batchmean")
    if ys is not None:
        loss = loss + (1 - weight if soft is not None else 1.0) * functional.cross_entropy(logits, ys[rows])
    return loss


def _score(torch: Any, module: Any, xs: Any, ys: Any, soft: Any, rows: Any) -> float:
    """Held-out accuracy with labels; agreement with the teacher's top-1 without."""
    with torch.no_grad():
        predicted = module.eval()(xs[rows]).argmax(dim=1)
    target = ys[rows] if ys is not None else soft[rows].argmax(dim=1)
    return float((predicted == target).float().mean())


def _shift(batch: Any, generator: Any) -> Any:
    """Move every image of the batch by up to one pixel in each direction (zero fill)."""
    torch = require_torch()
    dy, dx = (int(v) for v in torch.randint(-1, 2, (2,), generator=generator))
    out = torch.roll(batch, shifts=(dy, dx), dims=(2, 3))
    if dy:
        out[:, :, 0 if dy > 0 else -1, :] = 0
    if dx:
        out[:, :, :, 0 if dx > 0 else -1] = 0
    return out


def predict(module: Any, x: np.ndarray) -> np.ndarray:
    torch = require_torch()
    with torch.no_grad():
        return module.eval()(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()
