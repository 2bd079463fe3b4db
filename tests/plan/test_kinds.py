"""Placement kinds are classes over a topology of tiers: a new kind plugs in unedited, hybrids pair tiers in order."""

from __future__ import annotations

import pytest

from tests.support.paths import DIGITS
from tierml.hardware.calibrate import Calibration, HostInfo, Sample
from tierml.hardware.catalog import load_catalog
from tierml.hardware.roofline import RooflineEstimator
from tierml.model.load import load_onnx
from tierml.model.profile import analyze
from tierml.plan.capacity import Capacity
from tierml.plan.context import Context
from tierml.plan.kind import PlacementKind
from tierml.plan.layout import Layout, Work
from tierml.plan.placements import layouts
from tierml.plan.planner import plan
from tierml.plan.topology import Site, Topology
from tierml.spec.app import AppSpec, EdgeSpec

# Every op at half the host's roofline: enough to give each device a latency.
CALIBRATION = Calibration(
    created="2026-01-01T00:00:00+00:00", threads=1,
    host=HostInfo(cpu="test cpu", logical_cores=1, isa=[], onnxruntime="x", python="3"),
    matmul_gflops=100.0, memory_gbps=20.0, bandwidth_sweep={}, session_overhead_us=0.0, node_overhead_us=0.0,
    samples=[Sample(op_class="elementwise", case="flat", flops=1000, bytes=1000, seconds=1.0, efficiency=0.5)],
    seconds_taken=0.0)


def context(fleet: dict) -> Context:
    spec = AppSpec.model_validate({
        "name": "kinds", "model": {"path": str(DIGITS)},
        "requirements": {"throughput": {"requests_per_day": 5e8, "peak_rps": 20_000}},  # a busy shared box queues
        "fleet": fleet})
    profile = analyze(load_onnx(DIGITS), {"input": (1, 1, 8, 8)})
    return Context(spec, load_catalog(), profile, RooflineEstimator(CALIBRATION))


@pytest.fixture
def registry(monkeypatch):
    """A copy of the kind registry for the test, so the kinds it defines stay out of every other test's plans."""
    monkeypatch.setattr(PlacementKind, "registry", dict(PlacementKind.registry))


def test_a_kind_defined_here_is_enumerated_scored_and_ranked_without_editing_the_planner(registry):
    class Dedicated(PlacementKind):
        """The whole model on an edge box of its own for each data source: no shared queue."""

        name = "dedicated"
        family = "on-site"

        def enumerate(self, topology: Topology, ctx: Context) -> list[Layout]:
            return [Layout(self, f"dedicated:{site.label}", f"a {site.device.name} per source",
                           [Work("all", site, ctx.model, 1.0, ctx.input_bytes, True)])
                    for site in topology.sites() if site.position == "edge"]

        def capacity(self, ctx: Context, work: Work, service_s: float, notes: list[str]) -> Capacity:
            return Capacity(ctx.sources, 0.0, 0.0)

    ctx = context({"source": {"device": "raspberry-pi-5", "count": 20, "link": "ethernet-lan", "runs_models": False},
                   "edge": [{"name": "gw", "device": "raspberry-pi-5", "count": 1, "link": "wifi-internet"}],
                   "cloud": {"distance_km": 500, "options": [{"name": "vm", "device": "aws-c7i-xlarge"}]}})
    result = plan(ctx, CALIBRATION.describe(), "kinds.yaml")

    toy, shared = result.candidate("dedicated:gw"), result.candidate("edge:gw")
    assert toy.kind == "dedicated"
    assert [c.name for c in result.candidates if c.kind == "dedicated"] == ["dedicated:gw"]
    # Its own capacity hook: twenty boxes and no queue where the one shared gateway queues.
    assert (toy.stages[0].boxes, shared.stages[0].boxes) == (20, 1)
    queue = shared.latency_parts_ms["queue at gw"]
    assert queue > 0 and "queue at gw" not in toy.latency_parts_ms
    assert toy.latency_p50.value == pytest.approx(shared.latency_p50.value - queue)
    # Costs it did not define come from the kind hosting its site (edge boxes bought and run).
    price = ctx.catalog.device("raspberry-pi-5").price_usd.value
    assert (toy.capex.value, shared.capex.value) == (pytest.approx(20 * price), pytest.approx(price))
    assert toy.feasible and toy.rank is not None  # through the constraints and the ranking like the built-ins
    assert result.trace[0].startswith("5 candidates")


def test_hybrids_pair_every_site_with_every_site_of_a_later_tier_in_order():
    ctx = context({"source": {"device": "raspberry-pi-5", "count": 4, "link": "wifi-internet"},
                   "edge": [{"name": "a", "device": "intel-nuc12-pro", "link": "wifi-internet"},
                            {"name": "b", "device": "jetson-orin-nano", "link": "wifi-internet"}],
                   "cloud": {"options": [{"name": "c1", "device": "aws-c7i-xlarge"},
                                         {"name": "c2", "device": "aws-lambda-2gb"}]}})
    found = layouts(ctx)
    # The two edge options are alternatives of one tier: paired with the source and the cloud, never each other.
    assert [layout.name for layout in found if layout.kind.name == "cascade"] == [
        "cascade:raspberry-pi-5->a", "cascade:raspberry-pi-5->b", "cascade:raspberry-pi-5->c1",
        "cascade:raspberry-pi-5->c2", "cascade:a->c1", "cascade:a->c2", "cascade:b->c1", "cascade:b->c2"]
    names = [layout.name for layout in found]
    assert names[:6] == ["local:raspberry-pi-5", "edge:a", "edge:b", "cloud:c1", "serverless:c2",
                         "cascade:raspberry-pi-5->a"]  # single sites first, tier by tier
    assert [layout.kind.name for layout in found[5:8]] == ["cascade", "split", "offload"]  # a pair's kinds together

    # Four tiers (a site gateway before a regional edge): every earlier tier meets every later one.
    catalog = ctx.catalog
    topology = Topology([[Site("source", catalog.device("raspberry-pi-5"))],
                         [Site("edge", catalog.device("raspberry-pi-5"), edge=EdgeSpec(name="gateway",
                                                                                       device="raspberry-pi-5"))],
                         [Site("edge", catalog.device("intel-nuc12-pro"), edge=EdgeSpec(name="regional",
                                                                                        device="intel-nuc12-pro"))],
                         [Site("cloud", catalog.device("aws-c7i-xlarge"), cloud=ctx.spec.fleet.cloud.options[0])]])
    cascades = PlacementKind.registry["cascade"]().enumerate(topology, ctx)
    assert [layout.name for layout in cascades] == [
        "cascade:raspberry-pi-5->gateway", "cascade:raspberry-pi-5->regional", "cascade:raspberry-pi-5->c1",
        "cascade:gateway->regional", "cascade:gateway->c1", "cascade:regional->c1"]
    tiers = [[work.site.tier for work in layout.stages] for layout in cascades]
    assert tiers == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
