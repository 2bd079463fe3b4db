"""Acceptance: tierml's MAC count agrees within 1% with a hand formula and with torch's FlopCounterMode
on the PyTorch source of the same models (residual CNNs, a transformer block, depthwise + transposed conv)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from tests.support.torch_models import CASES, hand_macs, torch_counter_macs  # noqa: E402
from tierml.model.load import from_torch  # noqa: E402
from tierml.model.profile import analyze  # noqa: E402


@pytest.mark.parametrize(("name", "factory", "shape"), CASES, ids=[c[0] for c in CASES])
def test_macs_agree_within_one_percent(name, factory, shape):
    torch.manual_seed(0)
    model = factory().eval()
    x = torch.randn(shape)
    ours = analyze(from_torch(model, {"input": shape}), {"input": shape}).macs
    hand = hand_macs(model, x)
    counted = torch_counter_macs(model, x)
    assert ours > 0
    assert abs(ours - hand) / hand <= 0.01, (name, ours, hand)
    assert abs(ours - counted) / counted <= 0.01, (name, ours, counted)
