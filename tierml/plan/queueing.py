"""Waiting time at a shared server: M/D/c (Poisson arrivals, fixed service time, c servers).

Erlang C gives the M/M/c wait exactly; for deterministic service the mean wait is close to half of it
(the Allen-Cunneen approximation with a service-time coefficient of variation of 0), and the p99 wait
is taken from the M/M/c exponential tail, halved the same way. Say "M/D/c (Allen-Cunneen)" when quoting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

METHOD = "M/D/c, Allen-Cunneen approximation (half the M/M/c wait; p99 from the M/M/c tail, halved)"


@dataclass(frozen=True)
class Queue:
    """Waiting before service at a shared tier."""

    servers: int
    utilisation: float
    mean_wait_s: float
    p99_wait_s: float

    @property
    def stable(self) -> bool:
        return self.utilisation < 1


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits, for `offered` = arrival rate x service time (Erlangs)."""
    if offered <= 0:
        return 0.0
    if offered >= servers:
        return 1.0
    # Sum terms iteratively (a^k / k!) to stay stable for large c.
    term, total = 1.0, 1.0
    for k in range(1, servers):
        term *= offered / k
        total += term
    last = term * offered / servers  # a^c / c!
    tail = last * servers / (servers - offered)
    return tail / (total + tail)


def md_c(arrival_rate: float, service_s: float, servers: int) -> Queue:
    """Wait at `servers` identical servers each taking `service_s` per request, arrivals at `arrival_rate`/s."""
    offered = arrival_rate * service_s
    utilisation = offered / servers if servers else math.inf
    if utilisation >= 1:
        return Queue(servers, utilisation, math.inf, math.inf)
    waits = erlang_c(servers, offered)
    drain = servers / service_s - arrival_rate  # rate at which the queue empties (M/M/c)
    mean = waits / drain / 2
    p99 = math.log(waits / 0.01) / drain / 2 if waits > 0.01 else 0.0
    return Queue(servers, utilisation, mean, p99)


def servers_for(arrival_rate: float, service_s: float, target_utilisation: float, per_box: int = 1) -> int:
    """Fewest boxes (each with `per_box` servers) that keep utilisation at or below the target."""
    needed = arrival_rate * service_s / target_utilisation
    return max(1, math.ceil(needed / per_box))
