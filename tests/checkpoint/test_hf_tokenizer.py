"""The HF tokenizer files (eurollm_jax.checkpoint.hf_tokenizer) against transformers itself.

A small tokenizer is trained the way the project trains one (launch.train_tokenizer's
``train_tokenizer`` on the demo corpus: UDHR text from gflanguages, nothing downloads),
exported, and loaded back with ``transformers.AutoTokenizer``.
"""

import filecmp
import json
import logging
import os
import shutil
import subprocess
import sys
from collections import defaultdict

import pytest

from eurollm_jax.checkpoint.hf_tokenizer import (
    HF_CHAT_TEMPLATE, HFTokenizerError, read_hf_tokenizer, write_hf_tokenizer,
)
from eurollm_jax.data import demo_corpus
from eurollm_jax.languages import EU_LANGUAGES
from eurollm_jax.tokenizer import Tokenizer, TokenizerTrainConfig, jsonl_corpus, train_tokenizer
from eurollm_jax.tokenizer.chat_template import CHAT_TEMPLATE_JINJA, render_ids, render_text

transformers = pytest.importorskip("transformers")

SPECIALS = ("<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>")
# Digits, whitespace runs (spaces, tabs, newlines, NBSP), emoji and flags (byte fallback),
# a character no European training text has (byte fallback too).
EXTRAS = (
    " 2026-12-01: 3.14159 × 1000000 = 3141590",
    "  two   spaces\tand\t\ttabs\n\nand  \n  newlines   ",
    "emoji 😀👍🏽 🇪🇺 ❤️ 家 𝔘",
    "\u00a0nbsp\u00a0\u00a0and trailing space ",
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_corpus")
    demo_corpus.build(str(out))
    return out


@pytest.fixture(scope="module")
def tok(corpus, tmp_path_factory) -> Tokenizer:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.model"
    train_tokenizer(
        jsonl_corpus([str(corpus / "train.jsonl")]), str(path),
        TokenizerTrainConfig(vocab_size=2_000, num_threads=2, char_budget=600_000),
    )
    return Tokenizer.load(str(path))


@pytest.fixture(scope="module")
def export(tok, tmp_path_factory):
    out = tmp_path_factory.mktemp("hf_tok")
    write_hf_tokenizer(tok, str(out))
    return out


@pytest.fixture(scope="module")
def hf(export):
    return transformers.AutoTokenizer.from_pretrained(str(export))


@pytest.fixture(scope="module")
def heldout(corpus) -> dict[str, list[str]]:
    by_lang = defaultdict(list)
    with open(corpus / "heldout.jsonl") as f:
        for line in f:
            record = json.loads(line)
            by_lang[record["lang"]].append(record["text"])
    return by_lang


def test_files_and_configs(tok, export):
    assert sorted(os.listdir(export)) == sorted([
        "tokenizer.model", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "generation_config.json",
    ])
    assert (export / "tokenizer.model").read_bytes() == tok.serialized()
    config = json.loads((export / "tokenizer_config.json").read_text())
    assert (config["bos_token"], config["eos_token"], config["unk_token"]) == ("<s>", "</s>", "<unk>")
    assert config["add_bos_token"] is True and config["add_eos_token"] is False
    assert config["legacy"] is False and config["add_prefix_space"] is False
    assert config["chat_template"] == HF_CHAT_TEMPLATE
    assert config["chat_template"].endswith(CHAT_TEMPLATE_JINJA)
    assert {int(i): v["content"] for i, v in config["added_tokens_decoder"].items()} == dict(
        enumerate(SPECIALS))
    special_map = json.loads((export / "special_tokens_map.json").read_text())
    assert special_map["additional_special_tokens"] == ["<|im_start|>", "<|im_end|>"]
    generation = json.loads((export / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [4, 2]  # <|im_end|> ends a chat turn, then </s>
    assert generation["bos_token_id"] == 1


def test_special_ids(hf):
    assert [hf.convert_tokens_to_ids(t) for t in SPECIALS] == [0, 1, 2, 3, 4]
    assert (hf.unk_token_id, hf.bos_token_id, hf.eos_token_id) == (0, 1, 2)
    assert set(hf.all_special_tokens) >= set(SPECIALS)


def test_ids_identical_in_all_eu_languages(tok, hf, heldout):
    assert set(EU_LANGUAGES) <= set(heldout), sorted(set(EU_LANGUAGES) - set(heldout))
    checked = 0
    for lang in EU_LANGUAGES:
        texts = heldout[lang] + [heldout[lang][0][:200] + extra for extra in EXTRAS]
        for text in texts:
            assert hf(text)["input_ids"] == tok.encode(text), (lang, text[:120])
            assert hf(text, add_special_tokens=False)["input_ids"] == tok.encode_plain(text)
            ids = tok.encode(text)
            assert hf.decode(ids, skip_special_tokens=True) == tok.decode(ids) == text
            checked += 1
    assert checked >= 24 * (1 + len(EXTRAS))
    # the byte-fallback cases really are byte pieces, so the check above covers them
    assert any(tok.id_to_piece(i).startswith("<0x") for i in tok.encode(EXTRAS[2]))


def test_special_tokens_in_text(tok, hf, heldout):
    """HF parses special-token strings out of text (as for every HF model); the result is
    our ids with the markers inserted as ids. With ``split_special_tokens`` HF encodes them
    as plain text exactly as our encode does."""
    text = "<s>" + heldout["de"][0][:80] + "<|im_start|>user\n" + heldout["fi"][0][:60] + "<|im_end|></s><unk>x"
    expected = [1]
    rest = text
    for marker, i in (("<s>", 1), ("<|im_start|>", 3), ("<|im_end|>", 4), ("</s>", 2), ("<unk>", 0)):
        before, rest = rest.split(marker, 1)
        expected += tok.encode_plain(before) + [i]
    expected += tok.encode_plain(rest)
    assert hf(text)["input_ids"] == expected
    assert hf(text, split_special_tokens=True)["input_ids"] == tok.encode(text)


CONVERSATIONS = [
    [{"role": "user", "content": "Bonjour, 2 + 2 = ?"}],
    [{"role": "user", "content": "Hallo!"}, {"role": "assistant", "content": "Hej  😀"},
     {"role": "user", "content": "Dzięki.\nA teraz po polsku?"}],
    [{"role": "system", "content": "Odpovídej stručně."},
     {"role": "user", "content": "Ποιο είναι το 10%;"},
     {"role": "assistant", "content": "Το 10% είναι 0,1.\n\n  Τέλος."},
     {"role": "user", "content": "Köszönöm"}, {"role": "assistant", "content": "Ole hyvä!"}],
]


@pytest.mark.parametrize("conversation", CONVERSATIONS)
@pytest.mark.parametrize("generation_prompt", [False, True])
def test_chat_template_matches_ours(tok, hf, conversation, generation_prompt):
    text = hf.apply_chat_template(conversation, tokenize=False,
                                  add_generation_prompt=generation_prompt)
    assert text == render_text(conversation, generation_prompt, bos="<s>")
    out = hf.apply_chat_template(conversation, tokenize=True,
                                 add_generation_prompt=generation_prompt)
    ids = out["input_ids"] if not isinstance(out, list) else out
    assert ids == render_ids(tok, conversation, add_generation_prompt=generation_prompt)[0]
    assert ids[0] == tok.bos_id and ids[1] != tok.bos_id  # one BOS, from the template


def test_round_trip_keeps_the_tokenizer(tok, export, tmp_path):
    back = read_hf_tokenizer(str(export))
    assert back.serialized() == tok.serialized()
    write_hf_tokenizer(back, str(tmp_path))
    match, mismatch, errors = filecmp.cmpfiles(export, tmp_path, os.listdir(export), shallow=False)
    assert (mismatch, errors) == ([], []) and len(match) == 5
    again = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    text = " ".join(EXTRAS)
    assert again(text)["input_ids"] == tok.encode(text)


def test_generation_config_is_merged(tok, tmp_path):
    (tmp_path / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 1, "eos_token_id": 2, "max_new_tokens": 77}))
    write_hf_tokenizer(tok, str(tmp_path))
    generation = json.loads((tmp_path / "generation_config.json").read_text())
    assert generation == {"bos_token_id": 1, "eos_token_id": [4, 2], "max_new_tokens": 77,
                          "pad_token_id": tok.pad_id}


def test_without_tokenizers_package(tok, tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # import tokenizers -> ImportError
    with caplog.at_level(logging.WARNING):
        written = write_hf_tokenizer(tok, str(tmp_path / "plain"))
    assert "tokenizer.json" not in written and "tokenizer.model" in written
    assert not (tmp_path / "plain" / "tokenizer.json").exists()
    assert "pip install transformers" in caplog.text
    assert read_hf_tokenizer(str(tmp_path / "plain")).serialized() == tok.serialized()
    with pytest.raises(ImportError, match="pip install transformers"):
        write_hf_tokenizer(tok, str(tmp_path / "asked"), fast=True)


def test_tokenizer_json_alone_loads(tok, export, heldout, tmp_path):
    """A directory with tokenizer.json but no tokenizer.model (item 2 of issue 23) loads as a
    Tokenizer that encodes, decodes and renders chat exactly as the original."""
    only_json = tmp_path / "only_json"
    only_json.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(export / name, only_json / name)
    back = read_hf_tokenizer(str(only_json))
    assert back.vocab_size == tok.vocab_size
    assert [back.id_to_piece(i) for i in range(back.vocab_size)] == [
        tok.id_to_piece(i) for i in range(tok.vocab_size)]
    assert back.special_ids == tok.special_ids
    for lang in EU_LANGUAGES:
        for text in heldout[lang] + [heldout[lang][0][:200] + e for e in EXTRAS] + ["a\u2581b"]:
            assert back.encode(text) == tok.encode(text), (lang, text[:100])
            assert back.decode(tok.encode(text)) == text
    for conversation in CONVERSATIONS:
        assert render_ids(back, conversation) == render_ids(tok, conversation)


@pytest.mark.parametrize("edit, feature", [
    (lambda j: j.update(pre_tokenizer={"type": "ByteLevel", "add_prefix_space": False,
                                       "trim_offsets": True, "use_regex": True}),
     "pre_tokenizer 'ByteLevel'"),
    (lambda j: j.update(normalizer={"type": "NFKC"}), "normalizer 'NFKC'"),
    (lambda j: j["model"].update(type="Unigram"), "model type 'Unigram'"),
    (lambda j: j["pre_tokenizer"].update(prepend_scheme="always"), "prepend_scheme 'always'"),
])
def test_tokenizer_json_unsupported_feature_is_named(export, tmp_path, edit, feature):
    spec = json.loads((export / "tokenizer.json").read_text())
    edit(spec)
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(HFTokenizerError, match=feature) as e:
        read_hf_tokenizer(str(tmp_path))
    assert "tokenizer.model" in str(e.value)


def test_reader_errors(tok, export, tmp_path):
    with pytest.raises(HFTokenizerError, match="neither tokenizer.model nor tokenizer.json"):
        read_hf_tokenizer(str(tmp_path))
    wrong = tmp_path / "wrong"
    write_hf_tokenizer(tok, str(wrong), fast=False)
    config = json.loads((wrong / "tokenizer_config.json").read_text())
    config["bos_token"] = "<|im_start|>"
    (wrong / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(HFTokenizerError, match="bos_token"):
        read_hf_tokenizer(str(wrong))


def test_rejects_a_model_it_cannot_reproduce(corpus, tmp_path):
    spm = pytest.importorskip("sentencepiece")
    texts = [json.loads(line)["text"] for line in open(corpus / "train.jsonl")][:200]
    prefix = str(tmp_path / "dummy")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_prefix=prefix, vocab_size=500,
        model_type="bpe", add_dummy_prefix=True, byte_fallback=True, num_threads=1,
    )
    with pytest.raises(HFTokenizerError, match="add_dummy_prefix"):
        write_hf_tokenizer(Tokenizer.load(prefix + ".model"), str(tmp_path / "out"), fast=True)


@pytest.fixture(scope="module")
def model_export(tok, export, tmp_path_factory):
    """A small random model with this tokenizer's vocabulary: HF -> params -> HF through
    ``convert`` (the tokenizer found in each input directory), and its params."""
    import eurollm_jax
    from eurollm_jax.checkpoint.convert import convert
    from tests.model.helpers import small_config

    root = tmp_path_factory.mktemp("convert")
    model = eurollm_jax.create_model(small_config(vocab_size=tok.vocab_size), seed=3)
    eurollm_jax.save_hf_checkpoint(model, str(root / "hf"), tokenizer=tok)
    convert("orbax", str(root / "hf"), str(root / "params"))
    convert("hf", str(root / "params"), str(root / "hf2"))
    return model, root


def test_convert_carries_the_tokenizer(tok, export, model_export, tmp_path):
    import eurollm_jax
    from eurollm_jax.checkpoint.hf import CheckpointMismatchError
    from tests.model.helpers import small_config

    _, root = model_export
    for name in os.listdir(export):  # save_hf_checkpoint(tokenizer=) wrote the same files
        if name != "generation_config.json":
            assert (root / "hf" / name).read_bytes() == (export / name).read_bytes(), name
    small = eurollm_jax.create_model(small_config(vocab_size=301), seed=0)
    with pytest.raises(CheckpointMismatchError, match="not this model's tokenizer"):
        eurollm_jax.save_hf_checkpoint(small, str(tmp_path / "small"), tokenizer=tok.path)
    assert (root / "params" / "tokenizer.model").read_bytes() == tok.serialized()
    for name in ("tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json"):
        assert (root / "hf2" / name).read_bytes() == (export / name).read_bytes(), name
    generation = json.loads((root / "hf2" / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [4, 2]


def test_convert_cli_tokenizer_flag(tok, model_export, tmp_path):
    _, root = model_export
    params = tmp_path / "params_no_tok"
    shutil.copytree(root / "params", params)
    (params / "tokenizer.model").unlink()
    cmd = [sys.executable, "-m", "launch.convert", "--to=hf", f"--input={params}",
           f"--output={tmp_path / 'hf'}", f"--tokenizer={tok.path}"]
    subprocess.run(cmd, check=True, capture_output=True)
    assert (tmp_path / "hf" / "tokenizer.json").exists()
    hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    assert hf(EXTRAS[2])["input_ids"] == tok.encode(EXTRAS[2])


def test_pipeline_generates_as_our_engine(tok, heldout, model_export):
    torch = pytest.importorskip("torch")
    from eurollm_jax.inference import generate

    model, root = model_export
    prompts = [heldout[lang][0][:60] for lang in ("en", "pl", "el")]
    ours = generate(model, prompts, tokenizer=tok, max_new_tokens=8, temperature=0.0,
                    ignore_eos=True)
    pipe = transformers.pipeline("text-generation", model=str(root / "hf2"),
                                 dtype=torch.float32)
    for prompt, completion in zip(prompts, ours):
        # a random model may pick a stop id (generation_config's <|im_end|>, </s>): both
        # sides ignore them (eos_token_id=None here, ignore_eos above)
        out = pipe(prompt, max_new_tokens=8, do_sample=False, return_tensors=True,
                   eos_token_id=None)
        ids = [int(i) for i in out[0]["generated_token_ids"]]
        prompt_ids = tok.encode(prompt)
        assert ids[:len(prompt_ids)] == prompt_ids
        assert len(completion) == 8
        assert ids[len(prompt_ids):] == [int(i) for i in completion], prompt


def test_chat_pipeline_prompts_as_our_engine(tok, model_export):
    """A conversation given to the pipeline is rendered by the exported chat template into
    exactly the prompt ids our chat rendering makes, and continues as our engine does."""
    torch = pytest.importorskip("torch")
    from eurollm_jax.inference import generate

    model, root = model_export
    conversation = CONVERSATIONS[2][:4]
    prompt_ids = render_ids(tok, conversation, add_generation_prompt=True)[0]
    ours = generate(model, [prompt_ids], tokenizer=tok, max_new_tokens=6, temperature=0.0,
                    ignore_eos=True)[0]
    pipe = transformers.pipeline("text-generation", model=str(root / "hf2"), dtype=torch.float32)
    out = pipe(conversation, max_new_tokens=6, do_sample=False, return_tensors=True,
               eos_token_id=None)
    ids = [int(i) for i in out[0]["generated_token_ids"]]
    assert ids == prompt_ids + [int(i) for i in ours]


def test_conversion_check(model_export, tmp_path):
    """``launch.convert --check``: a good export passes (24 languages, ids, chat template,
    logits); one whose tokenizer.json adds a dummy prefix is caught at its first difference."""
    from eurollm_jax.checkpoint.hf_check import check_hf_directory, format_report, passed

    _, root = model_export
    report = check_hf_directory(str(root / "hf2"))
    assert passed(report), format_report(report)
    assert report["languages"] == 24 and report["texts"] >= 24 * 4
    assert report["max_abs_logit_diff"] < 1e-4 and len(report["logits"]) == 24

    broken = tmp_path / "broken"
    shutil.copytree(root / "hf2", broken)
    fast = json.loads((broken / "tokenizer.json").read_text())
    fast["pre_tokenizer"]["prepend_scheme"] = "always"
    (broken / "tokenizer.json").write_text(json.dumps(fast))
    proc = subprocess.run([sys.executable, "-m", "launch.convert", f"--check={broken}"],
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "TOKENIZER DIFFERS [bg] at token 1" in proc.stdout, proc.stdout


def test_convert_to_orbax_from_tokenizer_json_only(tok, model_export, tmp_path):
    from eurollm_jax.checkpoint.convert import convert

    _, root = model_export
    hf_dir = tmp_path / "hf_json_only"
    shutil.copytree(root / "hf", hf_dir)
    (hf_dir / "tokenizer.model").unlink()
    convert("orbax", str(hf_dir), str(tmp_path / "params"))
    back = Tokenizer.load(str(tmp_path / "params" / "tokenizer.model"))
    text = " ".join(EXTRAS) + " Übermäßig große Äpfel"
    assert back.encode(text) == tok.encode(text)
