"""`tierml plan --report`: the candidates, why they were ruled out, and the numbers behind the winner."""

from __future__ import annotations

from tierml.plan.candidate import Candidate
from tierml.plan.planner import Plan
from tierml.report.page import Page, new_figure


def plan_report(plan: Plan) -> str:
    page = Page(f"tierml plan: {plan.app}", f"{plan.model}: {plan.macs:,} MACs, {plan.params:,} parameters")
    page.heading("Decision")
    if plan.winner:
        best = plan.candidate(plan.winner)
        page.text(f"Winner: {best.name} ({best.summary}).")
    else:
        page.text("No candidate meets every constraint.", "bad")
    for line in plan.trace:
        page.text(line)
    for warning in plan.warnings:
        page.text(warning, "bad")
    page.table(["rank", "candidate", "kind", "p50 ms", "p99 ms", "USD/year", "USD over horizon", "energy mJ",
                "battery h", "upstream B/day", "ruled out by"],
               [(c.rank or "-", c.name, c.kind, c.latency_p50.value, c.latency_p99.value, c.annual_cost.value,
                 c.horizon_cost.value, c.energy_per_inference.value if c.energy_per_inference else "-",
                 c.battery_hours.value if c.battery_hours else "-", c.upstream_bytes_per_day.value,
                 f"{c.binding.constraint}: {c.binding.message}" if c.binding else "") for c in plan.candidates])
    page.text(f"How numbers were obtained: latency {plan.candidates[0].latency_p50.method if plan.candidates else ''}"
              f" ({plan.calibration}); queueing {plan.queueing}; prices, power and links from the catalogue; "
              + (f"accuracy measured ({plan.accuracy.basis})." if plan.accuracy else "accuracy not measured."),
              "meta")
    _latency(page, plan.candidates)
    _costs(page, plan)
    _energy(page, plan.candidates)
    _bandwidth(page, plan.candidates)
    page.heading("Assumptions")
    page.table(["assumption", "value"], list(plan.assumptions.model_dump().items()))
    return page.render()


def _latency(page: Page, candidates: list[Candidate]) -> None:
    page.heading("Latency breakdown (p50)")
    fig, ax = new_figure(height=max(3.0, 0.28 * len(candidates) + 1))
    names = [c.name for c in candidates][::-1]
    left = [0.0] * len(names)
    groups = ["network", "queue", "compute"]
    colours = {"network": "tab:blue", "queue": "tab:orange", "compute": "tab:green"}
    for group in groups:
        values = [sum(v for k, v in c.latency_parts_ms.items() if k.startswith(group)) for c in candidates][::-1]
        ax.barh(names, values, left=left, color=colours[group], label=group)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.scatter([c.latency_p99.value for c in candidates][::-1], names, marker="|", color="black", s=120, label="p99")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("ms (symmetric log)")
    ax.legend(fontsize=8)
    page.figure(fig, "Network (RTT never below the speed-of-light floor, plus transfer), queueing at shared tiers "
                     "and compute, per candidate; the tick marks p99.")


def _costs(page: Page, plan: Plan) -> None:
    page.heading("Cost")
    _cost_items(page, plan.candidates)
    b = plan.break_even
    if b is None:
        page.text("No break-even: it needs a feasible all-cloud and a feasible all-on-site candidate.")
        return
    fig, ax = new_figure()
    volumes = [point[0] for point in b.curve]
    ax.plot(volumes, [point[1] for point in b.curve], label=b.cloud)
    ax.plot(volumes, [point[2] for point in b.curve], label=b.onsite)
    if b.requests_per_day:
        ax.axvline(b.requests_per_day, color="black", ls=":", label=f"break-even {b.requests_per_day:,.0f}/day")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("requests per day (log)")
    ax.set_ylabel("USD per year (log)")
    ax.legend(fontsize=8)
    payback = f" The on-site purchase pays back in {b.payback_days:,.0f} days." if b.payback_days else ""
    page.figure(fig, "Annual cost of the best cloud and the best on-site candidate as the volume changes."
                + payback)


def _cost_items(page: Page, candidates: list[Candidate]) -> None:
    items = sorted({item for c in candidates for item in c.cost_parts})
    if not items:
        return
    fig, ax = new_figure(height=max(3.0, 0.28 * len(candidates) + 1))
    names = [c.name for c in candidates][::-1]
    left = [0.0] * len(names)
    for item in items:
        values = [c.cost_parts.get(item, 0.0) for c in candidates][::-1]
        ax.barh(names, values, left=left, label=item)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("USD per year")
    ax.legend(fontsize=7)
    page.figure(fig, "Annual cost by item: hardware amortised over its life, power, operations, cloud compute and "
                     "data.")


def _energy(page: Page, candidates: list[Candidate]) -> None:
    with_battery = [c for c in candidates if c.battery_hours]
    if not with_battery:
        return
    page.heading("Battery life of the data source")
    fig, ax = new_figure(height=max(3.0, 0.28 * len(with_battery) + 1))
    ax.barh([c.name for c in with_battery][::-1], [c.battery_hours.value for c in with_battery][::-1],  # type: ignore[union-attr]
            color="tab:purple")
    ax.set_xscale("log")
    ax.set_xlabel("hours on one charge (log)")
    page.figure(fig)


def _bandwidth(page: Page, candidates: list[Candidate]) -> None:
    page.heading("Bandwidth")
    fig, ax = new_figure(height=max(3.0, 0.28 * len(candidates) + 1))
    names = [c.name for c in candidates][::-1]
    ax.barh(names, [max(c.upstream_bytes_per_day.value * 8 / 86_400, 1e-3) for c in candidates][::-1],
            color="tab:blue", label="leaving the devices")
    ax.barh(names, [max(c.wide_area_bytes_per_day.value * 8 / 86_400, 1e-3) for c in candidates][::-1],
            color="tab:red", alpha=0.5, label="over wide-area links")
    ax.set_xscale("log")
    ax.set_xlabel("mean bit/s, whole fleet (log)")
    ax.legend(fontsize=8)
    page.figure(fig)
