"""Bytes over a link -> time, device radio energy, money: the one link-transfer model every caller uses.

A link at one moment (`LinkState`: rates each way, a round trip, a radio's duty cycle and packet size)
turns bytes into milliseconds; a catalogue `Link` adds its RTT distribution (p50 / p95, and a log-normal
p99 through them) and a speed-of-light floor (`link_time`). The planner's paths, `tierml estimate`'s
link table, `tierml split`'s cut ranking and the split runtime's bandwidth estimate all go through here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from pydantic import BaseModel

from tierml.hardware.catalog import Link
from tierml.hardware.estimate import Estimate

# z-scores of the standard normal: RTTs are modelled as log-normal through the catalogue's p50 and p95.
_Z95, _Z99 = 1.6449, 2.3263


def _wire_s(nbytes: float, mbps: float) -> float:
    return math.inf if mbps <= 0 else nbytes * 8 / (mbps * 1e6)


def rate_mbps(nbytes: float, ms: float) -> float:
    """The rate (Mbit/s) that moves `nbytes` in `ms`: a bandwidth sample from one timed transfer."""
    return nbytes * 8 / (ms * 1e3)


def bytes_in(ms: float, mbps: float) -> float:
    """How many bytes `mbps` Mbit/s moves in `ms`."""
    return mbps * 1e6 / 8 * (ms / 1e3)


@dataclass(frozen=True)
class LinkState:
    """A link at one moment: Mbit/s each way, the round trip (ms), and the limits of a duty-cycled radio."""

    up_mbps: float
    down_mbps: float
    rtt_ms: float
    duty_cycle: float | None = None  # share of the time the radio may transmit (LoRa EU868: 0.01)
    max_payload_bytes: float | None = None  # largest packet; more bytes go in several

    @classmethod
    def of(cls, link: Link, rtt_ms: float | None = None) -> LinkState:
        """A catalogue link at its median RTT (or `rtt_ms`)."""
        return cls(link.up_mbps.value, link.down_mbps.value, link.rtt_ms.p50 if rtt_ms is None else rtt_ms,
                   link.duty_cycle.value if link.duty_cycle else None,
                   link.max_payload_bytes.value if link.max_payload_bytes else None)

    def packets(self, up_bytes: float) -> int:
        """Packets the upload needs (one when the link has no payload cap)."""
        return math.ceil(up_bytes / self.max_payload_bytes) if self.max_payload_bytes else 1

    def serial_ms(self, up_bytes: float, down_bytes: float = 0) -> float:
        """Time on the wire each way; a duty-cycled radio waits between packets (1% duty -> 100x airtime)."""
        airtime_up = _wire_s(up_bytes, self.up_mbps)
        packets = self.packets(up_bytes)
        if self.duty_cycle and packets > 1:
            # every packet but the last is followed by the silence the duty cycle imposes
            airtime_up += (packets - 1) * (airtime_up / packets) * (1 / self.duty_cycle - 1)
        return (airtime_up + _wire_s(down_bytes, self.down_mbps)) * 1e3

    def time_ms(self, up_bytes: float, down_bytes: float = 0) -> float:
        """One request/response: the round trip plus both transfers."""
        return self.rtt_ms + self.serial_ms(up_bytes, down_bytes)

    def to_dict(self) -> dict[str, float]:
        """The figures that are set (a radio's limits only when it has them)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def rtt_p99(p50: float, p95: float) -> float:
    """p99 of a log-normal through the given p50 and p95."""
    if p50 <= 0 or p95 <= p50:
        return p95
    sigma = math.log(p95 / p50) / _Z95
    return p50 * math.exp(sigma * _Z99)


@dataclass(frozen=True)
class LinkTime:
    """One request/response over a catalogue link or a path of them (ms): RTT quantiles (floored) + serialisation."""

    rtt_p50_ms: float
    rtt_p95_ms: float
    rtt_p99_ms: float
    serial_ms: float
    floor_ms: float  # the speed-of-light floor the RTTs were raised to (a path's largest)

    @property
    def p50_ms(self) -> float:
        return self.rtt_p50_ms + self.serial_ms

    @property
    def p95_ms(self) -> float:
        return self.rtt_p95_ms + self.serial_ms

    @property
    def p99_ms(self) -> float:
        return self.rtt_p99_ms + self.serial_ms


def link_time(link: Link, up_bytes: float, down_bytes: float, floor_ms: float = 0.0) -> LinkTime:
    """Time over `link`; its RTT is never below its own path's floor nor `floor_ms` (e.g. the app's distance)."""
    floor = max(link.rtt_floor_ms, floor_ms)
    p50, p95 = link.rtt_ms.p50, link.rtt_ms.p95
    return LinkTime(max(p50, floor), max(p95, floor), max(rtt_p99(p50, p95), floor),
                    LinkState.of(link).serial_ms(up_bytes, down_bytes), floor)


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


def transfer(link: Link, up_bytes: int, down_bytes: int) -> LinkEstimate:
    """Round trip = RTT + upload time + download time, at the catalogue's p50 and p95 RTT."""
    time = link_time(link, up_bytes, down_bytes)
    packets = None
    notes = []
    if link.max_payload_bytes:
        packets = LinkState.of(link).packets(up_bytes)
        if packets > 1:
            notes.append(f"input needs {packets} packets of <= {link.max_payload_bytes.value:g} B on {link.name}")
    if link.duty_cycle:
        notes.append(f"{link.name} may transmit {link.duty_cycle.value:.0%} of the time: the upload takes "
                     f"{time.serial_ms / 1e3:,.1f} s")
    basis = (f"RTT {link.rtt_ms.p50:g}/{link.rtt_ms.p95:g} ms (p50/p95) + {up_bytes:,} B up at "
             f"{link.up_mbps.value:g} Mbit/s + {down_bytes:,} B down at {link.down_mbps.value:g} Mbit/s")
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
        latency_p50=Estimate(value=time.p50_ms, unit="ms", method="catalogue", basis=basis),
        latency_p95=Estimate(value=time.p95_ms, unit="ms", method="catalogue", basis=basis),
        radio_energy=energy, tail_energy_j=link.tail_energy_j.value if link.tail_energy_j else None,
        cost_per_million=cost, packets=packets, notes=notes,
    )
