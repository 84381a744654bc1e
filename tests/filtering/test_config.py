"""The filtering job's typed schema: defaults once (config files, step constructors), coercion,
errors that name the field and the nearest valid key, validation before any work."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from configs import filter_annotate, filter_classifier, filter_default, filter_eurofilter
from eurollm_jax.documents import ReaderConfig
from eurollm_jax.filtering import LanguageID, PIIRedactor, URLBlocklist, run_local
from eurollm_jax.filtering.annotate import OpenAIClient
from eurollm_jax.filtering.config import (
    AnnotateSection,
    ClassifierConfig,
    ClassifierTrainSection,
    DedupConfig,
    FilterConfig,
    FilterInput,
    FilterJobConfig,
    LanguageIDSection,
    PIISection,
    QualitySection,
    as_filter_config,
)
from eurollm_jax.filtering.pipeline import build_steps
from eurollm_jax.filtering.runner import _job_fingerprint
from eurollm_jax.schema import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _match(message: str) -> str:
    return "".join("\\" + c if c in "().[]*+?^$|{}" else c for c in message)


# ---------------------------------------------------------------- defaults, once


def test_config_files_take_their_defaults_from_the_schema():
    default = filter_default.get_config()
    assert default.to_dict() == FilterConfig().to_dict()
    assert FilterJobConfig.from_mapping(default) == FilterJobConfig()
    annotate = filter_annotate.get_config()
    assert annotate.annotate.to_dict() == AnnotateSection().to_dict()
    assert FilterJobConfig.from_mapping(annotate) == FilterJobConfig()
    classifier = filter_classifier.get_config()
    assert classifier.classifier.to_dict() == ClassifierTrainSection().to_dict()
    assert FilterJobConfig.from_mapping(classifier) == FilterJobConfig()
    eurofilter = filter_eurofilter.get_config()
    eurofilter.quality.model_dir = "clf/"
    job = FilterJobConfig.from_mapping(eurofilter)
    assert job.quality == dataclasses.replace(QualitySection(), enabled=True, model_dir="clf/")


def test_sequence_and_none_defaults_stay_overridable_from_the_command_line():
    # ml_collections overrides tuples but not lists, and cannot override a plain None.
    config = filter_default.get_config()
    assert isinstance(config.language_id.languages, tuple)
    assert isinstance(config.url_blocklist.domains, tuple)
    for name, section in config.items():
        for key, value in section.items():
            assert not isinstance(value, list), f"{name}.{key} is a list"
    config.dedup.verify_threshold = 0.5  # a typed placeholder, not a bare None
    config.input.default_lang = "en"
    job = FilterJobConfig.from_mapping(config)
    assert job.dedup.verify_threshold == 0.5 and job.input.default_lang == "en"
    assert FilterJobConfig.from_mapping(filter_default.get_config()).dedup.verify_threshold is None


def test_the_readers_options_are_one_section_reused_by_the_filter():
    assert issubclass(FilterInput, ReaderConfig)
    assert {f.name for f in dataclasses.fields(FilterInput)} == {
        f.name for f in dataclasses.fields(ReaderConfig)}
    # the filter's own defaults: no declared language or source, limits on
    opts = FilterInput()
    assert opts.lang_field is None and opts.source_field is None
    assert opts.max_doc_chars == 1_000_000 and opts.max_line_bytes == 16 << 20
    assert ReaderConfig().lang_field == "lang" and ReaderConfig().max_doc_chars is None


def test_pipeline_steps_take_their_defaults_from_the_sections():
    lid, pii = LanguageID(), PIIRedactor()
    section = LanguageIDSection()
    assert lid.threshold == section.threshold and lid.languages == frozenset(section.languages)
    assert (lid.identifier.backend, lid.identifier.max_chars) == (section.backend,
                                                                   section.max_chars)
    assert (pii.emails, pii.ips, pii.phones) == (PIISection.emails, PIISection.ip_addresses,
                                                 PIISection.phone_numbers)
    assert URLBlocklist(["x.example"]).url_key == FilterConfig().url_blocklist.url_key
    client = OpenAIClient("http://127.0.0.1:1")
    a = AnnotateSection()
    assert (client.model, client.mode, client.max_tokens, client.concurrency) == (
        a.model, a.mode, a.max_new_tokens, a.concurrency)
    assert ClassifierTrainSection().model_config() == ClassifierConfig()


def test_steps_follow_the_config():
    names = [s.name for s in build_steps({})]
    assert names == ["language_id", "gopher_repetition", "gopher_quality", "c4_quality",
                     "fineweb_quality", "pii"]
    steps = build_steps({"language_id": {"threshold": "0.5", "languages": "all"},
                         "url_blocklist": {"domains": ["spam.example"]},
                         "heuristics": {"enabled": False}, "pii": {"enabled": False}})
    assert [s.name for s in steps] == ["language_id", "url_blocklist"]
    assert steps[0].threshold == 0.5 and steps[0].languages is None


def test_a_partial_dict_and_the_config_file_are_the_same_job():
    """run_local's fingerprint (what a resumed run must match) sees defaults, not spelling."""
    files = [os.path.join(REPO, "configs", "filter_default.py")]
    a = _job_fingerprint(files, FilterConfig.from_mapping({"runner": {"progress": False}}))
    b = _job_fingerprint(files, FilterConfig.from_mapping(filter_default.get_config()))
    c = _job_fingerprint(files, FilterConfig.from_mapping({"dedup": {"bands": 20}}))
    assert a["sha256"] == b["sha256"] != c["sha256"]
    json.dumps(a)  # stored in _work/job.json


# ---------------------------------------------------------------- coercion and errors


def test_command_line_strings_are_coerced():
    cfg = FilterConfig.from_mapping({
        "dedup": {"bands": "20", "rows": 5.0, "verify_threshold": "0.6"},
        "runner": {"progress": "false", "num_workers": "3"},
        "language_id": {"languages": "all"},
        "url_blocklist": {"domains": "spam.example"},
    })
    assert cfg.dedup == DedupConfig(bands=20, rows=5, verify_threshold=0.6)
    assert cfg.runner.progress is False and cfg.runner.num_workers == 3
    assert cfg.language_id.kept_languages is None
    assert cfg.url_blocklist.domains == ("spam.example",) and cfg.url_blocklist.active
    assert FilterConfig.from_mapping({"language_id": {"languages": ["en", "mt"]}}
                                     ).language_id.kept_languages == ("en", "mt")


@pytest.mark.parametrize("values, message", [
    ({"dedup": {"bands": "x"}}, "dedup.bands: expected an integer, got 'x'"),
    ({"dedup": {"rows": 0}}, "dedup: rows must be >= 1, got 0"),
    ({"dedup": {"verify_threshold": 1.5}}, "dedup: verify_threshold must be in [0, 1]"),
    ({"runner": {"progress": "maybe"}}, "runner.progress: expected true/false, got 'maybe'"),
    ({"runner": {"batch_size": 0}}, "runner.batch_size: must be positive"),
    ({"language_id": {"threshold": 1.5}}, "language_id.threshold: must be a probability"),
    ({"language_id": {"backend": "fasttxt"}},
     'language_id.backend: \'fasttxt\' is not one of auto, fasttext, py3langid; did you mean '
     '"fasttext"'),
    ({"language_id": {"thresholds": {"hr": "high"}}}, "language_id.thresholds.hr: must be a "
                                                       "probability in [0, 1], got 'high'"),
    ({"output": {"format": "jsonl.gzip"}}, 'output.format: \'jsonl.gzip\' is not one of jsonl, '
                                           'jsonl.gz, jsonl.zst, parquet; did you mean "jsonl.gz"'),
    ({"input": {"kind": "sft"}}, "input.kind: the filter reads text documents"),
    ({"input": {"kind": "chat"}}, "input: kind must be 'pretrain' or 'sft', got 'chat'"),
    ({"input": {"max_doc_chars": 0}}, "input.max_doc_chars: must be positive"),
    ({"quality": {"enabled": True}}, "quality.model_dir: quality.enabled needs a classifier"),
    ({"url_blocklist": {"domains_file": "/no/such/list.txt"}},
     "url_blocklist.domains_file: no such file '/no/such/list.txt'"),
    ({"heuristics": {"overrides": {"gopher_quality": {"min_doc_words": 10}, "c4_qualty": {}}}},
     'heuristics.overrides.c4_qualty: unknown heuristic step; did you mean "c4_quality"'),
    ({"heuristics": {"overrides": {"gopher_quality": {"min_doc_wrds": 10}}}},
     'heuristics.overrides.gopher_quality.min_doc_wrds: unknown parameter; did you mean '
     '"min_doc_words"'),
    ({"heuristics": {"per_language": {"gopher_quality": {"fi": {"max_avg_len": 12}}}}},
     'heuristics.per_language.gopher_quality.fi.max_avg_len: unknown parameter; did you mean '
     '"max_avg_word_length"'),
])
def test_bad_values_name_the_field(values, message):
    with pytest.raises(ConfigError, match=_match(message)):
        FilterConfig.from_mapping(values)


def test_per_language_overrides_that_are_valid_pass():
    cfg = FilterConfig.from_mapping({"heuristics": {
        "per_language": {"gopher_quality": {"fi": {"max_avg_word_length": 15,
                                                   "stop_words": ["ja"]}}}}})
    assert cfg.heuristics.per_language["gopher_quality"]["fi"]["max_avg_word_length"] == 15


@pytest.mark.parametrize("values, message", [
    ({"dedupe": {}}, 'dedupe: unknown key; did you mean "dedup"?'),
    ({"dedup": {"band": 3}}, 'dedup.band: unknown key; did you mean "bands"?'),
    ({"input": {"text_key": "body"}}, 'input.text_key: unknown key; did you mean "text_field"?'),
    ({"language_id": {"treshold": 0.5}}, 'language_id.treshold: unknown key; did you mean '
                                         '"threshold"?'),
    ({"annotate": {}}, 'annotate: unknown key'),  # a job section, not part of a run's config
])
def test_unknown_keys_name_the_nearest_valid_key(values, message):
    with pytest.raises(ConfigError, match=_match(message)):
        FilterConfig.from_mapping(values)


def test_eurofilter_job_sections():
    job = FilterJobConfig.from_mapping({"annotate": {"max_new_tokens": "64", "mode": "completions"},
                                        "classifier": {"steps": "20", "d_model": 32}})
    assert job.annotate.max_new_tokens == 64 and job.classifier.steps == 20
    assert job.classifier.model_config() == ClassifierConfig(d_model=32)
    assert as_filter_config(job) == FilterConfig()  # the run's sections only
    with pytest.raises(ConfigError, match=_match('annotate.mode: \'chats\' is not one of chat, '
                                                 'completions; did you mean "chat"')):
        FilterJobConfig.from_mapping({"annotate": {"mode": "chats"}})
    with pytest.raises(ConfigError, match="classifier.d_model: \\(30\\) must be divisible"):
        FilterJobConfig.from_mapping({"classifier": {"d_model": 30}})
    with pytest.raises(ConfigError, match="classifier.encoder: launch.filter trains on"):
        FilterJobConfig.from_mapping({"classifier": {"encoder": "eurollm"}})
    with pytest.raises(ConfigError, match="annotate.base_url: required for backend=http"):
        AnnotateSection().check_backend()
    with pytest.raises(ConfigError, match="annotate.checkpoint: backend=inprocess needs"):
        AnnotateSection(backend="inprocess").check_backend()
    AnnotateSection(base_url="http://127.0.0.1:8000").check_backend()


# ---------------------------------------------------------------- validated before any work


def test_run_local_validates_before_any_work(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": "1", "text": "x"}) + "\n")
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match='dedup.bandz: unknown key; did you mean "bands"'):
        run_local(str(inp), str(out), {"dedup": {"bandz": 20}})
    assert not out.exists()


def test_launch_validates_the_config_file_and_overrides_at_start_up(tmp_path):
    """A None default (dedup.verify_threshold) is overridable on the command line, and a
    config that cannot run fails with the field's name before any output is written."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "launch.filter", "--config=configs/filter_eurofilter.py",
           "--config.dedup.verify_threshold=0.5", "--config.input.default_lang=en",
           f"--input={tmp_path / 'none' / '*.jsonl'}", f"--output={out}"]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode != 0
    assert "bad --config: quality.model_dir: quality.enabled needs a classifier" in proc.stderr
    assert not out.exists()
