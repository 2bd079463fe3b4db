"""`tierml build --report`: the variants' Pareto fronts with each device's choice marked, and the rungs."""

from __future__ import annotations

import math

from tierml.optimize.ladder import pareto
from tierml.plan.variants import Ladder
from tierml.report.page import Page, new_figure


def build_report(ladder: Ladder) -> str:
    page = Page(f"tierml build: {ladder.app}", f"{len(ladder.variants)} variants measured on {ladder.host}, "
                                              f"{ladder.threads} thread(s)")
    page.heading("One variant per device")
    page.table(["device", "tier", "variant", "precision", "latency ms", "how", "margins / why none"],
               [(r.device, r.tier, r.variant or "none", r.precision or "-",
                 r.latency_ms if r.latency_ms is not None else "-", r.latency_method or "-",
                 "; ".join(m.describe() for m in r.margins) if r.variant else (r.closest_miss or r.reason))
                for r in ladder.rungs])
    page.heading("Variants")
    page.table(["variant", "precision", ladder.quality_metric, "size B", "params", "MACs", "peak act. B",
                "host median ms", "host p99 ms", "x fp32 speed", "flags"],
               [(v.name, v.precision, v.metrics.quality.value if v.metrics.quality else "-", v.metrics.size_bytes,
                 v.metrics.params, v.metrics.macs, v.metrics.peak_activation_bytes,
                 v.metrics.host_latency.median_ms if v.metrics.host_latency else "-",
                 v.metrics.host_latency.p99_ms if v.metrics.host_latency else "-",
                 v.metrics.speedup_vs_fp32 if v.metrics.speedup_vs_fp32 is not None else "-",
                 "; ".join(v.metrics.flags)) for v in ladder.variants])
    _front(page, ladder, "size", "size (bytes, log)")
    _front(page, ladder, "latency", "host median latency (ms, log)")
    page.heading("Lineage")
    for v in ladder.variants:
        steps = " → ".join(f"{p.name}({_options(p.config)})" for p in v.lineage.passes)
        page.text(f"{v.name} (sha256 {v.sha256[:12]}…): {steps}")
        for p in v.lineage.passes:
            for note in p.notes:
                page.text(f"    {p.name}: {note}", "meta")
    if ladder.notes:
        page.heading("Notes")
        for note in ladder.notes:
            page.text(note)
    return page.render()


def _front(page: Page, ladder: Ladder, axis: str, label: str) -> None:
    page.heading(f"{ladder.quality_metric} vs {axis}")
    points, names = [], []
    for v in ladder.variants:
        x = float(v.metrics.size_bytes) if axis == "size" else (
            v.metrics.host_latency.median_ms if v.metrics.host_latency else math.nan)
        if v.metrics.quality is not None and math.isfinite(x):
            points.append((x, v.metrics.quality.value))
            names.append(v.name.removeprefix(f"{ladder.app}-"))
    fig, ax = new_figure(height=4.0)
    ax.scatter([p[0] for p in points], [p[1] for p in points], color="tab:gray", zorder=2, label="variant")
    front = pareto(points)
    ax.plot([points[i][0] for i in front], [points[i][1] for i in front], color="tab:blue", zorder=1,
            label="Pareto front")
    chosen: dict[str, list[str]] = {}
    for rung in ladder.rungs:
        if rung.variant:
            chosen.setdefault(rung.variant.removeprefix(f"{ladder.app}-"), []).append(rung.device)
    for (x, y), name in zip(points, names, strict=True):
        devices = chosen.get(name)
        if devices:
            ax.scatter([x], [y], s=160, facecolors="none", edgecolors="tab:red", linewidths=2, zorder=3)
        ax.annotate(name + (f"\n→ {', '.join(devices)}" if devices else ""), (x, y), fontsize=7,
                    textcoords="offset points", xytext=(6, 4), color="tab:red" if devices else "black")
    ax.axhline(ladder.quality_floor, color="tab:red", linestyle="--", linewidth=1, label="floor")
    ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel(ladder.quality_metric)
    ax.legend(fontsize=8, loc="lower right")
    page.figure(fig, f"Every variant's {ladder.quality_metric} against its {axis}; the line joins the variants "
                     "no other beats on both; circled: chosen for the devices named.")


def _options(config: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items() if v not in ([], None))
