"""Where to cut a model between two tiers: the one split planner, pure (per-cut costs in, ranked cuts out).

A cut costs compute before it + encoding + the link's time for what crosses it and the answer back +
decoding + compute after it (`CutCost`, priced on a link into a `Breakdown`, ranked by `rank`). The link
is a function from bytes up and down to milliseconds: `tierml.hardware.transfer` for one link, a path of
hops for the placement scorer. Candidate cuts come from one of two views of the model:
- a profiled model (the placement scorer): a cut after each node of the execution order (exact for
  chains; Neurosurgeon's scan) and the exact s-t min cut over every downset (DADS, `tierml.model.mincut`);
- a partition graph (`tierml split`): the min cut at each bandwidth and encoding size plus the best few
  enumerated cuts under the same additive cost (`shortlist`); the caller measures those and ranks them.
The min cut needs transfer linear in bytes: the link's secant over 1 MB (`per_byte_ms`). Nothing here
measures or opens a file or a session.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

from tierml.hardware.estimate import LatencyBreakdown
from tierml.hardware.transfer import LinkState
from tierml.model import mincut
from tierml.model.partition import Cut, PartitionGraph
from tierml.model.profile import ModelProfile

Network = Callable[[float, float], float]  # (bytes up, bytes down) -> ms over the link, round trip included
_MB = 1_000_000


@dataclass(frozen=True)
class CutCost:
    """One way to split, apart from the link: compute before and after the cut and the bytes that cross it."""

    cut: str  # which cut: the last head node in execution order, or `partition.Cut.key()`
    head_ms: float  # on the first tier
    tail_ms: float  # on the second tier
    up_bytes: float  # sent across the cut
    down_bytes: float = 0  # the answer sent back
    encoding: str = "fp32"  # how what crosses is sent
    encode_ms: float = 0.0
    decode_ms: float = 0.0
    tensors: tuple[str, ...] = ()
    local: bool = False  # the first tier answers alone: nothing crosses, the link is not used


@dataclass(frozen=True)
class Breakdown:
    """One cut priced on one link: its latency end to end, by part (ms)."""

    cut: str
    encoding: str
    head_ms: float
    encode_ms: float
    network_ms: float
    decode_ms: float
    tail_ms: float
    rtt_ms: float  # the part of network_ms that no byte adds
    up_bytes: int
    tensors: tuple[str, ...] = field(default=(), compare=False)  # not serialised: the cut's key names them

    @property
    def total_ms(self) -> float:
        return self.head_ms + self.encode_ms + self.network_ms + self.decode_ms + self.tail_ms

    @property
    def slowest_stage_ms(self) -> float:
        """Throughput mode: frames pipeline, so the rate is set by the slowest of device, link and server."""
        return max(self.head_ms + self.encode_ms, self.network_ms - self.rtt_ms, self.decode_ms + self.tail_ms)

    @property
    def after(self) -> str:
        """Where the cut is, as the placement's explanation quotes it."""
        return self.cut

    @property
    def bytes(self) -> int:
        return self.up_bytes

    def to_dict(self) -> dict[str, float | str | int]:
        fields = {k: v for k, v in asdict(self).items() if k != "tensors"}
        return {**fields, "total_ms": self.total_ms, "slowest_stage_ms": self.slowest_stage_ms}


def _total(b: Breakdown) -> float:
    return b.total_ms


def _priced(cost: CutCost, network: Network, rtt_ms: float) -> Breakdown:
    if cost.local:
        return Breakdown(cost.cut, "none", cost.head_ms, 0.0, 0.0, 0.0, 0.0, 0.0, 0, cost.tensors)
    return Breakdown(cost.cut, cost.encoding, cost.head_ms, cost.encode_ms, network(cost.up_bytes, cost.down_bytes),
                     cost.decode_ms, cost.tail_ms, rtt_ms, int(cost.up_bytes), cost.tensors)


def price(cost: CutCost, network: Network) -> Breakdown:
    """One cut on the link: what crosses pays the link's time; a local answer pays nothing."""
    return _priced(cost, network, network(0, 0))


def rank(costs: Iterable[CutCost], network: Network, key: Callable[[Breakdown], float] = _total) -> list[Breakdown]:
    """The cuts priced on the link, best first (lowest `key`, end-to-end latency by default; ties keep order)."""
    rtt_ms = network(0, 0)
    return sorted((_priced(c, network, rtt_ms) for c in costs), key=key)


def per_byte_ms(network: Network, down_bytes: float = 0) -> tuple[float, float]:
    """The link's ms per byte up and down, as secants over 1 MB (infinite when there is no route)."""
    base = network(0, down_bytes)
    if not math.isfinite(base):
        return math.inf, math.inf
    return (network(_MB, down_bytes) - base) / _MB, (network(0, down_bytes + _MB) - base) / _MB


# ----------------------------------------------------------------------------------------------- a profiled model


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


def _tensor_sizes(profile: ModelProfile, nodes: list) -> dict[str, int]:
    sizes = {t.name: t.nbytes for t in profile.inputs}
    for n in nodes:
        numels = [math.prod(shape) if shape is not None else 0 for shape in n.output_shapes]
        per_element = n.output_bytes / sum(numels) if sum(numels) else 0.0
        sizes.update({name: int(numel * per_element) for name, numel in zip(n.outputs, numels, strict=False)})
    return sizes


def _node_ms(breakdown: LatencyBreakdown) -> dict[str, float]:
    return {t.node: t.seconds * 1e3 for t in breakdown.nodes}


def chain_costs(profile: ModelProfile, head: LatencyBreakdown, tail: LatencyBreakdown, byte_scale: float,
                down_bytes: float = 0, encoding: str = "fp32") -> list[CutCost]:
    """A cut after each executed node but the last (Neurosurgeon's scan along the execution order)."""
    head_times, tail_times = _node_ms(head), _node_ms(tail)
    cuts = crossing_tensors(profile)
    head_ms = 0.0
    tail_ms = sum(tail_times.get(name, 0.0) for name, _, _ in cuts)
    found = []
    for name, tensors, size in cuts[:-1]:
        head_ms += head_times.get(name, 0.0)
        tail_ms -= tail_times.get(name, 0.0)
        found.append(CutCost(name, head_ms, tail_ms, int(size * byte_scale), down_bytes, encoding, tensors=tensors))
    return found


def exact_cost(profile: ModelProfile, head: LatencyBreakdown, tail: LatencyBreakdown, byte_scale: float,
               network: Network, down_bytes: float = 0, encoding: str = "fp32") -> CutCost | None:
    """The s-t min cut with transfer linear in bytes (`per_byte_ms`); None when one tier does it all."""
    nodes = [n for n in profile.nodes if not n.folded]
    if len(nodes) < 2:
        return None
    slope, _ = per_byte_ms(network, down_bytes)
    if not math.isfinite(slope):
        return None
    sizes = _tensor_sizes(profile, nodes)
    head_times, tail_times = _node_ms(head), _node_ms(tail)
    device_ms = [head_times.get(n.name, 0.0) for n in nodes]
    server_ms = [tail_times.get(n.name, 0.0) for n in nodes]
    producer = {o: i for i, n in enumerate(nodes) for o in n.outputs}
    reads = [[t for t in n.inputs if t in producer or t in sizes] for n in nodes]
    tensor_ms = {t: size * byte_scale * slope for t, size in sizes.items()}
    chosen = mincut.solve(reads, producer, device_ms, server_ms, tensor_ms)
    if len(chosen) in (0, len(nodes)):
        return None
    crossing = tuple(sorted({t for i, r in enumerate(reads) if i not in chosen for t in r
                             if producer.get(t) in chosen or (t not in producer and t in sizes)}))
    moved = int(sum(sizes[t] for t in crossing) * byte_scale)
    return CutCost(nodes[max(chosen)].name, sum(device_ms[i] for i in chosen),
                   sum(server_ms[i] for i in range(len(nodes)) if i not in chosen), moved, down_bytes, encoding,
                   tensors=crossing)


def best_cut(profile: ModelProfile, head: LatencyBreakdown, tail: LatencyBreakdown, byte_scale: float,
             network: Network, down_bytes: float = 0, encoding: str = "fp32") -> Breakdown | None:
    """The scan's best cut, or the min cut when it is strictly faster (None if the model has fewer than 2 nodes)."""
    costs = chain_costs(profile, head, tail, byte_scale, down_bytes, encoding)
    if not costs:
        return None
    exact = exact_cost(profile, head, tail, byte_scale, network, down_bytes, encoding)
    return rank([*costs, *([exact] if exact is not None else [])], network)[0]


# ----------------------------------------------------------------------------------------------- a partition graph


def min_cut(graph: PartitionGraph, device_ms: Sequence[float], server_ms: Sequence[float], network: Network,
            byte_ratio: float = 1.0) -> Cut:
    """The exact min cut over every downset: tensors up at `byte_ratio` of their size, outputs made after back down."""
    up, down = per_byte_ms(network)
    tensor_ms = {t: graph.tensors[t].nbytes * byte_ratio * up for t in graph.consumers}
    out_ms = {o: graph.tensors[o].nbytes * down for o in graph.outputs}
    return mincut.min_cut(graph, device_ms, server_ms, tensor_ms, out_ms).cut


def shortlist(graph: PartitionGraph, cuts: Sequence[Cut], device_ms: Sequence[float], server_ms: Sequence[float],
              byte_ratios: Sequence[float], rtt_ms: float, rates_mbps: Sequence[float], keep: int = 4) -> list[Cut]:
    """Min-cut answers and the `keep` best `cuts` (additive cost) at every rate x encoding size, and one tier alone.

    `byte_ratios`: the encodings' sizes relative to fp32; the answer's bytes back are left out of the
    additive cost.
    """
    found: dict[tuple[int, ...], Cut] = {}
    head_ms = [sum(device_ms[i] for i in c.head) for c in cuts]
    tail_ms = [sum(server_ms) - sum(server_ms[i] for i in c.head) for c in cuts]
    costs = {ratio: [CutCost(str(i), head_ms[i], tail_ms[i], c.nbytes * ratio, local=not c.tensors)
                     for i, c in enumerate(cuts)] for ratio in byte_ratios}
    for mbps in rates_mbps:
        network = LinkState(mbps, mbps, rtt_ms).time_ms
        for ratio in byte_ratios:
            best = min_cut(graph, device_ms, server_ms, network, ratio)
            found.setdefault(tuple(sorted(best.head)), best)
            for b in rank(costs[ratio], network)[:keep]:
                chosen = cuts[int(b.cut)]
                found.setdefault(tuple(sorted(chosen.head)), chosen)
    for c in (graph.cut(range(len(graph.names))), graph.cut(())):
        found.setdefault(tuple(sorted(c.head)), c)
    return sorted(found.values(), key=lambda c: (len(c.head), c.tensors))
