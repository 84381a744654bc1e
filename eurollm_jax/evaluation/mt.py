"""Machine translation on FLORES-style local files: prompts, batched greedy generation,
chrF and BLEU with sacrebleu, optional COMET.

Data: ``data_dir`` holds one file per language, one sentence per line, the lines of all
languages parallel. A language's file is the first that exists of ``<lang>.<split>``,
``<split>/<lang>.<split>``, ``<flores code>.<split>``, ``<split>/<flores code>.<split>``
and ``<lang>.txt`` (``lang`` ISO 639-1, e.g. ``de``; FLORES-200 code e.g. ``deu_Latn``;
split default ``devtest``), so an unpacked FLORES-200 release works as it is.

Prompt per direction (``PROMPTS``; ``prompt_format="auto"`` picks chat when the tokenizer has
the ChatML markers, i.e. an instruct model):
- chat: EuroLLM-Instruct's format, one user turn
  ``Translate the following {src} source text to {tgt}:\\n{src}: {source}\\n{tgt}: ``
  rendered with the one ChatML template; generation stops at ``<|im_end|>``.
- base: ``{src}: {source}\\n{tgt}:``; generation stops at the first newline.
``{src}`` / ``{tgt}`` are English language names, ``{source}`` the source sentence. Custom
templates: a JSON file ``{"base": "...", "chat": "..."}`` with the same fields.

Scores: ``sacrebleu.metrics.BLEU(trg_lang=tgt)`` (so zh/ja/ko get their tokenisers, as
the ``sacrebleu -l src-tgt`` command line does) and ``CHRF()`` over the whole test set; equal
to ``sacrebleu REF -i HYP -m bleu chrf -l src-tgt`` on the files written to
``OUTPUT/mt/<src>-<tgt>.{hyp,ref,src}.txt``. COMET needs a local model path
(``comet_model``; ``pip install unbabel-comet``); nothing is downloaded.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Sequence

from eurollm_jax.evaluation import common
from eurollm_jax.evaluation.progress import Progress
from eurollm_jax.fileio import read_json, write_text
from eurollm_jax.languages import LANGUAGE_NAMES

logger = logging.getLogger("eurollm_jax.evaluation")

FLORES_CODES = {
    "bg": "bul_Cyrl", "cs": "ces_Latn", "da": "dan_Latn", "de": "deu_Latn", "el": "ell_Grek",
    "en": "eng_Latn", "es": "spa_Latn", "et": "est_Latn", "fi": "fin_Latn", "fr": "fra_Latn",
    "ga": "gle_Latn", "hr": "hrv_Latn", "hu": "hun_Latn", "it": "ita_Latn", "lt": "lit_Latn",
    "lv": "lvs_Latn", "mt": "mlt_Latn", "nl": "nld_Latn", "pl": "pol_Latn", "pt": "por_Latn",
    "ro": "ron_Latn", "sk": "slk_Latn", "sl": "slv_Latn", "sv": "swe_Latn", "ar": "arb_Arab",
    "ca": "cat_Latn", "gl": "glg_Latn", "hi": "hin_Deva", "ja": "jpn_Jpan", "ko": "kor_Hang",
    "no": "nob_Latn", "ru": "rus_Cyrl", "tr": "tur_Latn", "uk": "ukr_Cyrl", "zh": "zho_Hans",
}
PROMPTS = {
    "chat": "Translate the following {src} source text to {tgt}:\n{src}: {source}\n{tgt}: ",
    "base": "{src}: {source}\n{tgt}:",
}


class MTError(ValueError):
    """Bad MT input (files, directions, templates, COMET model), raised before any work."""


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError as e:
        raise ImportError("MT scores need sacrebleu: pip install 'eurollm_jax[eval]'") from e
    return sacrebleu


def language_file(data_dir: str, lang: str, split: str = "devtest") -> str:
    code = FLORES_CODES.get(lang, lang)
    candidates = [f"{lang}.{split}", os.path.join(split, f"{lang}.{split}"), f"{code}.{split}",
                  os.path.join(split, f"{code}.{split}"), f"{lang}.txt"]
    for c in candidates:
        path = os.path.join(data_dir, c)
        if os.path.isfile(path):
            return path
    raise MTError(f"no {split} file for {lang!r} in {data_dir}; tried {candidates}")


def read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").rstrip("\r") for line in f]


def parse_directions(directions: str | Sequence[str] | None = None,
                     languages: Sequence[str] | None = None, pivot: str = "en") -> list[str]:
    """"en-de,de-en" (or a list) -> ["en-de", "de-en"]; without directions, ``languages``
    gives pivot->X for each X."""
    if directions:
        items = directions.split(",") if isinstance(directions, str) else list(directions)
    elif languages:
        items = [f"{pivot}-{l}" for l in languages if l != pivot]
    else:
        raise MTError("give directions (e.g. en-de,de-en) or target languages")
    out = []
    for d in (x.strip() for x in items):
        parts = d.split("-")
        if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
            raise MTError(f"direction {d!r}: expected SRC-TGT with two different codes (en-de)")
        out.append(d)
    return out


def load_templates(path: str | None) -> dict[str, str]:
    templates = dict(PROMPTS)
    if path:
        data = read_json(path)
        unknown = sorted(set(data) - set(PROMPTS))
        if unknown:
            raise MTError(f"{path}: unknown template keys {unknown}; use {sorted(PROMPTS)}")
        templates.update(data)
    for name, t in templates.items():
        try:
            t.format(src="x", tgt="y", source="z")
        except (KeyError, IndexError, ValueError) as e:
            raise MTError(f"template {name!r} uses fields other than {{src}}, {{tgt}}, "
                          f"{{source}}: {e}") from None
        if "{source}" not in t:
            raise MTError(f"template {name!r} has no {{source}} field")
    return templates


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def score_corpus(hypotheses: Sequence[str], references: Sequence[str], tgt: str
                 ) -> dict[str, Any]:
    """{"bleu", "chrf", "bleu_signature", "chrf_signature"} (sacrebleu corpus scores)."""
    if len(hypotheses) != len(references):
        raise MTError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    sb = _sacrebleu()
    bleu = sb.metrics.BLEU(trg_lang=tgt)
    chrf = sb.metrics.CHRF()
    b = bleu.corpus_score(list(hypotheses), [list(references)])
    c = chrf.corpus_score(list(hypotheses), [list(references)])
    return {"bleu": float(b.score), "chrf": float(c.score),
            "bleu_signature": str(bleu.get_signature()),
            "chrf_signature": str(chrf.get_signature())}


def load_comet(path: str):
    if not os.path.exists(path):
        raise MTError(f"COMET model {path} does not exist; pass a local checkpoint "
                      f"(e.g. Unbabel/wmt22-comet-da's checkpoints/model.ckpt); nothing is "
                      f"downloaded")
    try:
        from comet import load_from_checkpoint
    except ImportError as e:
        raise ImportError("COMET needs `pip install unbabel-comet`") from e
    return load_from_checkpoint(path)


def translate(engine, sources: Sequence[str], src: str, tgt: str, *, prompt_format: str,
              templates: dict[str, str], max_new_tokens: int = 256, batch_size: int = 32,
              progress: Progress | None = None) -> tuple[list[str], int]:
    """(greedy translations, sentences whose prompt did not fit the context)."""
    from eurollm_jax.inference import chat_stop_ids, encode_chat
    from eurollm_jax.inference.tokenization import encode_prompt

    tok = engine.tokenizer
    fields = {"src": language_name(src), "tgt": language_name(tgt)}
    prompts = []
    for s in sources:
        text = templates[prompt_format].format(source=s, **fields)
        if prompt_format == "chat":
            prompts.append(encode_chat(tok, [{"role": "user", "content": text}]))
        else:
            prompts.append(encode_prompt(tok, text))
    stop_ids = chat_stop_ids(tok) if prompt_format == "chat" else []
    stop_strings = ["\n"]
    limit = int(engine.cfg.max_seq_len)
    out = [""] * len(sources)
    too_long = 0
    fits = []
    for i, p in enumerate(prompts):
        if len(p) >= limit:
            too_long += 1
        else:
            fits.append(i)
    for start in range(0, len(fits), batch_size):
        idx = fits[start:start + batch_size]
        budget = min(max_new_tokens, min(limit - len(prompts[i]) for i in idx))
        outs = engine.generate([prompts[i] for i in idx], max_new_tokens=budget,
                               stop_token_ids=stop_ids, stop_strings=stop_strings)
        for i, c in zip(idx, outs):
            out[i] = (c.text or "").strip()
        if progress is not None:
            progress.update(len(idx))
    return out, too_long


def run_mt(
    model: common.EvalModel,
    *,
    data_dir: str,
    output_dir: str,
    directions: str | Sequence[str] | None = None,
    languages: Sequence[str] | None = None,
    split: str = "devtest",
    prompt_format: str = "auto",
    templates_file: str | None = None,
    max_new_tokens: int = 256,
    batch_size: int = 32,
    limit: int | None = None,
    comet_model: str | None = None,
    registry_dir: str | None = None,
) -> dict[str, Any]:
    """Translate and score every direction; returns {direction: scores}. Finished directions
    of a killed run are reused."""
    from eurollm_jax.inference import has_chat_markers

    start = time.perf_counter()
    dirs = parse_directions(directions, languages)
    if prompt_format == "auto":
        prompt_format = "chat" if has_chat_markers(model.tokenizer) else "base"
    if prompt_format not in PROMPTS:
        raise MTError(f"prompt_format must be auto, chat or base, got {prompt_format!r}")
    templates = load_templates(templates_file)
    files = {}
    for d in dirs:
        for lang in d.split("-"):
            if lang not in files:
                files[lang] = language_file(data_dir, lang, split)
    lines = {lang: read_lines(p) for lang, p in files.items()}
    counts = {lang: len(v) for lang, v in lines.items()}
    if len(set(counts.values())) != 1:
        raise MTError(f"the files are not parallel (lines per language: {counts})")
    _sacrebleu()
    comet = load_comet(comet_model) if comet_model else None
    settings = {"data_dir": os.path.abspath(data_dir), "split": split,
                "prompt_format": prompt_format, "template": templates[prompt_format],
                "max_new_tokens": max_new_tokens, "limit": limit, "decoding": "greedy",
                "comet_model": comet_model}

    def one(direction: str) -> dict[str, Any]:
        src, tgt = direction.split("-")
        sources, refs = lines[src][:limit], lines[tgt][:limit]
        hyps, too_long = translate(
            model.engine, sources, src, tgt, prompt_format=prompt_format, templates=templates,
            max_new_tokens=max_new_tokens, batch_size=batch_size,
            progress=Progress(len(sources), f"mt {direction}", unit="sentences"))
        base = os.path.join(output_dir, "mt", direction)
        write_text(base + ".hyp.txt", "".join(h + "\n" for h in hyps))
        write_text(base + ".ref.txt", "".join(r + "\n" for r in refs))
        write_text(base + ".src.txt", "".join(s + "\n" for s in sources))
        result = score_corpus(hyps, refs, tgt)
        result["sentences"], result["too_long"] = len(sources), too_long
        if comet is not None:
            data = [{"src": s, "mt": h, "ref": r} for s, h, r in zip(sources, hyps, refs)]
            result["comet"] = float(comet.predict(data, batch_size=16, gpus=0).system_score)
        return result

    results = common.run_per_language(task="mt", languages=dirs, output_dir=output_dir,
                                      model=model, settings=settings, evaluate_language=one)
    metrics = ("bleu", "chrf", "comet")
    scores = {d: {m: r[m] for m in metrics if m in r} for d, r in results.items()}
    common.write_registry_record(
        registry_dir=registry_dir or os.path.join(output_dir, "registry"), task="mt",
        languages=dirs, scores=scores, settings=settings, model=model,
        seconds=time.perf_counter() - start, details={"mt": results})
    return results
