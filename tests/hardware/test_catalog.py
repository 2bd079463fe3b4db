"""The device and link catalogue: every number sourced and dated; user files validated with line numbers."""

from __future__ import annotations

import re
import textwrap

import pytest

from tierml.errors import TiermlError
from tierml.hardware.catalog import load_catalog, read_catalog_file

SEED_DEVICES = {"dgx-a100", "tpu-v4-pod", "jetson-agx-orin", "intel-nuc12-pro", "iphone-15-pro",
                "arduino-nano-33-ble-sense", "esp32-cam", "raspberry-pi-5", "jetson-orin-nano", "coral-usb"}
SEED_LINKS = {"fibre-same-zone", "fibre-same-region", "fibre-cross-continent", "wifi-lan", "wifi-internet", "lte",
              "5g", "ble", "lora", "satellite-leo"}


def test_builtin_catalog_covers_the_seed_table_and_cloud_offers():
    catalog = load_catalog()
    assert set(catalog.devices) >= SEED_DEVICES
    assert set(catalog.links) >= SEED_LINKS
    kinds = {d.kind for d in catalog.devices.values()}
    assert {"cpu-instance", "gpu-instance", "serverless"} <= kinds
    assert any(d.usd_per_hour for d in catalog.devices.values() if d.kind == "cpu-instance")
    assert any(d.usd_per_gb_second for d in catalog.devices.values() if d.kind == "serverless")
    for device in catalog.devices.values():
        assert device.tier in ("cloud", "edge", "mobile", "mcu")
        assert device.memory_bandwidth_gbps.value > 0 and device.ram_mb.value > 0


def test_every_number_cites_a_dated_source():
    catalog = load_catalog()
    cited = [n for d in catalog.devices.values() for n in d.numbers().values()]
    cited += [n for k in catalog.links.values() for n in k.numbers().values()]
    cited += [k.rtt_ms for k in catalog.links.values()]
    assert len(cited) > 150
    for number in cited:
        source = catalog.sources[number.source]
        assert re.fullmatch(r"\d{4}(-\d{2}){0,2}", source.date), source


def test_speed_of_light_floor():
    catalog = load_catalog()
    assert catalog.link("fibre-us-east-west").rtt_floor_ms == pytest.approx(40.0)  # 4,000 km in fibre
    assert catalog.link("satellite-geo").rtt_floor_ms == pytest.approx(477.5, abs=0.5)
    for link in catalog.links.values():
        assert link.rtt_ms.p50 >= link.rtt_floor_ms


def test_user_catalog_adds_and_replaces(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(textwrap.dedent("""
        sources:
          lab: {title: "our lab measurement", date: "2026-11"}
        devices:
          - name: raspberry-pi-5
            title: Pi 5 as measured in our lab
            tier: edge
            kind: edge-cpu
            peak_fp32_gflops: {value: 60, source: lab}
            memory_bandwidth_gbps: {value: 9, source: lab}
            ram_mb: {value: 4000, source: lab}
          - name: gateway-x
            title: Our gateway
            tier: edge
            kind: edge-cpu
            peak_fp32_gflops: {value: 20, source: mlsysbook}
            memory_bandwidth_gbps: {value: 5, source: lab}
            ram_mb: {value: 1000, source: lab}
    """))
    catalog = load_catalog([path])
    assert catalog.device("raspberry-pi-5").peak_fp32_gflops.value == 60  # replaced
    assert catalog.device("gateway-x").ram_mb.value == 1000  # added, citing a built-in source too
    assert "jetson-orin-nano" in catalog.devices


def write(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, """
        devices:
          - name: a
            title: [unclosed
    """)
    with pytest.raises(TiermlError, match=r"bad\.yaml:\d+: malformed YAML"):
        read_catalog_file(path)


def test_wrong_field_names_file_line_and_field(tmp_path):
    path = write(tmp_path, """
        sources:
          s: {title: t, date: "2024"}
        devices:
          - name: box
            title: Box
            tier: edge
            kind: edge-cpu
            peak_fp32_gflops: {value: 10, source: s}
            memory_bandwidth_gbps: {value: fast, source: s}
            ram_mb: {value: 100, source: s}
    """)
    with pytest.raises(TiermlError) as info:
        read_catalog_file(path)
    assert re.search(r"bad\.yaml:9: devices\[box\]\.memory_bandwidth_gbps\.value: .*number", str(info.value))


@pytest.mark.parametrize(("body", "expected"), [
    ("""
        devices:
          - name: box
            title: Box
            tier: fog
            kind: x
            peak_fp32_gflops: {value: 1, source: mlsysbook}
            memory_bandwidth_gbps: {value: 1, source: mlsysbook}
            ram_mb: {value: 1, source: mlsysbook}
     """, r":4: devices\[box\]\.tier"),
    ("""
        devices:
          - name: box
            title: Box
            tier: edge
            kind: x
            peak_fp32_gflops: {value: 1, source: nowhere}
            memory_bandwidth_gbps: {value: 1, source: mlsysbook}
            ram_mb: {value: 1, source: mlsysbook}
     """, r":6: devices\[box\]\.peak_fp32_gflops\.source: source 'nowhere' is not in the 'sources' table"),
    ("""
        links:
          - name: slow
            title: slow
            kind: wan
            rtt_ms: {p50: 10, p95: 20, source: mlsysbook}
            up_mbps: {value: 1, source: mlsysbook}
            down_mbps: {value: 1, source: mlsysbook}
            path_km: {value: 5000, source: mlsysbook}
     """, r"links\[slow\]: .*below the speed-of-light floor 50\.0 ms"),
    ("""
        links:
          - name: a
            title: a
            title: b
     """, r":4: key 'title' is given twice"),
    ("- just\n- a list\n", r":1: a catalog file is a YAML mapping"),
])
def test_invalid_entries_are_reported_precisely(tmp_path, body, expected):
    with pytest.raises(TiermlError, match=expected):
        read_catalog_file(write(tmp_path, body))


def test_unknown_device_suggests_the_closest_name():
    with pytest.raises(TiermlError, match="did you mean 'raspberry-pi-5'"):
        load_catalog().device("raspbery-pi-5")
