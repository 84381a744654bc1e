"""The release of a (fake, framework-shaped) run: the card parses with huggingface_hub offline
and its numbers equal the records; stale results are refused; missing items are warnings."""

import os
import shutil

import pytest

from eurollm_jax.evaluation.registry import read_records
from eurollm_jax.release import ReleaseConfig, StaleResultsError, build_release, validate_model_card
from tests.release.helpers import FILTER_REPORT, RUNS, SOURCES, metrics_rows, make_run, read_json

pytest.importorskip("huggingface_hub")

FULL = {
    "model": {"name": "tiny-test", "license": "apache-2.0", "contact": "abuse@example.org",
              "intended_uses": ["research"], "out_of_scope_uses": ["medical advice"]},
    "data": {"sources": {"web": {"licence": "CC-BY-4.0", "consent": "opt-out honoured", "robots": "respected"},
                         "books": {"licence": "public domain", "consent": "n/a", "robots": "n/a"}},
             "collection": ["web pages of 2024"], "intended_uses": ["pre-training"], "limitations": ["small"]},
    "energy": {"pue": 1.2, "region": "FR"},
    "process": {"ethics_review": "approved by the board, 2026-11", "staged_release": "research access first",
                "red_teaming": "internal, 2 days", "human_labels": False},
}


def _config(registry, **changes):
    values = {k: dict(v) for k, v in FULL.items()}
    for section, fields in changes.items():
        values[section].update(fields)
    return ReleaseConfig.from_mapping(values | {"registry": registry})


def test_card_parses_offline_and_its_numbers_equal_the_records(tmp_path):
    p = make_run(tmp_path)
    out = tmp_path / "release"
    result = build_release(p["train"], p["export"], str(out), _config(p["registry"]))
    text = (out / "README.md").read_text()
    checked = validate_model_card(text)  # huggingface_hub.ModelCard + model_index_to_eval_results
    meta = checked["metadata"]
    assert checked["model_name"] == "tiny-test"
    assert meta["language"] == ["de", "en", "mt"]  # the manifest's languages
    assert meta["license"] == "apache-2.0" and meta["library_name"] == "transformers"
    assert meta["pipeline_tag"] == "text-generation"

    # every registry number is in the model-index, exactly
    got = {(r.dataset_type, r.dataset_config, r.metric_type): r.metric_value for r in checked["eval_results"]}
    expected = {}
    for record in read_records(p["registry"]):
        for lang, scores in record["scores"].items():
            for metric, value in scores.items():
                if value is not None:
                    expected[(f"eurollm_jax/{record['task']}", lang, metric)] = value
    assert len(expected) == 4
    assert {k: v for k, v in got.items() if k[0] != "eurollm_jax/heldout"} == expected
    last_eval = [r for r in metrics_rows() if "eval_loss" in r][-1]
    assert got[("eurollm_jax/heldout", None, "loss")] == last_eval["eval_loss"]
    assert got[("eurollm_jax/heldout", None, "perplexity")] == last_eval["eval_ppl"]
    assert result.eval_results == 6

    # co2_eq_emissions: the energy report's grams = 8 x 700 W x 1.5 h x PUE 1.2 x 56 g/kWh
    co2 = meta["co2_eq_emissions"]
    energy = read_json(out / "energy.json")
    assert co2["emissions"] == energy["co2_g"] == pytest.approx(8 * 0.7 * 1.5 * 1.2 * 56.0, rel=1e-12)
    assert co2["training_type"] == "pre-training" and co2["hardware_used"] == "8 x NVIDIA H100 80GB HBM3"
    assert "estimate" in co2["source"]
    assert energy["device_hours"] == pytest.approx(8 * sum(r["seconds"] for r in RUNS) / 3600)

    # body: the recorded numbers, every process item stated, no process warnings
    assert "20 steps of 4 x 16 tokens: 1,280 training tokens" in text
    assert "- de: men: leaders (0.720), men: strong (0.690), men: tough (0.600)" in text
    assert "approved by the board" in text and "WARNING: not recorded" not in text
    assert not [w for w in result.warnings if "process." in w]
    facts = read_json(out / "release.json")
    assert facts["training"]["final_loss"] == metrics_rows()[-1]["loss"]
    assert facts["fingerprint"] == read_records(p["registry"])[0]["checkpoint"]["fingerprint"]


def test_datasheet_states_sources_licences_and_what_filters_removed(tmp_path):
    p = make_run(tmp_path)
    cfg = _config(p["registry"], data={"sources": {"web": {"licence": "CC-BY-4.0"}}})
    result = build_release(p["train"], p["export"], str(tmp_path / "r"), cfg)
    sheet = (tmp_path / "r" / "DATASHEET.md").read_text()
    web_tokens = sum(s["tokens"] for s in SOURCES.values() if s["source"] == "web")
    assert f"| web | 3 | 15 | {web_tokens:,} | CC-BY-4.0 |" in sheet
    assert "| books | 1 | 2 | 2,500 | **WARNING: not declared** |" in sheet
    assert any("'books'" in w and "no declaration" in w for w in result.warnings)
    for row in FILTER_REPORT["languages"]:
        assert f"| {row['language']} | {row['documents']} | {row['kept']} |" in sheet
    assert "| mt | 8 | 1 | 12.5% | gopher_quality 3, language_id 4 |" in sheet
    assert "lowest kept share): mt (12% kept)" in sheet
    assert "emails, ip addresses are replaced" in sheet


def test_one_changed_byte_of_the_export_refuses_the_results(tmp_path):
    p = make_run(tmp_path)
    weights = os.path.join(p["export"], "model.safetensors")
    data = bytearray(open(weights, "rb").read())
    data[1234] ^= 0x01
    open(weights, "wb").write(bytes(data))
    out = tmp_path / "release"
    with pytest.raises(StaleResultsError) as err:
        build_release(p["train"], p["export"], str(out), _config(p["registry"]))
    message = str(err.value)
    assert "2 evaluation result(s)" in message
    assert "task eurogest, languages de,en" in message and "eurogest--de+en--" in message
    assert "task lm_eval" in message
    assert not out.exists()  # nothing written


def test_results_of_a_copy_are_accepted_and_other_checkpoints_ignored(tmp_path):
    p = make_run(tmp_path)
    copy = str(tmp_path / "published")
    shutil.copytree(p["export"], copy)  # same bytes elsewhere: the same fingerprint
    other = make_run(tmp_path / "other", registry=False)
    with open(os.path.join(other["export"], "model.safetensors"), "ab") as f:
        f.write(b"different model")
    from eurollm_jax.evaluation.registry import checkpoint_identity, make_record, write_record

    write_record(p["registry"], make_record(task="eurogest", languages=["fr"], scores={"fr": {"g": 2.0}},
                                            config={}, checkpoint=checkpoint_identity(other["export"]), seconds=1))
    result = build_release(p["train"], copy, str(tmp_path / "r"), _config(p["registry"]))
    facts = read_json(result.facts)
    assert len(facts["results"]) == 2 and facts["other_checkpoints_results"] == 1
    assert "| fr |" not in (tmp_path / "r" / "README.md").read_text()


def test_missing_process_items_and_declarations_are_visible_warnings(tmp_path):
    p = make_run(tmp_path, registry=False)
    cfg = _config("", process={"ethics_review": "", "red_teaming": "", "human_labels": True, "annotators": ""},
                  model={"contact": ""})
    result = build_release(p["train"], p["export"], str(tmp_path / "r"), cfg)
    card = (tmp_path / "r" / "README.md").read_text()
    for text in ("ethics review status not recorded", "red-teaming not recorded",
                 "human labels were used but annotator information is missing",
                 "a contact for complaints not stated", "no bias evaluation (EuroGEST)",
                 "no evaluation registry given"):
        assert f"> **Warning:** {text}" in card
        assert any(text in w for w in result.warnings)
    assert "| ethics review status | **WARNING: not recorded** |" in card
    assert "| staged release plan | research access first |" in card
    checked = validate_model_card(card)  # no registry: only the training-time held-out loss
    assert [r.dataset_type for r in checked["eval_results"]] == ["eurollm_jax/heldout"] * 2


def test_run_without_run_records_uses_step_times_and_needs_the_hardware(tmp_path):
    p = make_run(tmp_path, runs=False, registry=False)
    with pytest.raises(ValueError, match="energy.hardware"):
        build_release(p["train"], p["export"], str(tmp_path / "r"), _config(""))
    cfg = _config("", energy={"hardware": "NVIDIA A100-SXM4-80GB", "pue": 1.0, "grid_intensity_g_per_kwh": 100.0})
    result = build_release(p["train"], p["export"], str(tmp_path / "r"), cfg)
    seconds = sum(0.5 * 2 for _ in metrics_rows())  # step_time_s x steps since the previous log
    assert result.co2_g == pytest.approx(8 * 400 * seconds / 3600 / 1000 * 100.0)
    assert any("run_records.jsonl" in w for w in result.warnings)


def test_sft_run_finds_its_synthesis_reports(tmp_path):
    from eurollm_jax.fileio import write_json as wj

    p = make_run(tmp_path, registry=False)
    job = tmp_path / "synth"
    (job / "sft").mkdir(parents=True)
    (job / "sft" / "part-00000.jsonl").write_text("{}\n")
    wj(str(job / "report.json"), {"pipeline": "xl_instruct", "source": "xl", "seeds": 5, "sft_records": 4,
                                  "dropped": 1, "per_group": {"de": 2, "fr": 2},
                                  "drop_reasons": {"judge:low_score": 1},
                                  "llm": {"requests": 12, "prompt_tokens": 3400, "completion_tokens": 900}})
    cfg = read_json(os.path.join(p["train"], "config.json"))
    cfg["data"].update(source="sft", sft_file=str(job / "sft"))
    wj(os.path.join(p["train"], "config.json"), cfg)
    build_release(p["train"], p["export"], str(tmp_path / "r"), _config(""))
    sheet = (tmp_path / "r" / "DATASHEET.md").read_text()
    line = next(x for x in sheet.splitlines() if x.startswith(f"- `{job / 'report.json'}`: "))
    for item in ("pipeline xl_instruct", "source xl", "seeds 5", "sft_records 4", "dropped 1"):
        assert item in line
    assert "records per language or task: de 2, fr 2" in sheet and "judge:low_score 1" in sheet
    assert "LLM usage: 12 requests, 3,400 prompt and 900 completion tokens" in sheet
