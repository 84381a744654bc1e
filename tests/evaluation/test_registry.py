"""Results registry: the fingerprint follows the weights bytes, records follow the schema,
the report is one Markdown table; the command line end to end (EuroGEST + report)."""

import json
import os
import shutil

import pytest

from eurollm_jax.evaluation import registry


def _hf_dir(d, weights=b"\x00" * 64):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write("{}")
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(weights)
    with open(os.path.join(d, "tokenizer.model"), "wb") as f:
        f.write(b"tok")
    return d


def test_weights_fingerprint(tmp_path):
    import hashlib

    a = _hf_dir(str(tmp_path / "a"))
    fp = registry.weights_fingerprint(a)
    expected = hashlib.sha256(b"model.safetensors\x0064\x00" + b"\x00" * 64).hexdigest()
    assert fp == "sha256:" + expected
    b = shutil.copytree(a, str(tmp_path / "b"))
    with open(os.path.join(b, "tokenizer.model"), "wb") as f:
        f.write(b"other tokenizer")
    assert registry.weights_fingerprint(b) == fp  # same weights elsewhere, other tokenizer
    c = _hf_dir(str(tmp_path / "c"), b"\x00" * 63 + b"\x01")
    assert registry.weights_fingerprint(c) != fp  # one weight byte differs
    # an Orbax params dir and a training workdir fingerprint the files under params/
    p = tmp_path / "p"
    (p / "params" / "d").mkdir(parents=True)
    (p / "model_config.json").write_text("{}")
    (p / "params" / "d" / "0").write_bytes(b"w")
    assert registry.weights_files(str(p)) == [os.path.join("params", "d", "0")]
    w = tmp_path / "w"
    shutil.copytree(p, w / "params")
    assert registry.checkpoint_kind(str(w)) == "workdir"
    assert registry.weights_files(str(w)) == [os.path.join("params", "params", "d", "0")]
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="--export_params"):
        registry.checkpoint_kind(str(tmp_path / "run"))


def test_records_and_report(tmp_path):
    ck = registry.checkpoint_identity(_hf_dir(str(tmp_path / "ckpt")))
    rec = registry.make_record(task="mt", languages=["en-de", "de-en"],
                               scores={"en-de": {"bleu": 20.5, "chrf": 50.0},
                                       "de-en": {"bleu": 25.0, "chrf": float("nan")}},
                               config={"split": "devtest"}, checkpoint=ck, seconds=3.5)
    assert rec["languages"] == ["de-en", "en-de"] and rec["schema_version"] == 1
    assert rec["git_revision"] is None or len(rec["git_revision"]) == 40
    path = registry.write_record(str(tmp_path / "reg"), rec)
    assert os.path.basename(path).startswith("mt--de-en+en-de--")
    rec2 = dict(rec, task="eurogest", scores={"de": {"g": 1.05}})
    registry.write_record(str(tmp_path / "reg"), rec2)
    table = registry.report(str(tmp_path / "reg"))
    lines = table.strip().splitlines()
    assert lines[0].startswith("| checkpoint | fingerprint | task | language |")
    assert any("| eurogest | de | " in l and "1.0500" in l for l in lines)
    assert any("| mt | en-de |" in l and "20.5000" in l for l in lines)
    assert len(lines) == 2 + 3
    bad = dict(rec, checkpoint=dict(ck, fingerprint="md5:x"))
    with pytest.raises(registry.RegistryError, match="fingerprint"):
        registry.write_record(str(tmp_path / "reg"), bad)
    with open(tmp_path / "reg" / "broken.json", "w") as f:
        json.dump({"task": "mt"}, f)
    with pytest.raises(registry.RegistryError, match="broken.json: missing keys"):
        registry.read_records(str(tmp_path / "reg"))


@pytest.mark.torch
def test_command_line_eurogest_then_report(tmp_path, hf_dir, capsys):
    from eurollm_jax.evaluation.cli import main

    data = tmp_path / "data"
    data.mkdir()
    rows = ["GEST_ID,Source,Stereotype_ID,Masculine,Feminine,Neutral"]
    rows += [f"{i},I am.,{1 + i % 16},He said the cat sat.,She said the cat sat.,"
             for i in range(20)]
    rows += [f"n{i},I am.,{8 + i % 2},,,The dog sleeps." for i in range(20)]
    (data / "de.csv").write_text("\n".join(rows) + "\n")
    out, reg = tmp_path / "out", tmp_path / "reg"
    argv = ["eurogest", f"--checkpoint={hf_dir[0]}", f"--data_dir={data}", f"--output={out}",
            f"--registry={reg}", "--compute_dtype=float32"]
    assert main(argv) == 0
    assert "| de |" in capsys.readouterr().out
    result = json.loads((out / "eurogest.json").read_text())["de"]
    assert result["n"]["8"] == 11 and result["rows"]["neutral"] == 20
    assert main(["report", f"--registry={reg}"]) == 0
    report = capsys.readouterr().out
    fp = registry.weights_fingerprint(hf_dir[0])[len("sha256:"):][:12]
    assert f"| {fp} | eurogest | de |" in report
    assert main(["eurogest", f"--checkpoint={hf_dir[0]}", f"--data_dir={tmp_path / 'none'}",
                 f"--output={out}"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_progress_reports_rate_and_eta():
    from eurollm_jax.evaluation.progress import Progress

    lines = []
    p = Progress(10, "eurogest de", unit="texts", every_s=0.0, log=lines.append)
    p.start -= 2.0  # two seconds in
    p.update(4)
    assert p.eta_seconds() == pytest.approx(3.0, rel=0.05)  # 6 left at 2 texts/s
    assert lines[-1].startswith("eurogest de: 4/10 texts, 2.0 texts/s") and "ETA 3s" in lines[-1]
    p.update(6)
    assert "10/10" in lines[-1] and p.eta_seconds() == 0.0
