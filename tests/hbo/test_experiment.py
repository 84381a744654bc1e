"""The tiny 8-language experiment end to end (slow): data, reference model, IFD buckets, HBO
and a static baseline, per-language held-out losses, the report and the plots."""

import math
import os

import pytest

from eurollm_jax.fileio import read_jsonl
from eurollm_jax.hbo.experiment import LANGUAGES, SIZES, run_experiment

pytestmark = pytest.mark.slow


def test_tiny_experiment_runs_and_reports(tmp_path):
    out = str(tmp_path / "exp")
    table = run_experiment(out, steps=50, runs=("hbo", "tau_inf"), reference_steps=20)
    assert set(table["runs"]) == {"hbo", "tau_inf"}
    for name, info in table["runs"].items():
        assert sorted(info["heldout_loss"]) == sorted(LANGUAGES)
        assert all(math.isfinite(v) and 0 < v < 10 for v in info["heldout_loss"].values())
    assert table["runs"]["hbo"]["updates"] == 2 and table["runs"]["tau_inf"]["updates"] == 0
    assert table["runs"]["tau_inf"]["final_p_G"] == pytest.approx(
        {lang: 1 / 8 for lang in LANGUAGES})
    # buckets: 4 equal ones per language, IFD ascending
    buckets = read_jsonl(os.path.join(out, "sft_buckets.jsonl"))
    for lang, size in zip(LANGUAGES, SIZES):
        mine = [r for r in buckets if r["hbo_subset"] == lang]
        assert len(mine) == size
        assert [r["hbo_difficulty"] for r in mine] == sorted(r["hbo_difficulty"] for r in mine)
    report = open(os.path.join(out, "report.md")).read()
    assert "| **mean** |" in report and "tau_inf" in report
    plots = os.listdir(os.path.join(out, "runs", "hbo", "plots"))
    assert {"hbo_p_global.png", "hbo_p_local.png", "hbo_rewards.png"} <= set(plots)
