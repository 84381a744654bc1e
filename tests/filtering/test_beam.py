"""The Beam pipeline (DirectRunner) writes exactly the local runner's files."""

import filecmp
import os

import pytest

pytestmark = pytest.mark.beam
pytest.importorskip("apache_beam")

from eurollm_jax.filtering import run_local  # noqa: E402
from eurollm_jax.filtering.beam_runner import run_beam  # noqa: E402
from tests.filtering.conftest import multilingual_records, write_jsonl  # noqa: E402


def test_beam_output_equals_local(tmp_path, english_docs, eu_sentences):
    inp = tmp_path / "in"
    inp.mkdir()
    recs = [{"id": d.id, "text": d.text} for d in english_docs[:160]]
    recs += multilingual_records(eu_sentences, copies=2)
    recs.append(dict(recs[5], id="copy"))
    for s in range(3):
        write_jsonl(str(inp / f"s{s}.jsonl") + (".gz" if s == 2 else ""), recs[s::3],
                    ['{"bad json\n'] if s == 1 else ())
    cfg = {"runner": {"progress": False}, "dedup": {"bands": 20, "rows": 5,
                                                    "verify_threshold": 0.5}}
    local = run_local(str(inp / "*"), str(tmp_path / "local"), cfg, num_workers=1)
    beam = run_beam(str(inp / "*"), str(tmp_path / "beam"), cfg)
    assert local["dropped_by_reason"] == beam["dropped_by_reason"]
    assert local["languages"] == beam["languages"]
    assert local["dropped_by_step"]["dedup"] > 0 and local["dropped_by_step"]["input"] == 1
    for sub in ("kept", "dropped"):
        names = sorted(os.listdir(tmp_path / "local" / sub))
        assert names == sorted(os.listdir(tmp_path / "beam" / sub))
        for n in names:
            assert filecmp.cmp(tmp_path / "local" / sub / n, tmp_path / "beam" / sub / n,
                               shallow=False), n
