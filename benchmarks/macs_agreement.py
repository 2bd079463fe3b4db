"""tierml's MAC count vs a hand formula and torch's FlopCounterMode, on the PyTorch source of the same models.

    python benchmarks/macs_agreement.py

The models (tests/support/torch_models.py) cover residual CNNs, a transformer block with explicit
attention matmuls, and depthwise + transposed convolutions. Target: within 1% of both counts.
"""

from __future__ import annotations

import torch
from common import console, print_table, write_results

from tests.support.torch_models import CASES, hand_macs, torch_counter_macs
from tierml.model.load import from_torch
from tierml.model.profile import analyze


def main() -> None:
    rows, records = [], []
    for name, factory, shape in CASES:
        torch.manual_seed(0)
        model = factory().eval()
        x = torch.randn(shape)
        ours = analyze(from_torch(model, {"input": shape}), {"input": shape}).macs
        hand, counted = hand_macs(model, x), torch_counter_macs(model, x)
        worst = max(abs(ours - hand) / hand, abs(ours - counted) / counted)
        rows.append([name, "x".join(map(str, shape)), ours, hand, int(counted), f"{100 * worst:.3f}%",
                     "yes" if worst <= 0.01 else "NO"])
        records.append({"model": name, "input": list(shape), "tierml_macs": ours, "hand_macs": hand,
                        "flopcounter_macs": counted, "worst_relative_difference": worst})
    print_table("MACs: tierml (from the exported ONNX) vs hand formula vs torch FlopCounterMode",
                ["model", "input", "tierml", "hand formula", "FlopCounterMode", "worst diff", "within 1%"], rows)
    console.print(f"results written to {write_results('macs_agreement', {'models': records})}")


if __name__ == "__main__":
    main()
