"""Sending a model's input over a link and getting its output back: time, device radio energy, money."""

from __future__ import annotations

import math

from pydantic import BaseModel

from tierml.hardware.catalog import Link
from tierml.hardware.estimate import Estimate


class LinkEstimate(BaseModel):
    """One request/response round over one link."""

    link: str
    title: str
    up_bytes: int
    down_bytes: int
    rtt_floor_ms: float
    latency_p50: Estimate
    latency_p95: Estimate
    radio_energy: Estimate | None  # mJ on the device, excluding the radio tail
    tail_energy_j: float | None
    cost_per_million: Estimate | None  # USD per million requests
    packets: int | None = None  # when the link caps the payload size
    notes: list[str] = []


def gb_prices(link: Link) -> tuple[float, float]:
    """USD per GB sent up (from the device) and down."""
    return (link.usd_per_gb_up.value if link.usd_per_gb_up else 0.0,
            link.usd_per_gb_down.value if link.usd_per_gb_down else 0.0)


def serial_time_ms(link: Link, up_bytes: int, down_bytes: int) -> float:
    """Time on the wire each way; a duty-cycled radio waits between transmissions (1% duty -> 100x airtime)."""
    airtime_up = up_bytes * 8 / (link.up_mbps.value * 1e6)
    if link.duty_cycle and up_bytes:
        packet = link.max_payload_bytes.value if link.max_payload_bytes else up_bytes
        packets = math.ceil(up_bytes / packet)
        # every packet but the last is followed by the silence the duty cycle imposes
        airtime_up += (packets - 1) * (airtime_up / packets) * (1 / link.duty_cycle.value - 1)
    return (airtime_up + down_bytes * 8 / (link.down_mbps.value * 1e6)) * 1e3


def transfer(link: Link, up_bytes: int, down_bytes: int) -> LinkEstimate:
    """Round trip = RTT + upload time + download time, at the catalogue's p50 and p95 RTT."""
    serial_ms = serial_time_ms(link, up_bytes, down_bytes)
    packets = None
    notes = []
    rtt50, rtt95 = link.rtt_ms.p50, link.rtt_ms.p95
    if link.max_payload_bytes:
        packets = math.ceil(up_bytes / link.max_payload_bytes.value)
        if packets > 1:
            notes.append(f"input needs {packets} packets of <= {link.max_payload_bytes.value:g} B on {link.name}")
    if link.duty_cycle:
        notes.append(f"{link.name} may transmit {link.duty_cycle.value:.0%} of the time: the upload takes "
                     f"{serial_ms / 1e3:,.1f} s")
    basis = (f"RTT {rtt50:g}/{rtt95:g} ms (p50/p95) + {up_bytes:,} B up at {link.up_mbps.value:g} Mbit/s "
             f"+ {down_bytes:,} B down at {link.down_mbps.value:g} Mbit/s")
    energy = None
    if link.energy_nj_per_bit_up is not None:
        down_nj = link.energy_nj_per_bit_down.value if link.energy_nj_per_bit_down else 0.0
        mj = (up_bytes * 8 * link.energy_nj_per_bit_up.value + down_bytes * 8 * down_nj) * 1e-6
        energy = Estimate(value=mj, unit="mJ", method="catalogue",
                          basis=f"{link.energy_nj_per_bit_up.value:g} nJ/bit up, {down_nj:g} nJ/bit down")
    cost = None
    if link.usd_per_gb_up is not None or link.usd_per_gb_down is not None:
        up_price, down_price = gb_prices(link)
        usd = (up_bytes * up_price + down_bytes * down_price) / 1e9 * 1e6
        cost = Estimate(value=usd, unit="USD/1M requests", method="catalogue",
                        basis=f"{up_price:g} USD/GB up, {down_price:g} USD/GB down")
    return LinkEstimate(
        link=link.name, title=link.title, up_bytes=up_bytes, down_bytes=down_bytes, rtt_floor_ms=link.rtt_floor_ms,
        latency_p50=Estimate(value=rtt50 + serial_ms, unit="ms", method="catalogue", basis=basis),
        latency_p95=Estimate(value=rtt95 + serial_ms, unit="ms", method="catalogue", basis=basis),
        radio_energy=energy, tail_energy_j=link.tail_energy_j.value if link.tail_energy_j else None,
        cost_per_million=cost, packets=packets, notes=notes,
    )
