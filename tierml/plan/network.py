"""Latency of a request over one or more links: each hop's time from the link-transfer model, summed."""

from __future__ import annotations

from dataclasses import dataclass

from tierml.hardware.catalog import FIBRE_KM_PER_S, Link
from tierml.hardware.transfer import LinkTime, link_time


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


def path_latency(hops: list[Hop]) -> LinkTime:
    """Sum over hops of `link_time` (RTT raised to its floor, duty cycle included); the floor is the largest."""
    p50 = p95 = p99 = serial = floor = 0.0
    for hop in hops:
        time = link_time(hop.link, hop.up_bytes, hop.down_bytes, hop.floor_ms)
        p50 += time.rtt_p50_ms
        p95 += time.rtt_p95_ms
        p99 += time.rtt_p99_ms
        serial += time.serial_ms
        floor = max(floor, time.floor_ms)
    return LinkTime(p50, p95, p99, serial, floor)
