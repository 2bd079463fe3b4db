"""Train DigitsNet on scikit-learn's bundled digits and export model.onnx and the data sets beside it.

    python examples/digits/train.py            # about 20 s on 2 CPU cores

Writes (all deterministic for a given torch/sklearn version):
  model.onnx   the trained network, input `input` float[batch, 1, 8, 8] (pixels / 16), output `logits`
  model.pt     its PyTorch state_dict (for pruning and fine-tuning: `model.torch` in tierml.yaml)
  data/train.npz, data/calib.npz, data/eval.npz   x: float32 [n, 1, 8, 8], y: int64 [n]
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from model import DigitsNet  # noqa: E402


def datasets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_train, x_eval, y_train, y_eval = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    return {"train": (x_train, y_train), "calib": (x_train[:200], y_train[:200]), "eval": (x_eval, y_eval)}


def train(x: np.ndarray, y: np.ndarray, epochs: int = 30) -> DigitsNet:
    torch.manual_seed(0)
    model = DigitsNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(xs))
        for start in range(0, len(xs), 64):
            batch = order[start : start + 64]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(xs[batch]), ys[batch])
            loss.backward()
            optimizer.step()
    return model.eval()


def export(model: nn.Module, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.onnx.export(model, (torch.zeros(2, 1, 8, 8),), input_names=["input"], output_names=["logits"],
                                dynamic_shapes={"x": {0: batch}}, opset_version=18, dynamo=True, verbose=False)
    buffer = io.BytesIO()
    program.save(buffer)
    proto = onnx.load_model_from_string(buffer.getvalue())
    proto.producer_name = "tierml examples/digits/train.py"
    onnx.save(proto, path)


def main() -> None:
    sets = datasets()
    (HERE / "data").mkdir(exist_ok=True)
    for name, (x, y) in sets.items():
        np.savez_compressed(HERE / "data" / f"{name}.npz", x=x, y=y)
    model = train(*sets["train"])
    with torch.no_grad():
        x_eval, y_eval = sets["eval"]
        accuracy = (model(torch.from_numpy(x_eval)).argmax(1).numpy() == y_eval).mean()
    export(model, HERE / "model.onnx")
    torch.save(model.state_dict(), HERE / "model.pt")
    print(f"eval accuracy {accuracy:.4f} on {len(y_eval)} held-out digits; wrote {HERE / 'model.onnx'}")


if __name__ == "__main__":
    main()
