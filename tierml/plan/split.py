"""Where to cut a model between two tiers: a scan over cut points in the execution order.

The tensors crossing a cut are those produced at or before it and read after it. For each cut the
latency is head time on the first device + transfer of the crossing tensors + tail time on the
second; the best cut minimises it. `best_cut` takes the better of a scan over cut points in execution
order (exact for chains; Neurosurgeon's method) and the exact s-t min cut over every downset of the DAG
(`tierml.model.mincut`, DADS), whose transfer cost is linearised from `network_ms`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from tierml.hardware.estimate import LatencyBreakdown
from tierml.model.mincut import solve
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
    sizes = _tensor_sizes(profile, nodes)
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
    chain = chain_cut(profile, head, tail, byte_scale, network_ms)
    exact = exact_cut(profile, head, tail, byte_scale, network_ms) if chain is not None else None
    return exact if exact is not None and chain is not None and exact.total_ms < chain.total_ms else chain


def exact_cut(profile: ModelProfile, head: LatencyBreakdown, tail: LatencyBreakdown, byte_scale: float,
              network_ms: Callable[[int], float]) -> Cut | None:
    """The s-t min cut with transfer time linear in bytes (slope of `network_ms` over 1 MB), priced exactly after."""
    nodes = [n for n in profile.nodes if not n.folded]
    if len(nodes) < 2:
        return None
    sizes = _tensor_sizes(profile, nodes)
    head_times = {t.node: t.seconds * 1e3 for t in head.nodes}
    tail_times = {t.node: t.seconds * 1e3 for t in tail.nodes}
    device_ms = [head_times.get(n.name, 0.0) for n in nodes]
    server_ms = [tail_times.get(n.name, 0.0) for n in nodes]
    base = network_ms(0)
    slope = (network_ms(1_000_000) - base) / 1_000_000 if math.isfinite(base) else math.inf
    if not math.isfinite(slope):
        return None
    producer = {o: i for i, n in enumerate(nodes) for o in n.outputs}
    reads = [[t for t in n.inputs if t in producer or t in sizes] for n in nodes]
    tensor_ms = {t: size * byte_scale * slope for t, size in sizes.items()}
    chosen = solve(reads, producer, device_ms, server_ms, tensor_ms)
    if len(chosen) in (0, len(nodes)):
        return None  # one tier does it all: not a split
    crossing = tuple(sorted({t for i, r in enumerate(reads) if i not in chosen for t in r
                             if producer.get(t) in chosen or (t not in producer and t in sizes)}))
    moved = int(sum(sizes[t] for t in crossing) * byte_scale)
    last = max(chosen)
    return Cut(nodes[last].name, last, crossing, moved, sum(device_ms[i] for i in chosen),
               sum(server_ms[i] for i in range(len(nodes)) if i not in chosen), network_ms(moved))


def _tensor_sizes(profile: ModelProfile, nodes: list) -> dict[str, int]:
    sizes = {t.name: t.nbytes for t in profile.inputs}
    for n in nodes:
        numels = [math.prod(shape) if shape is not None else 0 for shape in n.output_shapes]
        per_element = n.output_bytes / sum(numels) if sum(numels) else 0.0
        sizes.update({name: int(numel * per_element) for name, numel in zip(n.outputs, numels, strict=False)})
    return sizes


def chain_cut(profile: ModelProfile, head: LatencyBreakdown, tail: LatencyBreakdown, byte_scale: float,
              network_ms: Callable[[int], float]) -> Cut | None:
    """The best cut point along the execution order (Neurosurgeon's scan)."""
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
