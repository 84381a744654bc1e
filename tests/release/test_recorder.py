"""RunRecorder on a real (tiny) training run: one record per trainer start, and a release of
the run computes its compute and energy from them."""

import os

import pytest

from eurollm_jax.fileio import read_jsonl
from eurollm_jax.release import ReleaseConfig, RunRecorder, build_release
from eurollm_jax.train import train
from tests.train.helpers import override, small_config


@pytest.mark.slow  # two trainer starts (two compilations); the demo exercises the same path in CI
def test_run_records_of_a_resumed_run_feed_the_release(tmp_path):
    pytest.importorskip("huggingface_hub")
    import eurollm_jax

    config = override(small_config(mesh=(2, 2, 2), steps=4, stop_after=2),
                      **{"data.source": "text", "data.languages": ("en", "de"), "eval.every": 4,
                         "checkpoint.every": 2, "checkpoint.export_params": True})
    work = str(tmp_path / "w")
    first = train(config, work, hooks=[RunRecorder()])
    config.train.stop_after = 0
    second = train(config, work, hooks=[RunRecorder()])
    assert first.stopped_early and second.step == 4
    runs = read_jsonl(os.path.join(work, "run_records.jsonl"))
    assert [(r["first_step"], r["last_step"], r["completed"]) for r in runs] == [(0, 2, True), (2, 4, True)]
    assert all(r["device_count"] == 8 and r["device_kind"] == "cpu" and r["process_count"] == 1 for r in runs)
    assert all(r["energy_j"] is None and r["seconds"] > 0 for r in runs)  # no counters on CPU

    export = str(tmp_path / "hf")
    eurollm_jax.save_hf_checkpoint(eurollm_jax.load_params(os.path.join(work, "params")), export)
    cfg = ReleaseConfig.from_mapping({"energy": {"pue": 1.0, "grid_intensity_g_per_kwh": 200.0}})
    result = build_release(work, export, str(tmp_path / "release"), cfg)
    seconds = sum(r["seconds"] for r in runs)
    assert result.co2_g == pytest.approx(85.0 * seconds / 3600 / 1000 * 200.0, rel=1e-12)  # one CPU host
    assert any("no token manifest" in w for w in result.warnings)
    card = open(result.card, encoding="utf-8").read()
    assert "language:\n- de\n- en\n" in card  # from the training config's data.languages
    assert any("license" in w or "licence" in w for w in result.warnings)


class _Device:
    def __init__(self, i, platform="gpu", kind="NVIDIA H100 80GB HBM3"):
        self.id = self.local_hardware_id = i
        self.process_index, self.platform, self.device_kind = 0, platform, kind


def _fake_trainer(workdir, devices):
    import types

    import numpy as np

    mesh = types.SimpleNamespace(devices=np.array(devices, dtype=object))
    return types.SimpleNamespace(workdir=str(workdir), job=types.SimpleNamespace(mesh=mesh))


def test_nvml_energy_counters_are_read_at_start_and_end(tmp_path, monkeypatch):
    import sys
    import types

    counters = {0: 1_000_000, 1: 5_000_000, 2: 0, 3: 0}  # mJ since driver load, per NVML index
    fake = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlShutdown=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetTotalEnergyConsumption=lambda h: counters[h])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # jax's local GPUs 0, 1 are NVML's 2, 3
    hook = RunRecorder()
    hook.on_start(_fake_trainer(tmp_path, [_Device(0), _Device(1)]), 5)
    counters[2] += 600_000  # 600 J
    counters[3] += 400_000
    counters[0] += 10**9  # another process's GPU: not counted
    import types as t

    hook(t.SimpleNamespace(step=6))
    hook.on_end(t.SimpleNamespace(step=7))
    hook.close()
    (rec,) = read_jsonl(os.path.join(tmp_path, "run_records.jsonl"))
    assert rec["energy_j"] == pytest.approx(1000.0) and rec["energy_source"] == "NVML total energy counters"
    assert (rec["first_step"], rec["last_step"], rec["completed"], rec["device_count"]) == (5, 7, True, 2)


def test_without_pynvml_auto_records_no_energy_and_explicit_nvml_fails(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)  # import raises ImportError
    hook = RunRecorder()
    hook.on_start(_fake_trainer(tmp_path, [_Device(0)]), 0)
    hook.close()
    (rec,) = read_jsonl(os.path.join(tmp_path, "run_records.jsonl"))
    assert rec["energy_j"] is None and rec["completed"] is False  # closed without on_end: an error/kill
    with pytest.raises(ImportError):
        RunRecorder(energy="nvml").on_start(_fake_trainer(tmp_path, [_Device(0)]), 0)
    with pytest.raises(ValueError, match="energy="):
        RunRecorder(energy="rapl")


@pytest.mark.slow  # codecarbon's tracker takes several seconds to start
def test_codecarbon_tracker_measures_a_cpu_run(tmp_path):
    pytest.importorskip("codecarbon")
    import types

    hook = RunRecorder(energy="codecarbon", country_iso_code="FRA")
    hook.on_start(_fake_trainer(tmp_path, [_Device(0, "cpu", "cpu")]), 0)
    sum(i * i for i in range(2_000_000))
    hook.on_end(types.SimpleNamespace(step=1))
    hook.close()
    (rec,) = read_jsonl(os.path.join(tmp_path, "run_records.jsonl"))
    assert rec["energy_j"] > 0 and rec["energy_source"].startswith("codecarbon")
