"""Where to cut a model between two tiers: a scan over cut points in the execution order.

The tensors crossing a cut are those produced at or before it and read after it. For each cut the
latency is head time on the first device + transfer of the crossing tensors + tail time on the
second; the best cut minimises it. This scans a chain (one cut position per node in order), which is
exact for chains and a good estimate for DAGs; `tierml split` replaces it with the min-cut.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from tierml.hardware.estimate import LatencyBreakdown
from tierml.model.profile import ModelProfile


@dataclass(frozen=True)
class Cut:
    after: str  # name of the last node of the head
    position: int  # index among executed nodes
    tensors: tuple[str, ...]
    bytes: int
    head_ms: float
    tail_ms: float
    network_ms: float

    @property
    def total_ms(self) -> float:
        return self.head_ms + self.network_ms + self.tail_ms


def crossing_tensors(profile: ModelProfile) -> list[tuple[str, tuple[str, ...], int]]:
    """For each executed node in order: (node, tensors crossing a cut right after it, their bytes)."""
    nodes = [n for n in profile.nodes if not n.folded]
    sizes = {t.name: t.nbytes for t in profile.inputs}
    for n in nodes:
        numels = [math.prod(shape) if shape is not None else 0 for shape in n.output_shapes]
        per_element = n.output_bytes / sum(numels) if sum(numels) else 0.0
        sizes.update({name: int(numel * per_element) for name, numel in zip(n.outputs, numels, strict=False)})
    last_use: dict[str, int] = {}
    for index, n in enumerate(nodes):
        for name in n.inputs:
            last_use[name] = index
    outputs = {t.name for t in profile.outputs}
    live = {t.name for t in profile.inputs}
    result = []
    for index, n in enumerate(nodes):
        live |= set(n.outputs)
        crossing = tuple(sorted(t for t in live if last_use.get(t, -1) > index or t in outputs))
        live = set(crossing)
        result.append((n.name, crossing, sum(sizes.get(t, 0) for t in crossing)))
    return result


def best_cut(profile: ModelProfile, head: LatencyBreakdown, tail: LatencyBreakdown, byte_scale: float,
             network_ms: Callable[[int], float]) -> Cut | None:
    """The cut with the lowest head + transfer + tail latency (None if the model has fewer than 2 nodes)."""
    head_times = {t.node: t.seconds * 1e3 for t in head.nodes}
    tail_times = {t.node: t.seconds * 1e3 for t in tail.nodes}
    cuts = crossing_tensors(profile)
    names = [name for name, _, _ in cuts]
    total_tail = sum(tail_times.get(n, 0.0) for n in names)
    best: Cut | None = None
    head_ms = 0.0
    tail_ms = total_tail
    for index, (name, tensors, size) in enumerate(cuts[:-1]):
        head_ms += head_times.get(name, 0.0)
        tail_ms -= tail_times.get(name, 0.0)
        moved = int(size * byte_scale)
        cut = Cut(name, index, tensors, moved, head_ms, tail_ms, network_ms(moved))
        if best is None or cut.total_ms < best.total_ms:
            best = cut
    return best
