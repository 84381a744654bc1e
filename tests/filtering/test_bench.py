"""`python -m launch.bench filter` runs and prints one JSON line with both chains' numbers."""

import json

import pytest

from eurollm_jax.filtering import bench


def test_bench_smoke(capsys):
    pytest.importorskip("datatrove")
    pytest.importorskip("spacy")
    assert bench.main(["launch.bench filter", "--docs=60", "--repeats=1"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["docs"] == 60 and out["ours_docs_per_s_per_core"] > 0
    assert out["datatrove_docs_per_s_per_core"] > 0 and out["keep_drop_agreement"] >= 0.95
