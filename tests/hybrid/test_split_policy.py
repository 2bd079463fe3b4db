"""The split runtime's decisions as a `Policy`: pure, so every branch is checked without a server."""

from __future__ import annotations

import pytest

from tierml.hardware.transfer import LinkState
from tierml.hybrid.cost import CutProfile, Wire
from tierml.hybrid.policy import Decision, LinkView, Policy
from tierml.hybrid.split_policy import SplitPolicy
from tierml.hybrid.table import build_table
from tierml.model.partition import Cut


def profiles(device_only_ms: float = 80.0) -> list[CutProfile]:
    """Device-only, and a cut after 1 node sending 10 kB (head 2 ms, tail 1 ms)."""
    return [CutProfile(Cut(frozenset({0, 1}), (), 0), device_only_ms, 0.0, 0),
            CutProfile(Cut(frozenset({0}), ("h",), 10_000), 2.0, 1.0, 200, {"fp32": Wire(10_000, 0.5, 0.5)})]


def policy(deadline_ms: float | None = None, device_only_ms: float = 80.0) -> SplitPolicy:
    cuts = profiles(device_only_ms)
    return SplitPolicy(build_table(cuts, ["fp32"], rtt_ms=10.0), cuts, deadline_ms, margin=0.0, dwell=1)


def view(mbps: float, rtt_ms: float = 10.0, up: bool = True) -> LinkView:
    return LinkView(LinkState(mbps, mbps, rtt_ms), up)


def test_a_fast_link_splits_and_a_slow_one_stays_on_the_device():
    chooser = policy()
    assert chooser.decide(view(100.0)) == Decision("split", 1, "fp32")
    assert chooser.decide(view(0.1)) == Decision("local", 0)  # 800 ms to send: the device alone is faster
    assert chooser.switches == 1 and chooser.state()["switches"] == 1


def test_the_device_answers_when_the_server_is_down_or_the_deadline_would_be_missed():
    assert policy().decide(view(100.0, up=False)) == Decision("local", 1, reason="server unreachable")
    late = policy(deadline_ms=100.0, device_only_ms=90.0).decide(view(100.0, rtt_ms=500.0))
    assert late.where == "local" and late.reason == "deadline: 505 ms predicted remotely"


def test_a_round_trip_the_table_did_not_expect_sends_the_request_to_the_faster_device():
    assert policy(device_only_ms=30.0).decide(view(100.0, rtt_ms=50.0)) == Decision("local", 0)


@pytest.mark.parametrize("up", [True, False])
def test_the_default_policy_goes_remote_only_over_a_live_link(up):
    decision = Policy().decide(view(10.0, up=up))
    assert decision.where == ("remote" if up else "local") and bool(decision.reason) != up
    assert Policy().state() == {}
