"""The PlacementKind interface: one way to place the model over the fleet's tiers, one class per kind.

A kind registers itself by `name` when its class is defined; `tierml plan` asks every registered kind
for the layouts the fleet allows and scores them with the hooks below. The built-in kinds are in
`tierml.plan.kinds`, one module each. A hybrid's stage runs as the kind that hosts its site (the
cascade's escalation to a serverless function queues, scales and pays as a serverless placement).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal

from tierml.plan.candidate import Offline, Stage
from tierml.plan.capacity import Capacity
from tierml.plan.context import Context
from tierml.plan.economics import Costs
from tierml.plan.layout import Layout, Work
from tierml.plan.split import Breakdown
from tierml.plan.topology import Site, Topology

# on-site: where the data is (device, browser, edge box); cloud: a datacentre answering each request;
# deferred: answers later (batch); hybrid: stages on more than one tier.
Family = Literal["on-site", "cloud", "deferred", "hybrid"]


class PlacementKind(ABC):
    """One kind of placement. Subclasses set `name` and `family` and implement `enumerate`."""

    name: ClassVar[str]
    family: ClassVar[Family]
    registry: ClassVar[dict[str, type[PlacementKind]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            PlacementKind.registry[cls.name] = cls

    @abstractmethod
    def enumerate(self, topology: Topology, ctx: Context) -> list[Layout]:
        """The layouts of this kind the fleet allows."""

    def hosts(self, site: Site) -> bool:
        """Whether hybrids' stages at `site` run as this kind does (so a host defines `capacity` and `costs`)."""
        return False

    def capacity(self, ctx: Context, work: Work, service_s: float, notes: list[str]) -> Capacity:
        """Boxes and queueing for one stage at its share of the peak load; by default as its site's host."""
        return host(work.site).capacity(ctx, work, service_s, notes)

    def costs(self, ctx: Context, work: Work, stage: Stage) -> Costs:
        """A year of one stage beyond the data sources' own costs; by default as its site's host."""
        return host(work.site).costs(ctx, work, stage)

    def cut(self, ctx: Context, layout: Layout, notes: list[str]) -> Breakdown | None:
        """Where the model is cut between stages, once each stage has its part of the work; None for no cut."""
        return None

    def offline(self, layout: Layout, links: list[str]) -> Offline:
        """How the placement fares when its links are down; by default it needs them."""
        return "fails" if links else "works"


def host(site: Site) -> PlacementKind:
    """The registered kind that hosts `site`."""
    for cls in PlacementKind.registry.values():
        kind = cls()
        if kind.hosts(site):
            return kind
    raise ValueError(f"no placement kind hosts {site.label} ({site.position}); give one a `hosts` that accepts it")
