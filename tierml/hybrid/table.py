"""The configuration map: bandwidth bucket -> (cut, encoding), precomputed so switching at run time is O(1).

Buckets are log-spaced in uplink bandwidth. For each bucket the split planner (`tierml.plan.split`)
picks the best (cut, encoding) at the bucket's geometric centre; neighbouring buckets usually agree,
so the runtime only changes cut when the estimate crosses into a bucket with a different choice, and
only past a margin (hysteresis, `Hysteresis`). A bucket is an effective rate, as the runtime measures
it: a duty-cycled radio's silences are already in it, so buckets carry no duty cycle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from tierml.hardware.transfer import LinkState
from tierml.hybrid.cost import CutProfile, options
from tierml.plan.split import Breakdown, rank

DEFAULT_EDGES = tuple(round(0.05 * 1.6**k, 4) for k in range(20))  # 0.05 .. ~380 Mbit/s


@dataclass(frozen=True)
class Choice:
    """What to do in one bucket: the cut (index into the table's cuts) and the encoding."""

    cut: int
    encoding: str
    predicted: Breakdown


@dataclass
class SplitTable:
    """Bucket edges (Mbit/s, ascending) and the choice for each of the len(edges) + 1 buckets."""

    edges: list[float]
    choices: list[Choice]
    rtt_ms: float
    down_ratio: float  # downlink = uplink x this
    cuts: list[str] = field(default_factory=list)  # Cut.key() per index

    def bucket(self, up_mbps: float) -> int:
        return sum(1 for e in self.edges if up_mbps >= e)

    def centre(self, bucket: int) -> float:
        if bucket == 0:
            return self.edges[0] / 1.3
        if bucket == len(self.edges):
            return self.edges[-1] * 1.3
        return math.sqrt(self.edges[bucket - 1] * self.edges[bucket])

    def to_dict(self) -> dict:
        return {"edges": self.edges, "rtt_ms": self.rtt_ms, "down_ratio": self.down_ratio, "cuts": self.cuts,
                "choices": [{"cut": c.cut, "encoding": c.encoding, "predicted": c.predicted.to_dict()}
                            for c in self.choices]}

    @classmethod
    def from_dict(cls, data: dict) -> SplitTable:
        choices = []
        for c in data["choices"]:
            fields = {k: v for k, v in c["predicted"].items() if k not in ("total_ms", "slowest_stage_ms")}
            choices.append(Choice(c["cut"], c["encoding"], Breakdown(**fields)))
        return cls(list(data["edges"]), choices, data["rtt_ms"], data["down_ratio"], list(data["cuts"]))


def build_table(profiles: Sequence[CutProfile], encodings: Sequence[str], rtt_ms: float, down_ratio: float = 1.0,
                edges: Sequence[float] = DEFAULT_EDGES) -> SplitTable:
    """Best (cut, encoding) per bandwidth bucket; `profiles` index the cuts."""
    keys = [p.cut.key() for p in profiles]
    table = SplitTable(list(edges), [], rtt_ms, down_ratio, keys)
    costs = options(profiles, encodings)
    for bucket in range(len(edges) + 1):
        mbps = table.centre(bucket)
        chosen = rank(costs, LinkState(mbps, mbps * down_ratio, rtt_ms).time_ms)[0]
        table.choices.append(Choice(keys.index(chosen.cut), chosen.encoding, chosen))
    return table


@dataclass
class Hysteresis:
    """Leave the current bucket only when the estimate is `margin` beyond its edges for `dwell` requests in a row."""

    table: SplitTable
    margin: float = 0.25
    dwell: int = 2
    bucket: int | None = None
    switches: int = 0
    _pending: int = 0

    def update(self, up_mbps: float) -> Choice:
        target = self.table.bucket(up_mbps)
        if self.bucket is None:
            self.bucket = target
        elif target != self.bucket and self._beyond(up_mbps):
            self._pending += 1
            if self._pending >= self.dwell:
                before = self.table.choices[self.bucket]
                self.bucket, self._pending = target, 0
                after = self.table.choices[target]
                self.switches += (before.cut, before.encoding) != (after.cut, after.encoding)
        else:
            self._pending = 0
        return self.table.choices[self.bucket]

    def _beyond(self, up_mbps: float) -> bool:
        assert self.bucket is not None
        edges = self.table.edges
        low = edges[self.bucket - 1] if self.bucket > 0 else 0.0
        high = edges[self.bucket] if self.bucket < len(edges) else math.inf
        return up_mbps < low / (1 + self.margin) or up_mbps > high * (1 + self.margin)

