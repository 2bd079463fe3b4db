"""Student networks for distillation: small families parameterised by width and depth."""

from __future__ import annotations

from typing import Any

from tierml.errors import TiermlError
from tierml.optimize.training import require_torch


def student(input_shape: tuple[int, ...], classes: int, width: int, depth: int) -> Any:
    """A CNN for image-like inputs [C, H, W], an MLP for vectors [F]."""
    torch = require_torch()
    nn = torch.nn
    sample = input_shape[1:]
    if len(sample) == 1:
        layers: list[Any] = []
        features = sample[0]
        for _ in range(depth):
            layers += [nn.Linear(features, width), nn.ReLU()]
            features = width
        return nn.Sequential(*layers, nn.Linear(features, classes))
    if len(sample) != 3:
        raise TiermlError(f"the student family covers vector [features] and image [channels, height, width] "
                          f"inputs; this model's samples are {list(sample)}")
    channels, height, width_px = sample
    layers = [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
    current = width
    for index in range(1, depth):
        wider = width * 2 if index == 1 else current
        layers += [nn.Conv2d(current, wider, 3, padding=1), nn.BatchNorm2d(wider), nn.ReLU()]
        if index == 1 and min(height, width_px) >= 4:
            layers.append(nn.MaxPool2d(2))
            height, width_px = height // 2, width_px // 2
        current = wider
    layers += [nn.Flatten(), nn.Linear(current * height * width_px, classes)]
    return nn.Sequential(*layers)


def parameters(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())
