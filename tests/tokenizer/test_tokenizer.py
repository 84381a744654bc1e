"""The tokenizer wrapper: special ids, lossless text in 24 languages, BOS/EOS, ChatML masks."""

import pickle

import pytest

from eurollm_jax.data import EU_LANGUAGES
from eurollm_jax.fileio import read_jsonl
from eurollm_jax.tokenizer import (
    IM_END,
    IM_START,
    Tokenizer,
    TokenizerError,
    TokenizerTrainConfig,
    train_tokenizer,
)
from eurollm_jax.tokenizer import chat_template

# Letters a tokenizer must not lose: Greek tonos/dialytika, Bulgarian Cyrillic, Maltese
# ħ ġ ċ ż, Irish fadas, Baltic/Romanian/Czech diacritics, plus whitespace and symbols.
HARD_STRINGS = [
    "Όλοι οι άνθρωποι γεννιούνται ελεύθεροι — ϊ ΐ ϋ ΰ ς",
    "Всички хора се раждат свободни и равни по достойнство и права. Щъркел, ѝ",
    "Il-bnedmin kollha jitwieldu ħielsa u ugwali fid-dinjità. Ġ ġ Ċ ċ Ż ż Ħ ħ",
    "Saolaítear na daoine uile saor agus comhionann i ndínit. Á É Í Ó Ú á é í ó ú",
    "Łódź, Šiauliai, Rīga, Tartu õun, Iași ș ț, Příliš žluťoučký kůň, Ő ő Ű ű",
    "  two  spaces, a\ttab,\r\nCRLF, trailing spaces   ",
    "\n\nleading newlines and 1234567890 digits 3.14159 -42 1e10",
    "emoji 🙂🇪🇺, CJK 欧洲, math ∑∫√, U+2581 ▁ in text ▁▁, NBSP\u00a0here",
    "",
    " ",
]


def test_special_ids_are_exactly_0_to_4(demo_tokenizer):
    tok = demo_tokenizer
    assert [tok.id_to_piece(i) for i in range(5)] == ["<unk>", "<s>", "</s>", IM_START, IM_END]
    assert (tok.unk_id, tok.bos_id, tok.eos_id, tok.im_start_id, tok.im_end_id) == (0, 1, 2, 3, 4)
    assert tok.pad_id == tok.eos_id  # no pad piece: padding is marked by segment id 0
    assert all(tok.is_special(i) for i in range(5)) and not tok.is_special(5)
    assert tok.vocab_size == 2_000
    # Special pieces never come out of plain text: injection-safe ChatML.
    assert 3 not in tok.encode("<|im_start|>user<|im_end|>") and 4 not in tok.encode("<|im_end|>")


def test_lossless_round_trip_in_all_24_eu_languages(demo_tokenizer, demo_dir):
    tok = demo_tokenizer
    records = read_jsonl(str(demo_dir / "train.jsonl"))
    records += read_jsonl(str(demo_dir / "heldout.jsonl"))
    seen = set()
    for r in records:
        ids = tok.encode(r["text"], add_bos=False)
        assert tok.decode(ids) == r["text"], (r["lang"], r["text"][:80])
        assert tok.unk_id not in ids  # byte fallback: no character is ever unknown
        seen.add(r["lang"])
    assert seen == set(EU_LANGUAGES)
    for text in HARD_STRINGS:
        ids = tok.encode(text)
        assert ids[0] == tok.bos_id
        assert tok.decode(ids) == text
        assert tok.unk_id not in ids
    batch = tok.encode_batch(HARD_STRINGS)
    assert batch == [tok.encode(t) for t in HARD_STRINGS]
    assert tok.decode_batch(batch) == HARD_STRINGS


def test_bos_eos_rules_and_digits(demo_tokenizer):
    tok = demo_tokenizer
    plain = tok.encode("Hello world", add_bos=False)
    assert tok.encode("Hello world") == [1] + plain  # BOS added, EOS not (EuroLLM)
    assert tok.encode("Hello world", add_eos=True) == [1] + plain + [2]
    assert tok.encode_batch(["Hello world"], add_bos=False, add_eos=True) == [plain + [2]]
    digits = tok.encode("2024", add_bos=False)
    assert [tok.id_to_piece(i) for i in digits] == ["2", "0", "2", "4"]
    assert tok.decode([1] + plain + [2]) == "Hello world"
    assert tok.decode([1] + plain + [2], skip_special_tokens=False) == "<s>Hello world</s>"


def test_render_chat_masks_exactly_assistant_content_and_im_end(demo_tokenizer):
    tok = demo_tokenizer
    messages = [
        {"role": "system", "content": "És um assistente útil."},
        {"role": "user", "content": "Πόσο κάνει 2+2;"},
        {"role": "assistant", "content": "Κάνει 4."},
        {"role": "user", "content": "Agus i nGaeilge?"},
        {"role": "assistant", "content": "Ceathair. Ħafna grazzi!"},
    ]
    ids, mask = tok.render_chat(messages)
    assert len(ids) == len(mask) and set(mask) <= {0, 1}
    expected = "<s>" + "".join(
        f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages
    )
    assert tok.decode(ids, skip_special_tokens=False) == expected
    assert expected == chat_template.render_text(messages, bos="<s>")  # the one layout
    # Runs of mask == 1 are exactly the assistant turns, each ending with <|im_end|>.
    runs, current = [], []
    for i, m in zip(ids, mask):
        if m:
            current.append(i)
        elif current:
            runs.append(current)
            current = []
    assert current == []
    assert [tok.decode(r, skip_special_tokens=False) for r in runs] == [
        "Κάνει 4.<|im_end|>", "Ceathair. Ħafna grazzi!<|im_end|>"
    ]
    assert all(r[-1] == tok.im_end_id for r in runs)
    n_targets = sum(len(tok.encode(m["content"], add_bos=False)) + 1
                    for m in messages if m["role"] == "assistant")
    assert sum(mask) == n_targets
    # Generation prompt: trailing "<|im_start|>assistant\n", never a target.
    ids2, mask2 = tok.render_chat(messages[:2], add_generation_prompt=True)
    assert tok.decode(ids2, skip_special_tokens=False).endswith("<|im_start|>assistant\n")
    assert sum(mask2) == 0
    assert tok.decode(ids2, skip_special_tokens=False) == chat_template.render_text(
        messages[:2], add_generation_prompt=True, bos="<s>"
    )
    # Each piece encoded on its own, markers as ids: exactly chat_template.render_ids.
    enc = tok.encode_plain
    assert ids2 == (
        [1, 3] + enc("system\n") + enc(messages[0]["content"]) + [4] + enc("\n")
        + [3] + enc("user\n") + enc(messages[1]["content"]) + [4] + enc("\n")
        + [3] + enc("assistant\n")
    )
    assert chat_template.stop_ids(tok) == [4, 2]


def test_render_chat_rejects_bad_messages(demo_tokenizer):
    with pytest.raises(TokenizerError, match="role"):
        demo_tokenizer.render_chat([{"role": "robot", "content": "hi"}])
    with pytest.raises(TokenizerError, match="content"):
        demo_tokenizer.render_chat([{"role": "user", "content": None}])


def test_load_paths_pickle_and_errors(demo_tokenizer, tmp_path):
    with pytest.raises(TokenizerError, match="no SentencePiece model"):
        Tokenizer.load(str(tmp_path / "missing.model"))
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(TokenizerError, match="not a SentencePiece model"):
        Tokenizer.load(str(bad))
    demo_tokenizer.save(str(tmp_path / "tokenizer.model"))
    loaded = Tokenizer.load(str(tmp_path))  # a directory holding tokenizer.model
    assert loaded.sha256 == demo_tokenizer.sha256
    clone = pickle.loads(pickle.dumps(demo_tokenizer))
    assert clone.encode(HARD_STRINGS[2]) == demo_tokenizer.encode(HARD_STRINGS[2])


def test_plain_sentencepiece_model_without_chat_pieces(tmp_path):
    """Any SentencePiece model loads; ChatML then fails with a clear error."""
    import sentencepiece as spm

    text = ["the quick brown fox jumps over the lazy dog"] * 50
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text), model_prefix=str(tmp_path / "plain"), vocab_size=40,
        model_type="unigram", minloglevel=2, hard_vocab_limit=False,
    )
    tok = Tokenizer.load(str(tmp_path / "plain.model"))
    assert tok.decode(tok.encode("the lazy fox")) == "the lazy fox"
    assert tok.im_start_id is None
    with pytest.raises(TokenizerError, match="cannot render ChatML"):
        tok.render_chat([{"role": "user", "content": "hi"}])


def test_vocab_too_large_error_is_clear(tmp_path):
    corpus = lambda: [("tiny text", "en")]  # noqa: E731
    with pytest.raises(RuntimeError, match="too large"):
        train_tokenizer(corpus, str(tmp_path / "t.model"),
                        TokenizerTrainConfig(vocab_size=5000, num_threads=1))
