"""The tokenization job's typed schema: the reader's options as one reused section, coercion,
errors naming the field and the nearest key, validation before any work, launch flags."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from eurollm_jax.data import TokenizeConfig, tokenize
from eurollm_jax.documents import ReaderConfig
from eurollm_jax.schema import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = {"inputs": ["a.jsonl"], "output_dir": "out", "tokenizer": "tok.model"}


def test_the_reader_options_are_the_readers_own_section():
    hints = {f.name: f.type for f in dataclasses.fields(TokenizeConfig)}
    assert hints["reader"] in (ReaderConfig, "ReaderConfig")
    names = {f.name for f in dataclasses.fields(TokenizeConfig)}
    assert not names & {f.name for f in dataclasses.fields(ReaderConfig)}, "copied reader fields"
    assert TokenizeConfig(**BASE).reader == ReaderConfig()


def test_values_are_coerced():
    config = TokenizeConfig.from_mapping(dict(
        BASE, inputs="a.jsonl", num_workers="2", add_eos="false",
        reader={"kind": "sft", "default_lang": "mt", "max_doc_chars": "5000"}))
    assert config.inputs == ("a.jsonl",) and config.num_workers == 2 and config.add_eos is False
    assert config.kind == "sft" and config.reader.default_lang == "mt"
    assert config.reader.max_doc_chars == 5000
    # an instance goes through the same validation (what run() does with it)
    assert TokenizeConfig.from_mapping(config) == config


@pytest.mark.parametrize("values, message", [
    ({"num_workers": "two"}, "num_workers: expected an integer, got 'two'"),
    ({"num_workers": 0}, "num_workers: must be positive"),
    ({"encode_threads": -1}, "encode_threads: must be >= 0"),
    ({"tokenizer": ""}, "tokenizer: required"),
    ({"inputs": []}, "inputs: give at least one input"),
    ({"reader": {"kind": "chat"}}, "reader: kind must be 'pretrain' or 'sft', got 'chat'"),
    ({"reader": {"text_field": ""}}, "reader.text_field: must name a record field"),
    ({"reader": {"keep_chars": "many"}}, "reader.keep_chars: expected an integer, got 'many'"),
    ({"reader": {"text_feild": "body"}}, 'reader.text_feild: unknown key; did you mean '
                                         '"text_field"?'),
    ({"num_worker": 2}, 'num_worker: unknown key; did you mean "num_workers"?'),
])
def test_bad_values_name_the_field(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TokenizeConfig.from_mapping(dict(BASE, **values))


def test_run_validates_before_any_work(tmp_path, demo_tokenizer):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"text": "Bonġu", "lang": "mt"}) + "\n")
    out = tmp_path / "tok"
    config = TokenizeConfig([str(path)], str(out), demo_tokenizer.path, num_workers=0)
    with pytest.raises(ConfigError, match="num_workers: must be positive"):
        tokenize(config, progress=lambda m: None)
    assert not out.exists()
    # a plain mapping is a config too
    manifest = tokenize({"inputs": [str(path)], "output_dir": str(out),
                         "tokenizer": demo_tokenizer.path, "reader": {"source_field": "src"}},
                        progress=lambda m: None)
    assert list(manifest["sources"]) == ["mt/a"]


def test_launch_flags_reach_the_schema(tmp_path, demo_tokenizer):
    """launch.tokenize's flags (defaults from the schema) are validated by it: a bad value is
    an error naming the field, before anything is written."""
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"body": "Bonġu"}) + "\n")
    out = tmp_path / "tok"
    cmd = [sys.executable, "-m", "launch.tokenize", f"--input={path}", f"--output_dir={out}",
           f"--tokenizer={demo_tokenizer.path}"]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    bad = subprocess.run(cmd + ["--num_workers=0"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode != 0 and "num_workers: must be positive" in bad.stderr
    assert not out.exists()
    ok = subprocess.run(cmd + ["--text_field=body", "--default_lang=mt"], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    with open(out / "manifest.json") as f:
        assert list(json.load(f)["sources"]) == ["mt/a"]
