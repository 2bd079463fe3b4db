"""Latency of a request over one or more links: RTT (never below the speed-of-light floor) plus transfer."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tierml.hardware.catalog import FIBRE_KM_PER_S, Link

# z-scores of the standard normal: RTTs are modelled as log-normal through the catalogue's p50 and p95.
_Z95, _Z99 = 1.6449, 2.3263


@dataclass(frozen=True)
class Hop:
    link: Link
    up_bytes: int
    down_bytes: int
    floor_ms: float = 0.0  # extra speed-of-light floor from the app's distance to the cloud region
    shared: bool = True  # False for a source's own access link (one per source); True for the site's uplink


def rtt_p99(p50: float, p95: float) -> float:
    """p99 of a log-normal through the given p50 and p95."""
    if p50 <= 0 or p95 <= p50:
        return p95
    sigma = math.log(p95 / p50) / _Z95
    return p50 * math.exp(sigma * _Z99)


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
    """Sum over hops; each hop's RTT is raised to its floor (the link's own path or the app's distance)."""
    p50 = p99 = transfer = floor = 0.0
    for hop in hops:
        link = hop.link
        hop_floor = max(link.rtt_floor_ms, hop.floor_ms)
        p50 += max(link.rtt_ms.p50, hop_floor)
        p99 += max(rtt_p99(link.rtt_ms.p50, link.rtt_ms.p95), hop_floor)
        transfer += (hop.up_bytes * 8 / (link.up_mbps.value * 1e6) + hop.down_bytes * 8 / (link.down_mbps.value * 1e6)
                     ) * 1e3
        floor = max(floor, hop_floor)
    return PathLatency(p50, p99, transfer, floor)
