"""One link-transfer model: the planner's paths, `tierml estimate`, `tierml split` and the runtime agree on it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.plan.test_plan import run_plan, write_spec
from tierml.hardware.catalog import load_catalog
from tierml.hardware.transfer import LinkState, link_time, rate_mbps, transfer
from tierml.hybrid.cost import CutProfile, Wire
from tierml.model.partition import Cut
from tierml.plan.network import Hop, path_latency


def test_a_duty_cycled_link_takes_as_long_on_the_plan_path_as_in_the_estimate():
    lora = load_catalog().link("lora")
    estimate = transfer(lora, up_bytes=1000, down_bytes=40)
    path = path_latency([Hop(lora, 1000, 40)])
    assert path.p50_ms == pytest.approx(estimate.latency_p50.value, rel=1e-12)
    # five 222-byte packets: the radio is silent 99x each of the first four packets' airtime
    airtime_ms = 1000 * 8 / 5470 * 1e3
    assert path.serial_ms == pytest.approx(airtime_ms + 4 * airtime_ms / 5 * 99 + 40 * 8 / 5470 * 1e3)
    assert LinkState.of(lora).time_ms(1000, 40) == pytest.approx(estimate.latency_p50.value, rel=1e-12)


def test_the_plan_charges_the_duty_cycle_of_the_sources_radio(tmp_path):
    path = write_spec(tmp_path, **{
        "requirements.latency": {"p99_ms": 600_000},
        "fleet.source": {"device": "nrf52840-sensor", "count": 100, "link": "lora"},
        "fleet.edge": [{"name": "gateway", "device": "raspberry-pi-5", "count": 1, "link": "wifi-internet"}],
    })
    edge = run_plan(path).candidate("edge:gateway")
    lora = load_catalog().link("lora")
    # digits: a 1x1x8x8 fp32 input (256 B: two packets) and ten fp32 scores back
    expected = transfer(lora, up_bytes=256, down_bytes=40).latency_p50.value
    assert edge.latency_parts_ms["network to gateway"] == pytest.approx(expected, rel=1e-12)
    assert expected > lora.rtt_ms.p50 + 50 * 256 * 8 / 5470 * 1e3  # the silence after the first packet


def test_the_rtt_is_raised_to_the_floor_at_every_quantile():
    lte = load_catalog().link("lte")
    time = link_time(lte, 0, 0, floor_ms=120.0)
    assert time.rtt_p50_ms == 120.0 and time.rtt_p95_ms == 150.0 and time.rtt_p99_ms > 150.0
    assert path_latency([Hop(lte, 0, 0, floor_ms=120.0)]).p99_ms == time.p99_ms


def test_a_split_request_is_priced_by_the_same_model():
    state = LinkState(5.85, 23.4, 60.0)
    cut = CutProfile(Cut(frozenset({0}), ("t",), 4000), head_ms=3.0, tail_ms=2.0, response_bytes=240,
                     wire={"fp32": Wire(4200, 0.1, 0.2)})
    assert cut.latency("fp32", state).network_ms == state.time_ms(4200, 240)


@given(st.floats(1, 1e9), st.floats(1e-3, 1e4))
def test_a_bandwidth_sample_inverts_the_wire_time(nbytes, mbps):
    assert rate_mbps(nbytes, LinkState(mbps, mbps, 0.0).serial_ms(nbytes)) == pytest.approx(mbps, rel=1e-9)
