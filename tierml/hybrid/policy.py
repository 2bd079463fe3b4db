"""Where each request of a hybrid model runs: the small interface every runtime behaviour implements.

A runtime does the I/O (sessions, the inference client, probes, the link estimate); its `Policy`
decides. Per request the runtime calls `decide` with what it knows of the link, runs the request
where the `Decision` says, and reports what happened to `observe`. One class per behaviour, the way
Flower makes each federated strategy a class:
- split (`tierml.hybrid.split_policy.SplitPolicy`): the bandwidth table, with hysteresis, picks a cut
  and an encoding; the device alone answers when the server is down, the deadline would be missed
  remotely, or it is simply faster.
- cascade (confidence escalation): `decide(link)` answers LOCAL with the small model; the runtime calls
  `decide(link, confidence)` again with the answer's confidence, and the policy says REMOTE when it is
  below its threshold and the link is up, else keeps the local answer.
- offload with fallback: REMOTE while the link is up (and the prediction is within the deadline),
  LOCAL on the fallback copy otherwise. A remote call that fails is answered by the fallback and
  observed as an `Outcome` with an error; the runtime reports the link down (`LinkView.up`) until a
  probe sees it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tierml.hardware.transfer import LinkState

Where = Literal["local", "remote", "split"]


@dataclass(frozen=True)
class LinkView:
    """What the runtime knows of the link when a request arrives."""

    state: LinkState  # the current estimate of bandwidth and round trip
    up: bool = True  # the far side answered the last call or probe
    samples: int = 0  # bandwidth measurements behind the estimate (0: still the initial guess)


@dataclass(frozen=True)
class Decision:
    """Where one request runs: on this device, on the far side, or split at a cut."""

    where: Where
    cut: int = -1  # split: index into the bundle's cuts (-1 when there is none)
    encoding: str = "none"  # how what crosses is sent
    reason: str = ""  # why it runs locally when the policy would rather not (the answer is degraded)


@dataclass(frozen=True)
class Outcome:
    """What happened to one request, as the runtime saw it."""

    decision: Decision
    latency_ms: float
    up_bytes: int = 0
    degraded: bool = False
    error: str = ""  # the far side failed and the device answered instead
    confidence: float | None = None  # of the answer, where the model gives one


class Policy:
    """Decides where each request runs and learns from what happened; subclasses override `decide`."""

    def decide(self, link: LinkView, confidence: float | None = None) -> Decision:
        """Where this request runs, given the link now (and, on a second look, the local answer's confidence)."""
        return Decision("remote") if link.up else Decision("local", reason="the far side is unreachable")

    def observe(self, outcome: Outcome) -> None:
        """Learn from one answered request; by default there is nothing to learn."""

    def state(self) -> dict[str, Any]:
        """What the policy holds now, for telemetry and reports."""
        return {}
