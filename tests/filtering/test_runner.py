"""The local runner end to end: outputs, report, bad input, resume, and a run killed midway
(SIGKILL to the whole process group) then restarted loses and duplicates no document."""

import filecmp
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from eurollm_jax.filtering import read_output, run_local
from tests.filtering.conftest import multilingual_records, write_jsonl

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BAD_LINES = ['{"id": "broken", "text": \n', '{"id": "empty", "text": ""}\n', '"just a string"\n']


def make_inputs(d, english_docs, eu_sentences, shards=8):
    os.makedirs(d, exist_ok=True)
    recs = [{"id": doc.id, "text": doc.text, "url": f"https://site{i % 7}.example/{doc.id}"}
            for i, doc in enumerate(english_docs)]
    recs += multilingual_records(eu_sentences, copies=2)
    import copy

    from eurollm_jax.filtering import fineweb_heuristics

    steps = fineweb_heuristics()
    good = [i for i, doc in enumerate(english_docs)
            if all(s.filter(copy.deepcopy(doc)) is None for s in steps)]
    recs.append(dict(recs[good[0]], id="exact-copy", original=recs[good[0]]["id"]))
    recs.append(dict(recs[good[1]], id="spaced-copy", original=recs[good[1]]["id"],
                     text=recs[good[1]]["text"].replace(". ", ".  ")))
    ids = []
    for s in range(shards):
        part = recs[s::shards]
        name = f"part{s}.jsonl" + (".gz" if s % 3 == 1 else "")
        write_jsonl(os.path.join(d, name), part, BAD_LINES if s == 0 else ())
        ids += [r["id"] for r in part]
        if s == 0:  # ids of the bad lines default to <shard>/<row>
            n0 = len(part)
            ids += [f"part0/{n0}", "empty", f"part0/{n0 + 2}", f"part0/{n0 + 3}"]
    with open(os.path.join(d, "part0.jsonl"), "ab") as f:
        f.write(b'{"id": "latin1", "text": "caf\xe9"}\n')
    return ids


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, english_docs, eu_sentences):
    d = str(tmp_path_factory.mktemp("inputs"))
    ids = make_inputs(d, english_docs, eu_sentences)
    return d, ids


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("reference"))
    report = run_local(os.path.join(inputs[0], "*"), out, {"runner": {"progress": False}},
                       num_workers=1)
    return out, report


def _all_ids(out):
    return [r["id"] for r in read_output(out, "kept") + read_output(out, "dropped")]


def test_outputs_and_report(inputs, reference):
    _, ids = inputs
    out, report = reference
    got = _all_ids(out)
    assert len(got) == len(set(got))
    assert sorted(got) == sorted(ids) and len(got) == report["documents"]
    dropped = {r["id"]: r["drop_reason"] for r in read_output(out, "dropped")}
    assert dropped["empty"] == "input:empty_document"
    bad = [i for i in ids if i.startswith("part0/")]
    assert dropped[bad[-1]] == "input:invalid_utf8"
    assert {dropped[k] for k in dropped if k.startswith("part0/")} >= {"input:malformed_json"}
    kept = read_output(out, "kept")
    kept_ids = {r["id"] for r in kept}
    dups = {r["id"]: r for r in read_output(out, "dropped")}
    for copy_id in ("exact-copy", "spaced-copy"):
        orig = next(r for r in kept + list(dups.values()) if r["id"] == copy_id)
        orig = orig["metadata"].get("original")
        pair = {copy_id, orig}
        (loser,) = pair - kept_ids
        (winner,) = pair & kept_ids
        assert dups[loser]["drop_reason"] == "dedup:exact_duplicate"
        assert dups[loser]["metadata"]["duplicate_of"] == winner
    assert kept and all("drop_reason" not in r for r in kept)
    assert all(r["metadata"]["language"] in ("en",) or len(r["metadata"]["language"]) == 2
               for r in kept)
    assert {r["metadata"]["language"] for r in kept} >= {"en", "fr", "mt", "ga", "hr", "el", "bg"}
    for f in ("report.json", "report.md", "report.csv", "report.png"):
        assert os.path.getsize(os.path.join(out, f)) > 0
    langs = {row["language"]: row for row in report["languages"]}
    assert langs["en"]["documents"] >= 600 and "unknown" in langs
    assert report["kept"] + report["dropped"] == report["documents"]
    assert set(report["dropped_by_step"]) >= {"input", "language_id", "gopher_quality",
                                              "gopher_repetition", "dedup"}


def test_resume_is_a_no_op_and_config_change_is_refused(inputs, reference, tmp_path):
    out, report = reference
    before = {f: os.path.getmtime(os.path.join(out, "kept", f)) for f in os.listdir(
        os.path.join(out, "kept"))}
    again = run_local(os.path.join(inputs[0], "*"), out, {"runner": {"progress": False}},
                      num_workers=1)
    assert again["dropped_by_reason"] == report["dropped_by_reason"]
    assert before == {f: os.path.getmtime(os.path.join(out, "kept", f)) for f in before}
    with pytest.raises(ValueError, match="other inputs or another config"):
        run_local(os.path.join(inputs[0], "*"), out, {"dedup": {"bands": 20, "rows": 5}})


@pytest.mark.parametrize("kill_at", ["stage1", "stage3"])
def test_killed_run_resumes_without_loss_or_duplicates(inputs, reference, tmp_path, kill_at):
    ref_out, _ = reference
    out = str(tmp_path / "out")
    cmd = [sys.executable, "-m", "launch.filter", "--config=configs/filter_default.py",
           f"--input={os.path.join(inputs[0], '*')}", f"--output={out}", "--num_workers=2",
           "--config.runner.batch_size=16"]
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    marker_dir = os.path.join(out, "_work", kill_at)

    def markers():  # not the temporary file of a marker being written (.tmp-XXXX-<name>.done)
        return [f for f in os.listdir(marker_dir) if f.endswith(".done")
                and not f.startswith(".tmp-")] if os.path.isdir(marker_dir) else []

    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if markers():
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    done = markers()
    assert 1 <= len(done), done
    # killed midway: stage 1 is slow enough to be cut inside; stage 3 at least before the end
    assert len(done) < 8 if kill_at == "stage1" else not os.path.exists(
        os.path.join(out, "report.json"))
    rerun = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "already done" in rerun.stderr
    got = _all_ids(out)
    assert len(got) == len(set(got)) and sorted(got) == sorted(_all_ids(ref_out))
    for sub in ("kept", "dropped"):
        names = sorted(os.listdir(os.path.join(ref_out, sub)))
        assert sorted(os.listdir(os.path.join(out, sub))) == names
        for n in names:
            assert filecmp.cmp(os.path.join(ref_out, sub, n), os.path.join(out, sub, n),
                               shallow=False), n
    with open(os.path.join(out, "report.json")) as f:
        assert json.load(f)["documents"] == len(got)
