"""The split runtime's decisions: which cut and encoding for this request, or the device alone, and why.

Pure: the table and the cut profiles come from `tierml split`; the link view from the runtime.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tierml.hybrid.cost import CutProfile
from tierml.hybrid.policy import Decision, LinkView, Policy
from tierml.hybrid.table import Hysteresis, SplitTable


class SplitPolicy(Policy):
    """The bandwidth table with hysteresis picks (cut, encoding); the device alone answers when that is better."""

    def __init__(self, table: SplitTable, profiles: Sequence[CutProfile], deadline_ms: float | None = None,
                 margin: float = 0.25, dwell: int = 2) -> None:
        self.profiles = list(profiles)
        self.deadline_ms = deadline_ms
        self.hysteresis = Hysteresis(table, margin, dwell)
        self.local = next((i for i, p in enumerate(self.profiles) if p.local), None)

    @property
    def switches(self) -> int:
        """How often the chosen (cut, encoding) changed."""
        return self.hysteresis.switches

    def decide(self, link: LinkView, confidence: float | None = None) -> Decision:
        """The table's choice at the estimated uplink, unless the server is down, the deadline or the device says no."""
        choice = self.hysteresis.update(link.state.up_mbps)
        if self.profiles[choice.cut].local:
            return Decision("local", choice.cut)
        if not link.up:
            return Decision("local", choice.cut, reason="server unreachable")
        remote_ms = self.profiles[choice.cut].latency(choice.encoding, link.state).total_ms
        local_ms = self.profiles[self.local].head_ms if self.local is not None else math.inf
        if self.deadline_ms is not None and remote_ms > self.deadline_ms and local_ms < remote_ms:
            return Decision("local", choice.cut, reason=f"deadline: {remote_ms:.0f} ms predicted remotely")
        if self.local is not None and local_ms < remote_ms:  # the table assumed another RTT: the device alone is faster
            return Decision("local", self.local)
        return Decision("split", choice.cut, choice.encoding)

    def state(self) -> dict[str, Any]:
        return {"bucket": self.hysteresis.bucket, "switches": self.switches, "deadline_ms": self.deadline_ms}
