"""Multi-host HBO: 2 processes x 4 CPU devices compute the same rewards and mixtures on every
process, equal to a single-process run of the same job (the gradient norm is over the whole
gradient, the PPL ratios over the whole probe set)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from eurollm_jax.hbo.run import run
from eurollm_jax.train.hooks import FunctionHook
from tests.hbo.helpers import hbo_config, two_subset_records, write_records
from tests.train.test_processes import ROOT, _env, _reserved_port, _wait

pytestmark = pytest.mark.slow


def test_two_processes_agree_on_rewards(tmp_path):
    sft_file = write_records(tmp_path / "sft.jsonl", two_subset_records())
    out = tmp_path / "out"
    out.mkdir()
    script = os.path.join(ROOT, "tests", "hbo", "process_script.py")
    with _reserved_port() as port:
        procs = [subprocess.Popen(
            [sys.executable, script, sft_file, str(tmp_path / "multi"), str(out)],
            env=_env(devices=4, EUROLLM_COORDINATOR=f"127.0.0.1:{port}",
                     EUROLLM_NUM_PROCESSES="2", EUROLLM_PROCESS_ID=str(i)),
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(2)]
        _wait(procs)
    p0 = json.loads((out / "process_0.json").read_text())
    p1 = json.loads((out / "process_1.json").read_text())
    assert p0 == p1  # bitwise the same rewards, actors and mixture on both processes
    assert "hbo/R_G/noise" in p0["metrics"]["2"] and "hbo/R_L/learn/b0" in p0["metrics"]["4"]

    seen = {}

    def record(info):
        seen[str(info.step)] = {k: v for k, v in info.metrics.items()
                                if k.startswith("hbo/") and k != "hbo/reward_time_s"}

    config = hbo_config(sft_file, steps=4, mesh=(2, 2, 2))
    config.data.shards = 2
    run(config, str(tmp_path / "single"), hooks=[FunctionHook(record, 1, name="record")])
    assert sorted(seen) == sorted(p0["metrics"])
    for step, values in seen.items():
        keys = sorted(values)
        assert keys == sorted(p0["metrics"][step])
        np.testing.assert_allclose([p0["metrics"][step][k] for k in keys],
                                   [values[k] for k in keys], rtol=1e-5)
