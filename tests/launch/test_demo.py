"""The end-to-end demo (small version) and the Colab notebook run to completion."""

import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env():
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)  # the entry points set their own device count
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.mark.torch
def test_small_demo_runs_end_to_end(tmp_path):
    pytest.importorskip("transformers")
    work = tmp_path / "demo"
    proc = subprocess.run(["bash", os.path.join(ROOT, "launch", "demo.sh"), "--small", f"--workdir={work}"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((work / "summary.json").read_text())
    assert summary["train"]["first_stopped_early"] and summary["train"]["final_step"] == summary["size"]["steps"]
    assert summary["export"]["max_abs_logit_diff"] < 1e-4
    assert summary["export"]["tokenizer_mismatches"] == [] and summary["export"]["tokenizer_languages"] == 24
    assert summary["export"]["chat_template_equal"] is True
    assert (work / "hf_export" / "tokenizer.json").exists()
    assert len(summary["evaluate"]) == 24 and all(v["bits_per_byte"] > 0 for v in summary["evaluate"].values())
    report = (work / "report" / "report.md").read_text()
    for heading in ("## Filtering", "## Tokenizer fertility", "## Training", "## Held-out loss", "## Samples",
                    "## Hugging Face export"):
        assert heading in report
    for png in ("loss.png", "fertility.png", "report.png", "bits_per_byte.png"):
        assert (work / "report" / png).stat().st_size > 1000
    metrics = [json.loads(line) for line in (work / "train" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["loss"] < metrics[0]["loss"]
    _check_release(work, summary, metrics, report)


def _check_release(work, summary, metrics, report):
    """The demo's model card parses offline with huggingface_hub; its numbers are the run's."""
    pytest.importorskip("huggingface_hub")
    from eurollm_jax.release import validate_model_card

    assert "## Release" in report
    runs = [json.loads(line) for line in (work / "train" / "run_records.jsonl").read_text().splitlines()]
    half = summary["size"]["steps"] // 2
    assert [(r["first_step"], r["last_step"]) for r in runs] == [(0, half), (half, summary["size"]["steps"])]
    checked = validate_model_card((work / "release" / "README.md").read_text())
    meta = checked["metadata"]
    energy = json.loads((work / "release" / "energy.json").read_text())
    assert meta["co2_eq_emissions"]["emissions"] == energy["co2_g"] == summary["release"]["co2_g"] > 0
    assert energy["device_hours"] == pytest.approx(8 * sum(r["seconds"] for r in runs) / 3600)
    last_eval = [m for m in metrics if "eval_loss" in m][-1]
    values = {r.metric_type: r.metric_value for r in checked["eval_results"]}
    assert values["loss"] == last_eval["eval_loss"] and values["perplexity"] == last_eval["eval_ppl"]
    manifest = json.loads((work / "tokens" / "manifest.json").read_text())
    assert meta["language"] == sorted(manifest["tokens_by_language"])
    assert "> **Warning:** ethics review status not recorded" in (work / "release" / "README.md").read_text()
    assert "## What the filters removed, by language" in (work / "release" / "DATASHEET.md").read_text()


@pytest.mark.torch
def test_notebook_executes(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("transformers")
    nb = nbformat.read(os.path.join(ROOT, "launch", "pipeline_walkthrough.ipynb"), as_version=4)
    env = _env()
    env["EUROLLM_NOTEBOOK_WORKDIR"] = str(tmp_path / "nb")
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": ROOT}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "LlamaForCausalLM" in outputs and "bits per byte" in outputs


def test_a_stage_that_refuses_another_runs_work_says_how_to_start_over(tmp_path):
    from eurollm_jax.fileio import JobMismatchError
    from launch.demo import Stages

    def refuses():
        raise JobMismatchError(f"{tmp_path}/filtered holds a run with other inputs or another config")

    with pytest.raises(SystemExit, match="rerun with --fresh to start over"):
        Stages(str(tmp_path)).run("filter", refuses)
    with pytest.raises(ValueError, match="other bug"):  # any other error is not rewritten
        Stages(str(tmp_path)).run("filter", lambda: (_ for _ in ()).throw(ValueError("other bug")))
