"""`tierml analyze --report`: where a model's work and memory go."""

from __future__ import annotations

from collections import defaultdict

from tierml.model.measure import LatencyStats
from tierml.model.profile import ModelProfile
from tierml.report.page import Page, new_figure

MIB = 1024 * 1024


def analyze_report(profile: ModelProfile, stats: LatencyStats | None = None) -> str:
    page = Page(f"tierml analyze: {profile.model}", f"sha256 {profile.sha256[:16]}")
    mem = profile.memory
    page.heading("Summary")
    page.table(["figure", "value"], [
        ("inputs", ", ".join(t.describe() for t in profile.inputs)),
        ("parameters", profile.params),
        ("MACs", profile.macs),
        ("FLOPs (2 x MACs + other)", profile.flops),
        ("weights (MiB)", mem.weight_bytes / MIB),
        ("peak activations (MiB)", mem.peak_activation_bytes / MIB),
        ("peak memory (MiB)", mem.peak_total_bytes / MIB),
        ("execution order", mem.order),
    ])
    _memory_timeline(page, profile)
    _work_by_op(page, profile)
    _intensity(page, profile)
    page.heading("Runtime support per tier")
    page.table(["tier", "runtime", "nodes", "unsupported", "accelerator coverage"], [
        (t.tier, t.runtime, t.nodes, len(t.unsupported),
         ", ".join(f"{k} {v:.0%}" for k, v in t.accelerator_coverage.items()) or "-")
        for t in profile.tiers])
    mcu = profile.tier("mcu")
    if mcu.unsupported:
        page.text("Nodes the MCU tier cannot run, and the nearest alternative:")
        page.table(["node", "op", "reason", "instead"],
                   [(u.node, u.op_type, u.reason, u.suggestion or "-") for u in mcu.unsupported[:40]])
    if stats:
        _latency(page, stats)
    return page.render()


def _memory_timeline(page: Page, profile: ModelProfile) -> None:
    timeline = profile.memory.timeline
    if not timeline:
        return
    page.heading("Memory over the execution order")
    fig, ax = new_figure()
    ax.plot(range(len(timeline)), [b / MIB for b in timeline], label="live activations")
    ax.axhline(profile.memory.weight_bytes / MIB, color="tab:gray", ls="--", label="weights")
    peak = max(range(len(timeline)), key=timeline.__getitem__)
    ax.scatter([peak], [timeline[peak] / MIB], color="tab:red", zorder=3,
               label=f"peak {timeline[peak] / MIB:.2f} MiB at {profile.memory.peak_node}")
    ax.set_xlabel("executed node (graph order)")
    ax.set_ylabel("MiB")
    ax.legend()
    page.figure(fig, "Live activation bytes while each node runs (inputs and outputs of the running node are both "
                     "live; a tensor is freed after its last consumer).")


def _work_by_op(page: Page, profile: ModelProfile) -> None:
    flops: dict[str, float] = defaultdict(float)
    params: dict[str, float] = defaultdict(float)
    for n in profile.nodes:
        if not n.folded:
            flops[n.op_type] += n.flops
            params[n.op_type] += n.params
    ops = sorted(flops, key=lambda k: -flops[k])[:15]
    page.heading("Where the work is")
    fig, ax = new_figure(height=4)
    ax.barh(ops[::-1], [flops[o] / 1e6 for o in ops[::-1]], color="tab:blue")
    ax.set_xscale("log")
    ax.set_xlabel("MFLOPs (log)")
    page.figure(fig, "FLOPs by op type (2 x MACs + other FLOPs).")
    top = sorted((n for n in profile.nodes if not n.folded), key=lambda n: -n.flops)[:20]
    page.table(["node", "op", "MACs", "FLOPs", "params", "bytes moved", "FLOP/byte"],
               [(n.name, n.op_type, n.macs, n.flops, n.params, n.bytes_moved, n.intensity) for n in top])


def _intensity(page: Page, profile: ModelProfile) -> None:
    nodes = [n for n in profile.nodes if not n.folded and n.flops > 0 and n.bytes_moved > 0]
    if not nodes:
        return
    fig, ax = new_figure(height=4.2)
    classes = sorted({n.op_class for n in nodes})
    for op_class in classes:
        group = [n for n in nodes if n.op_class == op_class]
        ax.scatter([n.intensity for n in group], [n.flops for n in group], s=14, label=op_class, alpha=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP per byte moved)")
    ax.set_ylabel("FLOPs per node")
    ax.legend(fontsize=7, ncol=2)
    page.figure(fig, "Each node's work against its arithmetic intensity: left of a device's ridge point "
                     "(peak FLOP/s / bandwidth) a node is memory-bound.")


def _latency(page: Page, stats: LatencyStats) -> None:
    page.heading("Measured on this host")
    page.table(["runs", "threads", "median ms", "p90 ms", "p99 ms", "min ms", "runtime"],
               [(stats.runs, stats.threads, stats.median_ms, stats.p90_ms, stats.p99_ms, stats.min_ms, stats.runtime)])
    if not stats.per_node:
        return
    by_op: dict[str, float] = defaultdict(float)
    for n in stats.per_node:
        by_op[n.op_type] += n.median_us
    ops = sorted(by_op, key=lambda k: -by_op[k])[:15]
    fig, ax = new_figure(height=4)
    ax.barh(ops[::-1], [by_op[o] / 1e3 for o in ops[::-1]], color="tab:orange")
    ax.set_xlabel("ms per inference (ORT profiler, kernels as run after ORT's fusions)")
    page.figure(fig, "Kernel time by op type from ONNX Runtime's profiler (profiling adds per-node overhead).")
