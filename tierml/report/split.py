"""`tierml split --report`: predicted latency against uplink bandwidth per profiled cut, the choice highlighted."""

from __future__ import annotations

import numpy as np

from tierml.hybrid.cost import LinkState
from tierml.hybrid.planner import SplitPlan
from tierml.report.page import Page, new_figure


def split_report(plan: SplitPlan, title: str) -> str:
    link = plan.link
    page = Page(f"tierml split: {title}", f"{plan.cuts_enumerated} cuts enumerated, {len(plan.profiles)} profiled")
    page.text(f"Link: {link.up_mbps:g} Mbit/s up, {link.down_mbps:g} down, RTT {link.rtt_ms:g} ms. Head and tail "
              "times: measured sub-models on this host (or calibrated estimates for catalogue devices).", "meta")
    page.heading("Latency against uplink bandwidth")
    bandwidths = np.geomspace(plan.table.edges[0] / 1.3, plan.table.edges[-1] * 1.3, 80)
    ratio = link.down_mbps / link.up_mbps
    encodings = sorted({b.encoding for b in plan.ranked if b.encoding != "none"})
    chosen = plan.ranked[0].cut
    fig, ax = new_figure(height=4.8)
    for profile in plan.profiles:
        curve = [min(profile.latency(e, LinkState(m, m * ratio, link.rtt_ms)).total_ms
                     for e in (["none"] if profile.local else encodings)) for m in bandwidths]
        key = profile.cut.key()
        style = {"color": "tab:red", "lw": 2.5, "label": f"chosen at this link: {key[:40]}", "zorder": 3} \
            if key == chosen else {"color": "tab:gray", "lw": 0.8, "alpha": 0.6}
        ax.plot(bandwidths, curve, **style)
    envelope = [plan.table.choices[plan.table.bucket(m)].predicted.total_ms for m in bandwidths]
    ax.step(bandwidths, envelope, where="mid", color="black", ls="--", lw=1, label="table (bucket centres)")
    ax.axvline(link.up_mbps, color="tab:blue", ls=":", label=f"link: {link.up_mbps:g} Mbit/s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("uplink Mbit/s (log)")
    ax.set_ylabel("predicted ms (log), best encoding per cut")
    ax.legend(fontsize=8)
    page.figure(fig, "One grey line per profiled cut (device-only is flat); red: the best at the link.")
    page.heading("Ranked at this link")
    page.table(["cut", "encoding", "up bytes", "head ms", "encode ms", "network ms", "decode ms", "tail ms",
                "total ms"],
               [(b.cut, b.encoding, b.up_bytes, b.head_ms, b.encode_ms, b.network_ms, b.decode_ms, b.tail_ms,
                 b.total_ms) for b in plan.ranked[:15]])
    page.heading("Bandwidth table (what the runtime switches between)")
    edges = [0.0, *plan.table.edges]
    page.table(["from Mbit/s", "cut", "encoding", "predicted ms"],
               [(edges[i], plan.table.cuts[c.cut], c.encoding, c.predicted.total_ms)
                for i, c in enumerate(plan.table.choices)])
    return page.render()
