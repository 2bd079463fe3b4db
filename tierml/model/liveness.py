"""Peak activation memory under an execution order, from exact tensor lifetimes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PeakMemory:
    """The largest total size of live tensors while a node runs, and which tensors they are."""

    peak_bytes: int
    step: int  # index of the node running at the peak; -1 when the graph has no nodes
    live: tuple[str, ...]
    timeline: tuple[int, ...] = ()  # live bytes while each node runs


def lifetimes(
    steps: Sequence[tuple[Sequence[str], Sequence[str]]],
    tracked: Iterable[str],
    graph_inputs: Iterable[str],
    graph_outputs: Iterable[str],
) -> dict[str, tuple[int, int]]:
    """First and last step (inclusive) at which each tracked tensor occupies memory.

    A node's inputs and outputs are live together while it runs; a tensor is freed after its last
    consumer; graph inputs exist from the first step, graph outputs until the last; an output that
    nothing consumes lives only during the step that produces it.
    """
    tracked = set(tracked)
    last = max(len(steps) - 1, 0)
    birth: dict[str, int] = {t: 0 for t in graph_inputs if t in tracked}
    death: dict[str, int] = dict(birth)
    for index, (inputs, outputs) in enumerate(steps):
        for name in outputs:
            if name in tracked and name not in birth:
                birth[name] = death[name] = index
        for name in inputs:
            if name in birth:
                death[name] = max(death[name], index)
    for name in graph_outputs:
        if name in birth:
            death[name] = last
    return {name: (birth[name], death[name]) for name in birth}


def peak_memory(
    steps: Sequence[tuple[Sequence[str], Sequence[str]]],
    sizes: Mapping[str, int],
    graph_inputs: Iterable[str],
    graph_outputs: Iterable[str],
) -> PeakMemory:
    """Peak of the summed sizes of live tensors (only tensors in `sizes` are counted)."""
    spans = lifetimes(steps, sizes.keys(), graph_inputs, graph_outputs)
    if not steps:
        return PeakMemory(sum(sizes[t] for t in spans), -1, tuple(sorted(spans)))
    delta = [0] * (len(steps) + 1)
    for name, (first, last) in spans.items():
        delta[first] += sizes[name]
        delta[last + 1] -= sizes[name]
    running, timeline = 0, []
    for index in range(len(steps)):
        running += delta[index]
        timeline.append(running)
    best_step = max(range(len(timeline)), key=timeline.__getitem__)
    live = tuple(sorted(n for n, (a, b) in spans.items() if a <= best_step <= b))
    return PeakMemory(timeline[best_step], best_step, live, tuple(timeline))
