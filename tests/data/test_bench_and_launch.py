"""Smoke tests: the data benchmark and the three command-line entry points."""

import importlib.util
import json
import subprocess
import sys

from eurollm_jax.data import bench


def test_bench_runs_and_prints_both_tables(capsys, tmp_path):
    rc = bench.main(["bench", "--corpora=web", "--workers=", "--tokenize_workers=1",
                     "--web_docs=60", "--seconds=0.2", "--batch_size=2", "--seq_len=128",
                     "--tokenize_mb=0.2", "--vocab_size=1000", f"--work_dir={tmp_path}"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "| tokenization job, 1 worker(s): wall clock" in out
    assert "| web | plain Python loop (1 process) |" in out
    assert "| web | Grain pipeline, in-process |" in out


def run(*args, cwd):
    proc = subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_command_line_entry_points(tmp_path):
    import eurollm_jax

    repo = str(__import__("pathlib").Path(eurollm_jax.__file__).parents[1])
    corpus = tmp_path / "corpus"
    out = run("launch.make_demo_corpus", f"--output={corpus}", "--sources=udhr,spacy",
              cwd=repo)
    has_spacy = importlib.util.find_spec("spacy") is not None
    assert ("sources found: spacy, udhr" if has_spacy else "sources found: udhr") in out
    model = tmp_path / "tok" / "tokenizer.model"
    out = run("launch.train_tokenizer", f"--input={corpus / 'train.jsonl'}", f"--output={model}",
              "--vocab_size=600", f"--heldout={corpus / 'heldout.jsonl'}", "--num_threads=1",
              cwd=repo)
    assert "| ALL |" in out and (tmp_path / "tok" / "fertility.png").exists()
    out = run("launch.tokenize", f"--input={corpus}/*.jsonl", f"--tokenizer={model}",
              f"--output_dir={tmp_path / 'tokens'}", cwd=repo)
    manifest = json.loads((tmp_path / "tokens" / "manifest.json").read_text())
    assert len(manifest["tokens_by_language"]) == 24 and manifest["totals"]["inputs"] == 2
    assert "| mt/udhr |" in out
