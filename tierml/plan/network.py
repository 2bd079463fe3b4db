"""Latency of a request over one or more links: each hop's time from the link-transfer model, summed."""

from __future__ import annotations

from dataclasses import dataclass

from tierml.hardware.catalog import FIBRE_KM_PER_S, Link
from tierml.hardware.transfer import link_time


@dataclass(frozen=True)
class Hop:
    link: Link
    up_bytes: int
    down_bytes: int
    floor_ms: float = 0.0  # extra speed-of-light floor from the app's distance to the cloud region
    shared: bool = True  # False for a source's own access link (one per source); True for the site's uplink


def distance_floor_ms(distance_km: float) -> float:
    """Round trip at the speed of light in fibre (~200,000 km/s): 4,000 km each way -> 40 ms."""
    return 2 * distance_km / FIBRE_KM_PER_S * 1e3


@dataclass(frozen=True)
class PathLatency:
    rtt_p50_ms: float
    rtt_p99_ms: float
    transfer_ms: float
    floor_ms: float  # the largest speed-of-light floor on the path

    @property
    def p50_ms(self) -> float:
        return self.rtt_p50_ms + self.transfer_ms

    @property
    def p99_ms(self) -> float:
        return self.rtt_p99_ms + self.transfer_ms


def path_latency(hops: list[Hop]) -> PathLatency:
    """Sum over hops (`tierml.hardware.transfer.link_time`: RTT raised to its floor, duty cycle included)."""
    p50 = p99 = transfer = floor = 0.0
    for hop in hops:
        time = link_time(hop.link, hop.up_bytes, hop.down_bytes, hop.floor_ms)
        p50 += time.rtt_p50_ms
        p99 += time.rtt_p99_ms
        transfer += time.serial_ms
        floor = max(floor, time.floor_ms)
    return PathLatency(p50, p99, transfer, floor)
