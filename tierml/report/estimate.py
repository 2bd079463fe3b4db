"""`tierml estimate --report`: the model against every device and link."""

from __future__ import annotations

from tierml.hardware.assessment import ModelEstimate
from tierml.report.page import Page, new_figure

_TIER_COLOURS = {"cloud": "tab:blue", "edge": "tab:green", "mobile": "tab:purple", "mcu": "tab:orange"}


def estimate_report(result: ModelEstimate) -> str:
    page = Page(f"tierml estimate: {result.model}", f"{result.macs:,} MACs, {result.params:,} parameters")
    page.text(f"Host latency model: {result.calibration}.", "meta")
    page.text("Method per number: measured = timed on this host; calibrated = this host's model fitted to "
              "measurements; catalogue = computed from catalogue peaks, bandwidths, power and prices.", "meta")
    devices = result.devices
    names = [d.device for d in devices]
    colours = [_TIER_COLOURS.get(d.tier, "tab:gray") for d in devices]

    page.heading("Latency per inference")
    fig, ax = new_figure(height=4.2)
    ax.barh(names[::-1], [d.latency.value for d in devices][::-1], color=colours[::-1])
    if result.measured:
        ax.axvline(result.measured.median_ms, color="black", ls=":", label="measured on host (median)")
        ax.legend()
    ax.set_xscale("log")
    ax.set_xlabel("ms (log); colour = tier: cloud blue, edge green, mobile purple, MCU orange")
    page.figure(fig, "Estimated single-request latency; one request uses one accelerator of a multi-GPU/TPU system.")

    page.heading("Does it fit?")
    fig, ax = new_figure(height=4.2)
    use = [d.ram.need_bytes / d.ram.have_bytes if d.ram.have_bytes else float("inf") for d in devices]
    ax.barh(names[::-1], use[::-1], color=["tab:red" if u > 1 else "tab:green" for u in use][::-1])
    ax.axvline(1.0, color="black", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("RAM needed / RAM available (log); right of 1 = does not fit")
    page.figure(fig, "RAM need: weights + peak activations (on MCUs weights stay in flash).")
    page.table(["device", "tier", "precision", "latency ms", "method", "energy mJ", "RAM need", "RAM have",
                "storage need", "storage have", "fits", "bound by"],
               [(d.device, d.tier, d.precision, d.latency.value, d.latency.method,
                 d.energy.value if d.energy else "-", d.ram.need_bytes, int(d.ram.have_bytes),
                 d.storage.need_bytes if d.storage else "-", int(d.storage.have_bytes) if d.storage else "-",
                 "yes" if d.fits else "no",
                 ", ".join(f"{k} {v:.0%}" for k, v in sorted(d.time_by_bound.items(), key=lambda kv: -kv[1])
                           if v >= 0.005))
                for d in devices])

    with_energy = [d for d in devices if d.energy]
    if with_energy:
        page.heading("Energy per inference")
        fig, ax = new_figure(height=3.8)
        ax.barh([d.device for d in with_energy][::-1], [d.energy.value for d in with_energy][::-1],  # type: ignore[union-attr]
                color=[_TIER_COLOURS.get(d.tier, "tab:gray") for d in with_energy][::-1])
        ax.set_xscale("log")
        ax.set_xlabel("mJ per inference (log): active power x estimated latency")
        page.figure(fig)

    page.heading("Sending the input over each link")
    links = result.links
    fig, ax = new_figure(height=4)
    p50 = [k.latency_p50.value for k in links]
    p95 = [k.latency_p95.value for k in links]
    y = list(range(len(links)))
    ax.barh(y, p50, color="tab:blue", label="p50")
    ax.errorbar(p95, y, fmt="|", color="black", label="p95")
    ax.scatter([max(k.rtt_floor_ms, 1e-3) for k in links], y, marker="x", color="tab:red", label="speed-of-light floor")
    ax.set_yticks(y, [k.link for k in links])
    ax.set_xscale("log")
    ax.set_xlabel("ms round trip with the input up and the output down (log)")
    ax.legend(fontsize=8)
    page.figure(fig)
    page.table(["link", "RTT floor ms", "up B", "down B", "p50 ms", "p95 ms", "radio mJ", "tail J", "USD / 1M req"],
               [(k.link, k.rtt_floor_ms, k.up_bytes, k.down_bytes, k.latency_p50.value, k.latency_p95.value,
                 k.radio_energy.value if k.radio_energy else "-", k.tail_energy_j if k.tail_energy_j else "-",
                 k.cost_per_million.value if k.cost_per_million else "-") for k in links])
    return page.render()
