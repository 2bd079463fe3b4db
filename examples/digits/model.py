"""DigitsNet: a small residual CNN for scikit-learn's 8x8 digits (about 19k parameters).

Built only from ops every tier runs, the MCU's int8 subset included: Conv, BatchNorm (folded at
export), ReLU, MaxPool, Add, Flatten, Gemm.
"""

from __future__ import annotations

import torch
from torch import nn


class DigitsNet(nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.expand = nn.Sequential(nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.block = nn.Sequential(nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width))
        self.relu = nn.ReLU()
        self.head = nn.Linear(2 * width * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.expand(self.stem(x)))
        x = self.relu(x + self.block(x))  # residual connection
        return self.head(torch.flatten(x, 1))


def build() -> nn.Module:
    """An untrained DigitsNet (tierml recipe factory: `tierml analyze examples/digits/model.py:build`)."""
    return DigitsNet().eval()
