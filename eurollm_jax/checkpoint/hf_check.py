"""A conversion check users can run on a Hugging Face directory: ours against transformers'.

``python -m launch.convert --check=DIR`` calls ``check_hf_directory``: it loads the
directory twice, with our code (``read_hf_tokenizer``, ``load_hf_checkpoint``) and with
transformers (``AutoTokenizer``, ``LlamaForCausalLM``), then compares on sample text in
the 24 EU languages (gflanguages' UDHR samples, local, plus digits, whitespace runs and
emoji): token ids text by text, the chat template on a multi-turn conversation, and the
float32 logits of each language's first text. It reports the first difference (language, text,
token position, both sides' pieces) rather than a bare mismatch. transformers and torch are
imported only here, lazily.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from eurollm_jax.checkpoint.hf_tokenizer import read_hf_tokenizer
from eurollm_jax.languages import EU_LANGUAGES, gflanguages_key, load_gflanguages
from eurollm_jax.tokenizer.chat_template import render_ids

EXTRAS = (" 2026-12-01: 3.14159 × 1000000", "  two   spaces\tand\ttabs\n\n  newlines ",
          "emoji 😀👍🏽 🇪🇺")


def sample_texts(languages=EU_LANGUAGES, per_language: int = 3) -> dict[str, list[str]]:
    """Up to ``per_language`` gflanguages sample lines per language, the last ones with
    digits, whitespace runs and emoji appended."""
    entries = load_gflanguages()
    out = {}
    for lang in languages:
        entry = entries.get(gflanguages_key(lang))
        if entry is None:
            continue
        lines: list[str] = []
        for _, value in entry.sample_text.ListFields():
            for line in value.split("\n"):
                if len(line.split()) >= 3 and line not in lines:
                    lines.append(line)
        lines.sort(key=len, reverse=True)
        texts = lines[:per_language]
        out[lang] = texts + [texts[0][:120] + extra for extra in EXTRAS] if texts else []
    return out


def first_id_difference(tokenizer, hf_tokenizer, texts_by_lang) -> dict[str, Any] | None:
    """The first text whose ids differ between ``tokenizer`` (ours) and ``hf_tokenizer``,
    with the position and a few pieces of each side; None when all agree."""
    for lang, texts in texts_by_lang.items():
        for text in texts:
            ours, theirs = tokenizer.encode(text), list(hf_tokenizer(text)["input_ids"])
            if ours == theirs:
                continue
            i = next((k for k, (a, b) in enumerate(zip(ours, theirs)) if a != b),
                     min(len(ours), len(theirs)))
            return {
                "language": lang, "text": text, "position": i,
                "ours": [tokenizer.id_to_piece(t) for t in ours[i:i + 4]],
                "transformers": hf_tokenizer.convert_ids_to_tokens(theirs[i:i + 4]),
            }
    return None


def check_hf_directory(directory: str, *, max_tokens: int = 64, model: bool = True) -> dict:
    """Compare our loading of ``directory`` with transformers' (see module doc).

    Returns {"texts", "languages", "tokenizer_difference" (None or the first difference),
    "chat_template_equal", "logits": {lang: max |difference|}, "max_abs_logit_diff",
    "argmax_difference" (None or the first language/position where the greedy tokens
    differ)}; ``model=False`` checks the tokenizer only.
    """
    try:
        import transformers
    except ImportError as e:
        raise ImportError(f"the conversion check needs transformers: pip install transformers ({e})") from e
    tokenizer = read_hf_tokenizer(directory)
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    texts = sample_texts()
    report: dict[str, Any] = {
        "directory": directory,
        "texts": sum(len(t) for t in texts.values()),
        "languages": len(texts),
        "tokenizer_difference": first_id_difference(tokenizer, hf_tokenizer, texts),
    }
    chat = [{"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": texts["en"][0][:80]},
            {"role": "assistant", "content": texts["de"][0][:80]},
            {"role": "user", "content": texts["pl"][0][:80]}]
    if getattr(hf_tokenizer, "chat_template", None):
        out = hf_tokenizer.apply_chat_template(chat, tokenize=True, add_generation_prompt=True)
        hf_ids = out if isinstance(out, list) else out["input_ids"]
        report["chat_template_equal"] = list(hf_ids) == render_ids(
            tokenizer, chat, add_generation_prompt=True)[0]
    else:
        report["chat_template_equal"] = False
    if not model:
        return report
    if not os.path.exists(os.path.join(directory, "config.json")):
        raise FileNotFoundError(f"{directory} has no config.json: pass model=False to check the tokenizer only")
    import torch

    from eurollm_jax.checkpoint.hf import load_hf_checkpoint

    ours_model = load_hf_checkpoint(directory, param_dtype="float32", compute_dtype="float32")
    hf_model = transformers.LlamaForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    report["logits"], report["argmax_difference"] = {}, None
    for lang, lang_texts in texts.items():
        ids = np.asarray([tokenizer.encode(lang_texts[0])[:max_tokens]])
        ours = np.asarray(ours_model(ids), dtype=np.float32)
        with torch.no_grad():
            theirs = hf_model(torch.tensor(ids)).logits.float().numpy()
        report["logits"][lang] = float(np.abs(ours - theirs).max())
        differ = np.nonzero(ours.argmax(-1)[0] != theirs.argmax(-1)[0])[0]
        if report["argmax_difference"] is None and differ.size:
            report["argmax_difference"] = {"language": lang, "position": int(differ[0])}
    report["max_abs_logit_diff"] = max(report["logits"].values())
    return report


def format_report(report: dict) -> str:
    """Human-readable lines for ``check_hf_directory``'s report; the first difference first."""
    lines = [f"checked {report['directory']}: {report['texts']} texts in {report['languages']} languages"]
    diff = report["tokenizer_difference"]
    if diff:
        lines.append(
            f"TOKENIZER DIFFERS [{diff['language']}] at token {diff['position']} of "
            f"{diff['text'][:80]!r}: ours {diff['ours']} vs transformers {diff['transformers']}")
    else:
        lines.append("token ids: identical")
    lines.append("chat template: " + ("identical" if report["chat_template_equal"] else "DIFFERS"))
    if "logits" in report:
        lines.append(f"logits: max |difference| {report['max_abs_logit_diff']:.2e}")
        a = report["argmax_difference"]
        lines.append("greedy tokens: " + (
            f"DIFFER [{a['language']}] at position {a['position']}" if a else "identical"))
    return "\n".join(lines)


def passed(report: dict, atol: float = 1e-3) -> bool:
    return (report["tokenizer_difference"] is None and report["chat_template_equal"]
            and report.get("max_abs_logit_diff", 0.0) <= atol
            and report.get("argmax_difference") is None)
