"""What a placement costs: purchases (capex), and per year running, power, operations and bandwidth."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tierml.hardware.catalog import Device, Link
from tierml.hardware.transfer import gb_prices
from tierml.spec.app import Assumptions, CloudOption

HOURS_PER_YEAR = 8760.0
GB = 1e9


@dataclass
class Costs:
    """Capex (bought once per amortisation period) and annual operating costs by item, in USD."""

    capex: float = 0.0
    annual: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, other: Costs) -> Costs:
        merged = dict(self.annual)
        for item, usd in other.annual.items():
            merged[item] = merged.get(item, 0.0) + usd
        return Costs(self.capex + other.capex, merged, [*self.notes, *other.notes])

    def per_year(self, assumptions: Assumptions) -> float:
        """Capex spread over its amortisation period, plus operating costs."""
        return self.capex / assumptions.amortisation_years + sum(self.annual.values())

    def over(self, years: float, assumptions: Assumptions) -> float:
        """Total over a horizon: hardware bought again each amortisation period, plus operating costs."""
        purchases = math.ceil(years / assumptions.amortisation_years - 1e-9)
        return self.capex * purchases + sum(self.annual.values()) * years


def device_energy_usd(device: Device, boxes: int, busy: float, assumptions: Assumptions) -> float:
    """A year of electricity for boxes idling when not busy and at active power when busy."""
    idle = device.power_idle_w.value if device.power_idle_w else 0.0
    active = device.power_active_w.value if device.power_active_w else idle
    watts = boxes * (idle + (active - idle) * min(busy, 1.0))
    return watts * HOURS_PER_YEAR / 1000 * assumptions.electricity_usd_per_kwh


def edge_costs(device: Device, boxes: int, owned: int, busy: float, assumptions: Assumptions) -> Costs:
    """Edge boxes: those not already owned are bought; all draw power and need operations."""
    costs = Costs(annual={
        "edge power": device_energy_usd(device, boxes, busy, assumptions),
        "edge operations": boxes * assumptions.ops_usd_per_device_month * 12,
    })
    bought = max(boxes - owned, 0)
    if bought:
        if device.price_usd is None:
            costs.notes.append(f"{device.name} has no catalogue price: its purchase is counted as $0")
        else:
            costs.capex = bought * device.price_usd.value
    return costs


def request_costs(option: CloudOption, requests_per_year: float) -> Costs:
    """A managed API: its price per inference."""
    assert option.usd_per_request is not None
    return Costs(annual={f"{option.name} requests": requests_per_year * option.usd_per_request})


def function_costs(option: CloudOption, device: Device, requests_per_year: float, service_s: float) -> Costs:
    """Serverless: GB-seconds billed in 1 ms increments, plus the price per invocation."""
    assert device.usd_per_gb_second is not None
    billed_s = math.ceil(service_s * 1000) / 1000
    gb = device.ram_mb.value / 1000
    per_request = gb * billed_s * device.usd_per_gb_second.value
    if device.usd_per_million_requests:
        per_request += device.usd_per_million_requests.value / 1e6
    return Costs(annual={f"{option.name} invocations": requests_per_year * per_request})


def instance_costs(option: CloudOption, device: Device, instances: int) -> Costs:
    """Cloud instances running all year, billed by the hour."""
    if device.usd_per_hour is None:
        return _unpriced(device)
    return Costs(annual={f"{option.name} instances": instances * device.usd_per_hour.value * HOURS_PER_YEAR})


def batch_costs(option: CloudOption, device: Device, requests_per_year: float, service_s: float) -> Costs:
    """Cloud instances billed only while the batch runs, at full utilisation."""
    if device.usd_per_hour is None:
        return _unpriced(device)
    hours = requests_per_year * service_s / 3600 / device.units
    return Costs(annual={f"{option.name} batch instance-hours": hours * device.usd_per_hour.value})


def _unpriced(device: Device) -> Costs:
    return Costs(notes=[f"{device.name} has no hourly price: its cloud cost is counted as $0"])


def bandwidth_costs(bytes_per_day: dict[str, tuple[float, float]], links: dict[str, Link],
                    assumptions: Assumptions) -> Costs:
    """A year of data over each priced link, (up, down) bytes per day; cellular at the spec's price if given."""
    annual = {}
    for name, (up, down) in bytes_per_day.items():
        link = links[name]
        up_price, down_price = gb_prices(link)
        if link.kind == "cellular" and assumptions.cellular_usd_per_gb is not None:
            up_price = down_price = assumptions.cellular_usd_per_gb
        usd = (up * up_price + down * down_price) * 365 / GB
        if usd:
            annual[f"data over {name}"] = usd
    return Costs(annual=annual)
