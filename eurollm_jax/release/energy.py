"""Energy and carbon of a training run: measured where the platform reported it, else estimated.

Per run segment (one start of the trainer, from ``run_records.jsonl``; see
``release.records.RunRecorder``):

- measured: the segment's ``energy_j`` (NVML's per-GPU energy counters, or codecarbon's
  CPU + GPU + RAM energy), in joules of IT (device) energy;
- estimated: ``power_w x units x seconds``, where ``power_w`` is the device's thermal design
  power from ``DEVICE_POWER_W`` (or ``energy.device_power_w``) and ``units`` is the device
  count (for CPUs: the host count, since emulated CPU devices share one package).

Then ``facility kWh = IT kWh x PUE`` and ``CO2e grams = facility kWh x grid intensity``
(``GRID_INTENSITY_G_PER_KWH[region]`` or ``energy.grid_intensity_g_per_kwh``).

Uncertainty, stated on the card: TDP is the cap of a device's draw and training averages
about 50-100% of it, so an estimate's range is [0.5, 1.0] x the TDP figure; NVML's
counters are within about 5%. Neither covers host CPUs, memory and network beyond what PUE
adds, nor the hour-to-hour variation of the grid (the table holds annual averages).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from eurollm_jax.release.config import EnergySection

# (name, case-insensitive substring of jax's device_kind, watts, per "device" | "host", source)
# The first match wins, so specific names come first.
DEVICE_POWER_W: list[tuple[str, str, float, str, str]] = [
    ("NVIDIA B200", "b200", 1000.0, "device", "NVIDIA HGX B200 specification: up to 1,000 W per GPU"),
    ("NVIDIA H200", "h200", 700.0, "device", "NVIDIA H200 SXM datasheet: up to 700 W"),
    ("NVIDIA H100 PCIe", "h100 pcie", 350.0, "device", "NVIDIA H100 PCIe datasheet: 350 W"),
    ("NVIDIA H100", "h100", 700.0, "device", "NVIDIA H100 SXM datasheet: up to 700 W"),
    ("NVIDIA A100 PCIe", "a100-pcie", 300.0, "device", "NVIDIA A100 PCIe datasheet: 300 W"),
    ("NVIDIA A100", "a100", 400.0, "device", "NVIDIA A100 SXM datasheet: 400 W"),
    ("NVIDIA V100", "v100", 300.0, "device", "NVIDIA V100 SXM2 datasheet: 300 W"),
    ("NVIDIA L4", "nvidia l4", 72.0, "device", "NVIDIA L4 datasheet: 72 W"),
    ("TPU v4", "tpu v4", 192.0, "device", "Jouppi et al., ISCA 2023: TPU v4 chip 192 W max (170 W mean)"),
    ("CPU host", "cpu", 85.0, "host", "a generic server CPU package TDP assumption (85 W per host)"),
]

# Approximate annual average carbon intensity of electricity generation, gCO2e/kWh, rounded
# (Ember electricity data, about 2023). Replace with your provider's figure when it is known
# (energy.grid_intensity_g_per_kwh).
GRID_INTENSITY_G_PER_KWH: dict[str, float] = {
    "world": 480.0,
    "EU-27": 250.0,
    "US": 370.0,
    "UK": 220.0,
    "DE": 380.0,
    "ES": 120.0,
    "FI": 80.0,
    "FR": 56.0,
    "IE": 280.0,
    "IT": 330.0,
    "NL": 270.0,
    "PL": 660.0,
    "PT": 150.0,
    "SE": 40.0,
}
GRID_SOURCE = "annual average of the region's electricity (Ember, about 2023; rounded)"
ESTIMATE_RANGE = (0.5, 1.0)  # average draw over TDP during training
MEASURED_RANGE = (0.95, 1.05)  # NVML counters' stated accuracy


class EnergyError(ValueError):
    """Energy cannot be computed from what was recorded; the message names the fix."""


def device_power(device_kind: str) -> tuple[str, float, str, str] | None:
    """(name, watts, "device" | "host", source) for a jax ``device_kind``; None if unknown."""
    kind = device_kind.lower()
    for name, pattern, watts, per, source in DEVICE_POWER_W:
        if pattern in kind:
            return name, watts, per, source
    return None


def grid_intensity(cfg: EnergySection) -> tuple[float, str]:
    """(gCO2e per kWh, where the number comes from)."""
    if cfg.grid_intensity_g_per_kwh > 0:
        return cfg.grid_intensity_g_per_kwh, "energy.grid_intensity_g_per_kwh of the release config"
    if cfg.region not in GRID_INTENSITY_G_PER_KWH:
        raise EnergyError(
            f"energy.region={cfg.region!r} is not in the table ({', '.join(GRID_INTENSITY_G_PER_KWH)}); "
            f"pick one or set energy.grid_intensity_g_per_kwh to your provider's figure")
    return GRID_INTENSITY_G_PER_KWH[cfg.region], f"{cfg.region}: {GRID_SOURCE}"


@dataclasses.dataclass
class EnergyReport:
    method: str  # "measured", "estimate" or "measured + estimate"
    energy_kwh: float  # facility energy (IT energy x PUE)
    it_energy_kwh: float
    co2_g: float
    co2_low_g: float
    co2_high_g: float
    device_hours: float
    pue: float
    grid_g_per_kwh: float
    grid_source: str
    hardware_used: str
    source: str  # co2_eq_emissions.source
    uncertainty: str
    segments: list[dict]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _power(cfg: EnergySection, kind: str) -> tuple[float, str, str]:
    found = device_power(kind)
    per = found[2] if found else "device"
    if cfg.device_power_w > 0:
        return cfg.device_power_w, per, "energy.device_power_w of the release config"
    if found is None:
        raise EnergyError(
            f"no power figure for device kind {kind!r} in release.energy.DEVICE_POWER_W; set "
            f"energy.device_power_w (watts per device) in the release config")
    return found[1], per, f"{found[0]}: {found[3]}"


def _hardware_used(segments: Sequence[Mapping]) -> str:
    seen: dict[tuple[int, str], None] = {}
    for s in segments:
        seen[(int(s["device_count"]), str(s["device_kind"]))] = None
    return ", ".join(f"{n} x {kind}" for n, kind in seen)


def energy_report(segments: Sequence[Mapping[str, Any]], cfg: EnergySection) -> EnergyReport:
    """The energy and CO2e of the run segments (see the module docstring for the method).

    Each segment: ``seconds``, ``device_kind``, ``device_count``, ``process_count`` and
    optionally ``energy_j`` (measured IT energy) with ``energy_source``.
    """
    if not segments:
        raise EnergyError("no run segments to account for (no run records and no metrics)")
    intensity, grid_source = grid_intensity(cfg)
    rows, used = [], set()
    it_kwh = low_kwh = high_kwh = device_hours = 0.0
    for i, s in enumerate(segments):
        seconds = float(s["seconds"])
        count = int(s["device_count"])
        device_hours += count * seconds / 3600.0
        measured = s.get("energy_j")
        if cfg.method == "measured" and measured is None:
            raise EnergyError(
                f"energy.method='measured' but run segment {i} (steps {s.get('first_step')}-"
                f"{s.get('last_step')}) recorded no energy; use method 'auto' or 'estimate'")
        row = {"index": i, "seconds": seconds, "device_kind": s["device_kind"], "device_count": count,
               "first_step": s.get("first_step"), "last_step": s.get("last_step")}
        if measured is not None and cfg.method != "estimate":
            kwh = float(measured) / 3.6e6
            lo, hi = MEASURED_RANGE
            row.update(method="measured", it_kwh=kwh, energy_source=s.get("energy_source", "measured"))
            used.add(f"measured ({s.get('energy_source', 'measured')})")
        else:
            watts, per, power_source = _power(cfg, str(s["device_kind"]))
            units = int(s.get("process_count", 1)) if per == "host" else count
            kwh = watts * units * seconds / 3600.0 / 1000.0
            lo, hi = ESTIMATE_RANGE
            row.update(method="estimate", it_kwh=kwh, power_w=watts, power_per=per, power_units=units,
                       power_source=power_source)
            used.add("estimate (TDP x device-hours)")
        it_kwh += kwh
        low_kwh += lo * kwh
        high_kwh += hi * kwh
        rows.append(row)
    methods = sorted(used)
    method = ("measured" if all(m.startswith("measured") for m in methods) else
              "estimate" if all(m.startswith("estimate") for m in methods) else "measured + estimate")
    pue = cfg.pue
    energy_kwh = it_kwh * pue
    co2 = energy_kwh * intensity
    source = (f"eurollm_jax release: {' + '.join(methods)} x PUE {pue:g} x grid intensity "
              f"{intensity:g} gCO2e/kWh ({grid_source})")
    uncertainty = (
        f"range {low_kwh * pue * intensity:.4g}-{high_kwh * pue * intensity:.4g} g: a TDP estimate "
        f"assumes the devices drew their full rated power (real training averages about "
        f"{ESTIMATE_RANGE[0]:.0%}-{ESTIMATE_RANGE[1]:.0%} of it); measured energy is within about "
        f"{MEASURED_RANGE[1] - 1:.0%}. Host CPUs, memory, storage and network are only counted "
        f"through the PUE, and the grid intensity is an annual average (hourly values vary by "
        f"a factor of two or more)."
    )
    return EnergyReport(
        method=method, energy_kwh=energy_kwh, it_energy_kwh=it_kwh, co2_g=co2,
        co2_low_g=low_kwh * pue * intensity, co2_high_g=high_kwh * pue * intensity,
        device_hours=device_hours, pue=pue, grid_g_per_kwh=intensity, grid_source=grid_source,
        hardware_used=_hardware_used(segments), source=source, uncertainty=uncertainty, segments=rows,
    )
