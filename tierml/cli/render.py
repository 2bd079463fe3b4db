"""Rich tables for what the verbs return (library code never prints; the CLI does, through these)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from tierml.export.mcu import McuExport
from tierml.hardware.assessment import ModelEstimate
from tierml.hardware.calibrate import Calibration
from tierml.hardware.catalog import Catalog, Number
from tierml.model.measure import LatencyStats
from tierml.model.profile import ModelProfile
from tierml.optimize.direct import Optimized
from tierml.optimize.variant import Variant
from tierml.plan.planner import Plan
from tierml.plan.variants import Ladder

if TYPE_CHECKING:  # the registry's verbs pull in the registry; other verbs need not load it to render
    from tierml.registry.store import FsckReport
    from tierml.stages.registering import Published, Releases


def size(n: float) -> str:
    """Bytes in binary units: 37.5 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


def count(n: float) -> str:
    """1.23 G, 4.5 M, 812 k."""
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g} {unit}"
    return f"{n:.3g}"


def profile_view(profile: ModelProfile, top: int = 15) -> Group:
    shapes = ", ".join(t.describe() for t in profile.inputs)
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    mem = profile.memory
    rows = [
        ("model", f"{profile.model}  (sha256 {profile.sha256[:12]})" if profile.sha256 else profile.model),
        ("inputs", shapes),
        ("parameters", f"{profile.params:,}  ("
         + ", ".join(f"{g.dtype} {size(g.bytes)}" for g in profile.params_by_dtype) + ")"),
        ("MACs", f"{profile.macs:,}  ({count(profile.macs)})"),
        ("FLOPs", f"{profile.flops:,}  (2 x MACs + {count(profile.other_flops)} other)"),
        ("weights", size(mem.weight_bytes)),
        ("peak activations", f"{size(mem.peak_activation_bytes)} at node {mem.peak_node} "
         f"({len(mem.live_at_peak)} live tensors; largest {mem.largest_tensor} {size(mem.largest_tensor_bytes)})"),
        ("peak memory", f"{size(mem.peak_total_bytes)} = weights + peak activations, {mem.order}"),
        ("nodes", f"{len(profile.nodes)} ({sum(n.folded for n in profile.nodes)} folded at load time)"),
        ("ops", ", ".join(f"{k} {v}" for k, v in list(profile.op_histogram.items())[:12])),
    ]
    for key, value in rows:
        summary.add_row(key, Text(value))  # Text: model-supplied names must not be read as rich markup
    tiers = Table(title="runtime support per tier", title_justify="left")
    for col in ("tier", "runtime", "supported", "unsupported nodes"):
        tiers.add_column(col)
    for t in profile.tiers:
        bad = ", ".join(sorted({u.op_type for u in t.unsupported}))
        cover = ", ".join(f"{k} {v:.0%}" for k, v in t.accelerator_coverage.items())
        tiers.add_row(t.tier, Text(t.runtime + (f" [{cover}]" if cover else "")),
                      Text("yes", "green") if t.supported else Text(f"no ({len(t.unsupported)})", "red"), Text(bad))
    nodes = Table(title=f"top {top} nodes by FLOPs", title_justify="left")
    for col in ("node", "op", "MACs", "FLOPs", "params", "bytes moved", "FLOP/B"):
        nodes.add_column(col, justify="right" if col not in ("node", "op") else "left")
    for n in sorted((n for n in profile.nodes if not n.folded), key=lambda n: -n.flops)[:top]:
        nodes.add_row(Text(n.name), n.op_type, count(n.macs), count(n.flops), count(n.params), size(n.bytes_moved),
                      f"{n.intensity:.1f}")
    parts: list = [summary, tiers, nodes]
    if profile.notes:
        parts.append(Text("notes: " + "; ".join(profile.notes[:5]), style="yellow"))
    return Group(*parts)


def latency_view(stats: LatencyStats, top: int = 10) -> Group:
    head = Text(f"host latency ({stats.runtime}, {stats.threads} thread(s), {stats.runs} runs after "
                f"{stats.warmup} warm-up): median {stats.median_ms:.3f} ms, p90 {stats.p90_ms:.3f} ms, "
                f"p99 {stats.p99_ms:.3f} ms, min {stats.min_ms:.3f} ms", style="bold")
    if not stats.per_node:
        return Group(head)
    table = Table(title=f"slowest {top} kernels (ORT profiler; includes profiling overhead)", title_justify="left")
    for col in ("node (as run by ORT)", "op", "median us", "share"):
        table.add_column(col, justify="left" if col.startswith(("node", "op")) else "right")
    total = sum(n.median_us for n in stats.per_node) or 1.0
    for n in sorted(stats.per_node, key=lambda n: -n.median_us)[:top]:
        table.add_row(Text(n.node), n.op_type, f"{n.median_us:.1f}", f"{n.median_us / total:.1%}")
    return Group(head, table)


def _fit(need: float, have: float | None) -> Text:
    """`91 KiB / 7.45 GiB (1%)`, red when the need exceeds what the device has."""
    if not have:
        return Text("-")
    used = need / have
    return Text(f"{size(need)} / {size(have)} ({used:.0%})", "green" if used <= 1 else "red")


def estimate_view(result: ModelEstimate) -> Group:
    devices = Table(title=Text(f"{result.model} on each device"), title_justify="left")
    for col in ("device", "tier", "prec", "latency ms", "method", "energy mJ", "RAM need / have (used)",
                "storage need / have (used)", "fits"):
        devices.add_column(col, justify="right" if col in ("latency ms", "energy mJ") else "left")
    for d in result.devices:
        devices.add_row(
            d.device, d.tier, d.precision, f"{d.latency.value:.4g}", d.latency.method,
            f"{d.energy.value:.4g}" if d.energy else "-",
            _fit(d.ram.need_bytes, d.ram.have_bytes),
            _fit(d.storage.need_bytes, d.storage.have_bytes) if d.storage else Text("-"),
            Text("yes", "green") if d.fits else Text("no", "red"),
        )
    links = Table(title="sending the input and receiving the output over each link (catalogue)",
                  title_justify="left")
    for col in ("link", "RTT floor ms", "up / down", "p50 ms", "p95 ms", "radio mJ", "USD / 1M req"):
        links.add_column(col, justify="left" if col in ("link", "up / down") else "right")
    for k in result.links:
        links.add_row(k.link, f"{k.rtt_floor_ms:.3g}", f"{size(k.up_bytes)} / {size(k.down_bytes)}",
                      f"{k.latency_p50.value:.4g}", f"{k.latency_p95.value:.4g}",
                      f"{k.radio_energy.value:.3g}" if k.radio_energy else "-",
                      f"{k.cost_per_million.value:.3g}" if k.cost_per_million else "-")
    parts: list = [devices, links, Text(f"latency on host: {result.calibration}", style="dim")]
    if result.measured:
        host = next((d for d in result.devices if d.device == "host"), None)
        ratio = f" (estimate/measured = {host.latency.value / result.measured.median_ms:.2f})" if host else ""
        parts.append(Text(f"measured on host: median {result.measured.median_ms:.3f} ms{ratio}", style="bold"))
    return Group(*parts)


def _num(n: Number | None, scale: float = 1.0, fmt: str = "{:.4g}") -> str:
    return fmt.format(n.value * scale) if n else "-"


def catalog_view(catalog: Catalog, tier: str | None, show_links: bool) -> Group:
    devices = Table(title="devices", title_justify="left")
    for col in ("name", "tier", "fp32 GFLOP/s", "int8 GOP/s", "GB/s", "RAM MB", "storage MB", "W idle/active",
                "price"):
        devices.add_column(col, justify="left" if col in ("name", "tier", "price") else "right")
    for d in catalog.devices.values():
        if tier and d.tier != tier:
            continue
        price = (f"${d.price_usd.value:,.0f}" if d.price_usd else f"${d.usd_per_hour.value:g}/h" if d.usd_per_hour
                 else f"${d.usd_per_gb_second.value:g}/GB-s" if d.usd_per_gb_second else "-")
        devices.add_row(d.name, d.tier, _num(d.peak_fp32_gflops), _num(d.peak_int8_gops),
                        _num(d.memory_bandwidth_gbps), _num(d.ram_mb), _num(d.storage_mb),
                        f"{_num(d.power_idle_w)}/{_num(d.power_active_w)}", price)
    parts: list = [devices]
    if show_links:
        links = Table(title="links", title_justify="left")
        for col in ("name", "scope", "RTT p50/p95 ms", "floor ms", "up/down Mbit/s", "nJ/bit up", "USD/GB up/down"):
            links.add_column(col, justify="left" if col == "name" else "right")
        for k in catalog.links.values():
            links.add_row(k.name, k.scope, f"{k.rtt_ms.p50:g}/{k.rtt_ms.p95:g}", f"{k.rtt_floor_ms:.3g}",
                          f"{k.up_mbps.value:g}/{k.down_mbps.value:g}", _num(k.energy_nj_per_bit_up),
                          f"{_num(k.usd_per_gb_up)}/{_num(k.usd_per_gb_down)}")
        parts.append(links)
    parts.append(Text("every figure cites a source: tierml devices --json shows them", style="dim"))
    return Group(*parts)


def calibration_view(cal: Calibration) -> Group:
    table = Table(title="efficiency by op class (roofline time / measured time)", title_justify="left")
    for col in ("op class", "samples", "min", "median", "max"):
        table.add_column(col, justify="left" if col == "op class" else "right")
    by: dict[str, list[float]] = {}
    for s in cal.samples:
        by.setdefault(s.op_class, []).append(s.efficiency)
    for name, values in sorted(by.items()):
        values.sort()
        table.add_row(name, str(len(values)), f"{values[0]:.2f}", f"{values[len(values) // 2]:.2f}",
                      f"{values[-1]:.2f}")
    sweep = ", ".join(f"{size(int(k))}: {v:.0f}" for k, v in cal.bandwidth_sweep.items())
    return Group(Text(cal.describe(), style="bold"),
                 Text(f"run overhead {cal.session_overhead_us:.1f} us, per extra node {cal.node_overhead_us:.2f} us; "
                      f"copy GB/s by buffer size: {sweep}"),
                 table)


def _money(usd: float) -> str:
    return f"${usd:,.0f}" if usd >= 100 else f"${usd:,.2f}"


def _rate(bytes_per_day: float) -> str:
    """Mean bit rate of a daily volume: 100 Mbit/s, 2.3 kbit/s."""
    bits = bytes_per_day * 8 / 86_400
    for div, unit in ((1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")):
        if bits >= div:
            return f"{bits / div:.3g} {unit}"
    return f"{bits:.3g} bit/s"


def plan_view(plan: Plan) -> Group:
    table = Table(title=Text(f"tierml plan: {plan.app} ({len(plan.feasible)} of {len(plan.candidates)} feasible)"),
                  title_justify="left")
    for col in ("#", "candidate", "p50 ms", "p99 ms", "USD/year", "energy mJ", "battery h", "upstream",
                "why not"):
        table.add_column(col, justify="left" if col in ("candidate", "why not") else "right")
    for c in plan.candidates:
        binding = c.binding
        table.add_row(
            str(c.rank) if c.rank else "-", Text(c.name, style="bold green" if c.name == plan.winner else ""),
            f"{c.latency_p50.value:.3g}", f"{c.latency_p99.value:.3g}", _money(c.annual_cost.value),
            f"{c.energy_per_inference.value:.3g}" if c.energy_per_inference else "-",
            f"{c.battery_hours.value:.3g}" if c.battery_hours else "-", _rate(c.upstream_bytes_per_day.value),
            Text(f"{binding.constraint}: {binding.message}" if binding else "", style="red"),
        )
    parts: list = [table, Text("why:", style="bold")]
    parts.extend(Text(f"  {line}") for line in plan.trace)
    if plan.warnings:
        parts.append(Text("warnings:", style="bold yellow"))
        parts.extend(Text(f"  {w}", style="yellow") for w in plan.warnings)
    if plan.winner:
        best = plan.candidate(plan.winner)
        parts.append(Text(f"winner: {best.name}: {best.summary}", style="bold green"))
        parts.extend(Text(f"  note: {n}", style="dim") for n in best.notes)
    else:
        parts.append(Text("no feasible candidate: relax a requirement or add devices to the fleet", style="bold red"))
    parts.append(Text(f"latency on host: {plan.calibration}; queueing: {plan.queueing}", style="dim"))
    return Group(*parts)


def _variants_table(title: str, variants: list[Variant], metric: str) -> Table:
    table = Table(title=Text(title), title_justify="left")
    for col in ("variant", "precision", metric, "size", "MACs", "peak act.", "host ms", "x fp32", "flags"):
        table.add_column(col, justify="left" if col in ("variant", "precision", "flags") else "right")
    for v in variants:
        m = v.metrics
        table.add_row(v.name, v.precision, f"{m.quality.value:.4f}" if m.quality else "-", f"{m.size_bytes:,}",
                      f"{m.macs:,}", f"{m.peak_activation_bytes:,}",
                      f"{m.host_latency.median_ms:.3g}" if m.host_latency else "-",
                      f"{m.speedup_vs_fp32:.2f}" if m.speedup_vs_fp32 is not None else "-", "; ".join(m.flags))
    return table


def ladder_view(ladder: Ladder) -> Group:
    variants = _variants_table(f"tierml build: {ladder.app} — {len(ladder.variants)} variants (written to "
                               f"{ladder.out})", ladder.variants, ladder.quality_metric)
    rungs = Table(title=Text(f"one variant per device ({ladder.quality_metric} floor {ladder.quality_floor:.4f})"),
                  title_justify="left")
    for col in ("device", "tier", "variant", "latency ms", "margins (or the closest miss)"):
        rungs.add_column(col, justify="right" if col == "latency ms" else "left")
    for r in ladder.rungs:
        detail = ("; ".join(m.describe() for m in r.margins) if r.variant else r.reason)
        rungs.add_row(r.device, r.tier, r.variant or Text("none", style="red"),
                      f"{r.latency_ms:.3g} ({r.latency_method})" if r.latency_ms is not None else "-", detail)
    notes = [Text(f"note: {n}", style="dim") for n in ladder.notes]
    return Group(variants, rungs, *notes)


def optimized_view(result: Optimized) -> Group:
    table = _variants_table(f"tierml optimize: {result.variant.name} (written to {result.variant.path})",
                            [result.parent, result.variant], result.variant.metrics.quality.metric
                            if result.variant.metrics.quality else "quality")
    lines = [Text(f"{p.name}: {note}", style="dim") for p in result.variant.lineage.passes for note in p.notes]
    return Group(table, *lines)


def mcu_export_view(result: McuExport) -> Group:
    """`tierml export --target mcu`: sizes, fit per MCU with margins, and the verification."""
    summary = Table(title=f"MCU export of {result.model} -> {result.out_dir}", title_justify="left", show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    summary.add_column("how", style="dim")
    summary.add_row("layers (in place)", f"{result.layers} ({result.in_place_layers})", "")
    summary.add_row("MACs", count(result.macs), "")
    summary.add_row("flash", f"{result.flash_bytes:,} B",
                    f"{result.weight_bytes:,} B int8 weights, {result.const_bytes:,} B constants; "
                    f"{result.flash_method}")
    summary.add_row("RAM", f"{result.ram_bytes:,} B",
                    f"arena {result.arena_bytes:,} B (one buffer per tensor: {result.naive_arena_bytes:,} B) + stack "
                    f"{result.stack_bytes:,} B ({result.stack_method}) + input/output {result.io_bytes:,} B")
    fits = Table(title="fit", title_justify="left")
    for col in ("device", "flash budget", "flash margin", "RAM budget", "RAM margin", "fits"):
        fits.add_column(col, justify="left" if col in ("device", "fits") else "right")
    for f in result.fits:
        verdict = Text("yes", style="green") if f.fits else Text(f"no ({f.binding})", style="red")
        fits.add_row(f.device, size(f.flash_budget_bytes), f"{f.flash_margin_bytes:,} B", size(f.ram_budget_bytes),
                     f"{f.ram_margin_bytes:,} B", verdict)
    parts: list = [summary, fits]
    v = result.verification
    if v is not None:
        check = Table(title=f"verification on {v.inputs} inputs against {v.golden}", title_justify="left")
        for col in ("build", "int8 outputs", "instructions / inference", "insn / MAC", "arena"):
            check.add_column(col, justify="left" if col in ("build", "int8 outputs") else "right")

        def exact(ok: bool, mismatches: int) -> Text:
            return Text("bit-exact", style="green") if ok else Text(f"{mismatches} differ", style="red")

        check.add_row("host gcc" + (" (ASan/UBSan)" if v.sanitized else ""), exact(v.host_bit_exact, v.host_mismatches),
                      "-", "-", f"{result.arena_bytes:,} B = {v.arena_vs_tflm:.2f} x TFLM's {v.tflm_arena_bytes:,} B")
        for run in v.qemu:
            check.add_row(f"{run.board} {run.kernels} (QEMU)", exact(run.bit_exact, run.mismatches),
                          f"{run.instructions:,}" if run.instructions else "-",
                          f"{run.instructions_per_mac:.2f}" if run.instructions_per_mac else "-", "")
        parts += [check, Text(f"vs the fp32 model: max |error| {v.float_max_abs_error:.4g}, argmax agreement "
                              f"{v.float_argmax_agreement:.0%}", style="dim")]
    return Group(*parts)


def split_view(data: dict) -> Group:
    """`tierml split`: the ranked (cut, encoding) options with their predicted latency breakdown."""
    link = data["link"]
    title = (f"tierml split: {data['model']} on {data['device']} -> {data['server']} over {link} "
             f"({data['cuts_enumerated']} cuts{'' if data['exhaustive'] else ' (prefixes)'}, "
             f"{data['candidates_profiled']} profiled)")
    table = Table(title=Text(title), title_justify="left")
    for col in ("#", "cut (head nodes: crossing tensors)", "encoding", "up bytes", "head", "encode", "network",
                "decode", "tail", "total ms"):
        table.add_column(col, justify="left" if col.startswith(("cut", "enc")) else "right")
    for rank, b in enumerate(data["ranked"], 1):
        cut = b["cut"] if len(b["cut"]) <= 60 else b["cut"][:57] + "..."
        table.add_row(str(rank), Text(cut, style="bold green" if rank == 1 else ""), b["encoding"],
                      f"{b['up_bytes']:,}", *(f"{b[k]:.3g}" for k in ("head_ms", "encode_ms", "network_ms",
                                                                        "decode_ms", "tail_ms", "total_ms")))
    state = data["link_state"]
    parts: list = [table]
    parts.append(Text(f"exact min cut (additive per-node costs): {data['min_cut']['cut'][:60]} "
                      f"-> {data['min_cut']['total_ms']:.3g} ms measured; chain scan (prefixes only): "
                      f"{data['chain_scan']['cut'][:60]} -> {data['chain_scan']['total_ms']:.3g} ms", style="dim"))
    parts.append(Text(f"link: {state['up_mbps']:g} Mbit/s up, {state['down_mbps']:g} down, RTT {state['rtt_ms']:g} ms; "
                      f"device = {data['device']} x {data['device_factor']:g}", style="dim"))
    return Group(*parts)


def releases_view(result: Releases) -> Table:
    table = Table(title=f"releases in {result.registry}", title_justify="left")
    for column in ("model", "version", "created", "manifest"):
        table.add_column(column, justify="right" if column == "version" else "left")
    for row in result.releases:
        table.add_row(row.model, str(row.version), row.created[:19].replace("T", " "), row.manifest_sha256[:16])
    if not result.releases:
        table.caption = "no releases yet: tierml registry publish SPEC --build OUT --key KEY ROOT"
    return table


def fsck_view(report: FsckReport) -> Group:
    verdict = Text("whole" if report.clean else f"{len(report.problems)} problem(s)",
                   style="green" if report.clean else "bold red")
    lines: list[Text | Table] = [Text.assemble(f"{report.releases} release(s), {report.blobs} blob(s): ", verdict)]
    lines += [Text(f"  {problem}", style="red") for problem in report.problems]
    if report.unreferenced:
        lines.append(Text(f"{len(report.unreferenced)} unreferenced blob(s) (tierml registry gc removes them)",
                          style="dim"))
    return Group(*lines)


def published_view(result: Published) -> Group:
    table = Table(title=f"{result.model} v{result.version} in {result.registry}", title_justify="left")
    table.add_column("device class")
    table.add_column("variant")
    for device, variant in result.devices.items():
        table.add_row(device, variant)
    summary = Text(f"manifest {result.manifest_sha256[:16]}; {result.uploaded} artifact(s) stored, {result.skipped} "
                   "already there", style="dim")
    return Group(table, summary, *(Text(f"note: {note}", style="yellow") for note in result.notes))
