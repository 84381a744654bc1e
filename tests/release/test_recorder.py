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
