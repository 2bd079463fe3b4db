"""Energy per inference on battery devices, average power, and battery life."""

from __future__ import annotations

SECONDS_PER_DAY = 86_400.0


def average_power_w(idle_w: float, energy_per_inference_j: float, inferences_per_s: float) -> float:
    return idle_w + energy_per_inference_j * inferences_per_s


def battery_hours(battery_wh: float, power_w: float) -> float:
    return battery_wh / power_w if power_w > 0 else float("inf")


def battery_share_per_day(energy_per_inference_j: float, inferences_per_hour: float, battery_wh: float) -> float:
    """Fraction of a battery the inferences of one day use (100/h at 0.1 J on 18.5 Wh -> 0.36%)."""
    joules = energy_per_inference_j * inferences_per_hour * 24
    return joules / 3600 / battery_wh
