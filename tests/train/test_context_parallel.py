"""Training with a sequence mesh axis: exact resume, the same losses as without context
parallelism, and a row length that cannot split is refused before anything is written."""

import os

import numpy as np
import pytest

from eurollm_jax.fileio import read_jsonl
from eurollm_jax.train import TrainConfigError, train
from tests.train.helpers import override, small_config


def _config(sequence=2, **dotted):
    config = small_config(mesh=(1, 2, 2), steps=4)  # data, fsdp, tensor
    config.mesh.sequence = sequence
    config.checkpoint.every = 2
    return override(config, **{"data.source": "text", "data.languages": ("en", "de"), **dotted})


def _losses(workdir):
    return {r["step"]: r["loss"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))}


def test_exact_resume_with_a_sequence_axis(tmp_path):
    straight = str(tmp_path / "straight")
    assert train(_config(), straight).step == 4
    resumed = str(tmp_path / "resumed")
    assert train(override(_config(), **{"train.stop_after": 2}), resumed).stopped_early
    assert train(_config(), resumed).step == 4
    assert _losses(straight) == _losses(resumed)  # bitwise, every step


@pytest.mark.slow
def test_losses_equal_the_run_without_context_parallelism(tmp_path):
    cp = str(tmp_path / "cp")
    train(_config(sequence=4, **{"model.context_parallel": "ring"}), cp)
    plain = str(tmp_path / "plain")
    config = _config(sequence=1)
    config.mesh.fsdp = 4
    train(config, plain)
    a, b = _losses(cp), _losses(plain)
    np.testing.assert_allclose([a[s] for s in sorted(a)], [b[s] for s in sorted(b)], rtol=2e-5)


def test_row_length_that_cannot_split_is_refused_up_front(tmp_path):
    workdir = tmp_path / "run"
    with pytest.raises(TrainConfigError, match=r"seq_len \(34\) must split into 2 x mesh.sequence"):
        train(_config(**{"train.seq_len": 34}), str(workdir))
    assert not workdir.exists()
