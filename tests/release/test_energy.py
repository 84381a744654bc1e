"""Energy and CO2e: the estimate equals a hand computation; measured energy is used when recorded."""

import pytest

from eurollm_jax.release.config import EnergySection
from eurollm_jax.release.energy import EnergyError, energy_report
from tests.release.helpers import RUNS


def test_tdp_estimate_equals_hand_computation():
    cfg = EnergySection(pue=1.2, region="FR")
    rep = energy_report(RUNS, cfg)
    # 8 H100 (700 W, the table's datasheet figure) x (3600 + 1800) s = 8 x 700 W x 1.5 h = 8.4 kWh
    assert rep.it_energy_kwh == pytest.approx(8.4, rel=1e-12)
    assert rep.energy_kwh == pytest.approx(8.4 * 1.2, rel=1e-12)
    assert rep.co2_g == pytest.approx(8.4 * 1.2 * 56.0, rel=1e-12)  # France: 56 gCO2e/kWh
    assert rep.device_hours == pytest.approx(8 * 1.5, rel=1e-12)
    assert rep.co2_low_g == pytest.approx(0.5 * rep.co2_g) and rep.co2_high_g == pytest.approx(rep.co2_g)
    assert rep.method == "estimate" and rep.hardware_used == "8 x NVIDIA H100 80GB HBM3"
    assert "PUE 1.2" in rep.source and "56 gCO2e/kWh" in rep.source


def test_cpu_power_counts_hosts_not_emulated_devices_and_overrides_apply():
    seg = [{"seconds": 7200.0, "device_kind": "cpu", "device_count": 8, "process_count": 2}]
    rep = energy_report(seg, EnergySection(pue=1.0, grid_intensity_g_per_kwh=100.0))
    assert rep.it_energy_kwh == pytest.approx(85 * 2 * 2 / 1000)  # 85 W per host, 2 hosts, 2 h
    assert rep.co2_g == pytest.approx(85 * 2 * 2 / 1000 * 100.0)
    rep = energy_report(seg, EnergySection(pue=1.0, device_power_w=50.0, region="SE"))
    assert rep.co2_g == pytest.approx(50 * 2 * 2 / 1000 * 40.0)


def test_measured_energy_wins_and_mixes_with_estimates():
    measured = [dict(RUNS[0], energy_j=3.6e6 * 2.0, energy_source="NVML total energy counters"), RUNS[1]]
    rep = energy_report(measured, EnergySection(pue=1.0, grid_intensity_g_per_kwh=300.0))
    assert rep.method == "measured + estimate"
    assert rep.it_energy_kwh == pytest.approx(2.0 + 8 * 0.7 * 0.5)
    assert rep.co2_g == pytest.approx((2.0 + 2.8) * 300.0)
    assert rep.co2_low_g == pytest.approx((0.95 * 2.0 + 0.5 * 2.8) * 300.0)
    est = energy_report(measured, EnergySection(method="estimate", pue=1.0, grid_intensity_g_per_kwh=300.0))
    assert est.it_energy_kwh == pytest.approx(8.4)
    with pytest.raises(EnergyError, match="segment 1"):
        energy_report(measured, EnergySection(method="measured"))


def test_unknown_device_and_region_name_the_fix():
    seg = [{"seconds": 10.0, "device_kind": "TPU v5 lite", "device_count": 4, "process_count": 1}]
    with pytest.raises(EnergyError, match="energy.device_power_w"):
        energy_report(seg, EnergySection())
    with pytest.raises(EnergyError, match="grid_intensity_g_per_kwh"):
        energy_report(RUNS, EnergySection(region="Atlantis"))
