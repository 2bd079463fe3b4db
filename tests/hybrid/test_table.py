"""The bandwidth table and its hysteresis: a flapping estimate near a bucket edge does not flap the cut."""

from __future__ import annotations

from tierml.hybrid.cost import Breakdown
from tierml.hybrid.table import Choice, Hysteresis, SplitTable


def table() -> SplitTable:
    """Below 1 Mbit/s run locally (cut 0); from 1 Mbit/s send at cut 1."""
    def choice(cut: int) -> Choice:
        return Choice(cut, "fp32", Breakdown(str(cut), "fp32", 0, 0, 0, 0, 0, 0, 0))
    return SplitTable([1.0], [choice(0), choice(1)], rtt_ms=20, down_ratio=1, cuts=["local", "split"])


def test_estimates_flapping_around_an_edge_do_not_switch():
    flapping = [0.9, 1.1] * 20
    raw = Hysteresis(table(), margin=0.0, dwell=1)
    held = Hysteresis(table())
    for mbps in flapping:
        raw.update(mbps)
        held.update(mbps)
    assert raw.switches == 39 and held.switches == 0


def test_a_real_change_switches_once_after_the_dwell():
    policy = Hysteresis(table(), margin=0.25, dwell=2)
    picks = [policy.update(m).cut for m in [0.5, 0.5, 3.0, 3.0, 3.0, 3.0]]
    assert picks == [0, 0, 0, 1, 1, 1] and policy.switches == 1
