"""XL-AlpacaEval: English instructions, answers required in a target language, pairwise
LLM-judge win rate against a fixed reference model's answers.

Inputs (local files, nothing downloads):
- instructions: AlpacaEval's format, a JSON list or JSON lines of ``{"instruction": str}``
  (extra keys kept; ``"id"`` optional).
- references: a folder with ``<lang>.json`` / ``<lang>.jsonl`` per target language, rows
  ``{"instruction": str, "output": str, "generator": str}`` (AlpacaEval's model-output
  format), matched to the instructions by instruction text.
- the candidate: the checkpoint being evaluated (in-process engine) or any OpenAI-compatible
  endpoint, through the one LLM client ``eurollm_jax.llm.LLMClient``; the judge: any
  OpenAI-compatible endpoint (``launch.serve`` included), through the same client.

Per (instruction, language) pair:
1. the candidate answers ``answer_prompt.json``'s user turn (``{instruction}`` +
   "Please answer in {language}.") greedily;
2. language ID (the filtering step's identifier, ``filtering.langid.filter_identifier``) of
   both answers: a candidate answer not in the target language loses the pair (score 0)
   without a judge call; a reference answer in the wrong language while the candidate's is
   right is a win (1);
3. otherwise the judge sees the pair twice, once with the candidate as Output (a) and once
   as Output (b) (position swap, ``judge_prompt.json``); each judgment must name exactly one
   of "Output (a)" / "Output (b)". A judgment that does not parse (or a failed request) is
   counted, never guessed; the pair's score is the mean over its parsed orders (1 = candidate
   better), a pair with no parsed order is left out of the win rate.

Win rate = mean pair score; 95% confidence interval by the percentile bootstrap over pairs
(``bootstrap`` resamples, fixed seed). Also reported: position agreement (pairs whose two
orders agree), unparsed judgments, wrong-language counts.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import time
from typing import Any, Callable, Sequence

import numpy as np

from eurollm_jax.evaluation import common
from eurollm_jax.evaluation.mt import language_name
from eurollm_jax.evaluation.progress import Progress
from eurollm_jax.fileio import read_json, write_json, write_jsonl

logger = logging.getLogger("eurollm_jax.evaluation")

_VERDICT = re.compile(r"output\s*\(\s*([ab])\s*\)|^\s*\(?([ab])\)?\s*[.!]?\s*$", re.I | re.M)


class XLAlpacaEvalError(ValueError):
    """Bad XL-AlpacaEval input (files, prompts), raised before any request is sent."""


def default_prompt_dir() -> str:
    return os.path.join(common.evals_dir(), "xl_alpacaeval")


def load_prompt(path: str, fields: Sequence[str]) -> dict[str, str]:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("user"), str):
        raise XLAlpacaEvalError(f"{path}: expected {{\"system\": str (optional), \"user\": str}}")
    probe = {f: "x" for f in fields}
    for key in ("system", "user"):
        if key in data:
            try:
                data[key].format(**probe)
            except (KeyError, IndexError, ValueError) as e:
                raise XLAlpacaEvalError(f"{path}: {key} uses a field other than {list(fields)}: "
                                        f"{e}") from None
    for f in fields:
        if f not in ("language",) and "{" + f + "}" not in data["user"]:
            raise XLAlpacaEvalError(f"{path}: the user prompt has no {{{f}}} field")
    return {k: data[k] for k in ("system", "user") if k in data}


def _read_rows(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as e:
        raise XLAlpacaEvalError(f"{path}: not JSON or JSON lines ({e})") from None
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not isinstance(r.get("instruction"), str):
            raise XLAlpacaEvalError(f"{path} row {i}: needs a string \"instruction\"")
    return rows


def read_instructions(path: str, limit: int | None = None) -> list[dict]:
    rows = _read_rows(path)[:limit]
    if not rows:
        raise XLAlpacaEvalError(f"{path}: no instructions")
    return rows


def read_references(references_dir: str, lang: str, instructions: Sequence[dict]) -> list[dict]:
    """The reference rows of ``lang``, in the order of ``instructions``."""
    found = [p for ext in ("json", "jsonl")
             for p in glob.glob(os.path.join(references_dir, f"{lang}.{ext}"))]
    if not found:
        raise XLAlpacaEvalError(f"no reference answers for {lang!r}: expected "
                                f"{references_dir}/{lang}.json or .jsonl")
    by_text = {}
    for r in _read_rows(found[0]):
        if not isinstance(r.get("output"), str):
            raise XLAlpacaEvalError(f"{found[0]}: every row needs a string \"output\"")
        by_text[r["instruction"].strip()] = r
    missing = [i for i, x in enumerate(instructions) if x["instruction"].strip() not in by_text]
    if missing:
        raise XLAlpacaEvalError(f"{found[0]}: no reference answer for instructions {missing[:5]}"
                                f"{' ...' if len(missing) > 5 else ''} ({len(missing)} missing)")
    return [by_text[x["instruction"].strip()] for x in instructions]


def parse_verdict(text: str | None) -> str | None:
    """"a", "b" or None (no verdict, or both named)."""
    if not text:
        return None
    letters = {(m.group(1) or m.group(2)).lower() for m in _VERDICT.finditer(text)}
    return letters.pop() if len(letters) == 1 else None


def bootstrap_ci(scores: Sequence[float], *, resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the mean over pairs."""
    x = np.asarray(scores, np.float64)
    if x.size == 0:
        return None, None
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(int(resamples), x.size))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))


def _language_identifier():
    from eurollm_jax.filtering.langid import filter_identifier

    ident = filter_identifier()  # the filter's two-pass identifier, labels over every language
    return lambda texts: [p[0] for p in ident.predict(list(texts))]


def judge_language(
    *,
    lang: str,
    instructions: Sequence[dict],
    references: Sequence[dict],
    candidate,
    judge,
    answer_prompt: dict[str, str],
    judge_prompt: dict[str, str],
    identify: Callable[[Sequence[str]], list[str]] | None,
    max_tokens: int = 512,
    judge_max_tokens: int = 16,
    bootstrap: int = 1000,
    seed: int = 0,
) -> tuple[dict[str, Any], list[dict], list[dict]]:
    """(result, answers, judgments) of one target language."""
    name = language_name(lang)
    progress = Progress(len(instructions), f"xl_alpacaeval {lang}", unit="pairs")

    def conv(prompt, **fields):
        msgs = [{"role": "system", "content": prompt["system"].format(**fields)}] \
            if "system" in prompt else []
        return msgs + [{"role": "user", "content": prompt["user"].format(**fields)}]

    asked = [conv(answer_prompt, instruction=x["instruction"], language=name)
             for x in instructions]
    got = candidate.chat(asked, temperature=0.0, max_tokens=max_tokens, seed=seed)
    answers = [{"instruction": x["instruction"], "output": r.text or "", "error": r.error,
                "generator": candidate.name} for x, r in zip(instructions, got)]
    refs = [r["output"] for r in references]
    if identify is not None:
        model_lang = identify([a["output"] for a in answers])
        ref_lang = identify(refs)
    else:
        model_lang = ref_lang = [lang] * len(answers)
    for a, ml in zip(answers, model_lang):
        a["language"] = ml

    to_judge, judge_convs = [], []
    scores: list[float | None] = [None] * len(answers)
    outcome = [""] * len(answers)
    wrong = {"candidate": 0, "reference": 0}
    for i, (a, ml, rl) in enumerate(zip(answers, model_lang, ref_lang)):
        model_ok = bool(a["output"].strip()) and ml == lang
        ref_ok = rl == lang
        wrong["candidate"] += not model_ok
        wrong["reference"] += not ref_ok
        if not model_ok:
            scores[i], outcome[i] = 0.0, "candidate_wrong_language"
        elif not ref_ok:
            scores[i], outcome[i] = 1.0, "reference_wrong_language"
        else:
            to_judge.append(i)
            x = instructions[i]["instruction"]
            judge_convs.append(conv(judge_prompt, instruction=x, language=name,
                                    output_a=a["output"], output_b=refs[i]))
            judge_convs.append(conv(judge_prompt, instruction=x, language=name,
                                    output_a=refs[i], output_b=a["output"]))
    verdicts = judge.chat(judge_convs, temperature=0.0, max_tokens=judge_max_tokens,
                          seed=seed) if judge_convs else []
    judgments, unparsed, errors, agree, both = [], 0, 0, 0, 0
    for k, i in enumerate(to_judge):
        first, second = verdicts[2 * k], verdicts[2 * k + 1]
        v1, v2 = parse_verdict(first.text), parse_verdict(second.text)
        # candidate is (a) in the first order and (b) in the second
        wins = [w for w in (None if v1 is None else float(v1 == "a"),
                            None if v2 is None else float(v2 == "b")) if w is not None]
        for res, v in ((first, v1), (second, v2)):
            if v is None:
                unparsed += 1
                errors += res.error is not None
        if len(wins) == 2:
            both += 1
            agree += wins[0] == wins[1]
        scores[i] = float(np.mean(wins)) if wins else None
        outcome[i] = "judged" if wins else "unparsed"
        judgments.append({"index": i, "instruction": instructions[i]["instruction"],
                          "candidate_position": ["a", "b"],
                          "prompts": [judge_convs[2 * k][-1]["content"],
                                      judge_convs[2 * k + 1][-1]["content"]],
                          "judge_texts": [first.text, second.text],
                          "judge_errors": [first.error, second.error],
                          "verdicts": [v1, v2], "score": scores[i]})
        progress.update(1)
    valid = [s for s in scores if s is not None]
    low, high = bootstrap_ci(valid, resamples=bootstrap, seed=seed)
    result = {
        "win_rate": float(np.mean(valid)) if valid else None,
        "ci_low": low, "ci_high": high, "ci_level": 0.95, "bootstrap": int(bootstrap),
        "pairs": len(answers), "scored_pairs": len(valid),
        "judged_pairs": sum(o == "judged" for o in outcome),
        "judge_requests": len(judge_convs), "unparsed_judgments": unparsed,
        "judge_errors": errors, "candidate_errors": sum(a["error"] is not None for a in answers),
        "wrong_language": wrong,
        "position_agreement": (agree / both) if both else None,
        "outcomes": {o: outcome.count(o) for o in sorted(set(outcome))},
    }
    for a, s, o in zip(answers, scores, outcome):
        a["score"], a["outcome"] = s, o
    return result, answers, judgments


def run_xl_alpacaeval(
    model: common.EvalModel | None,
    *,
    instructions_file: str,
    references_dir: str,
    languages: Sequence[str],
    output_dir: str,
    judge_url: str,
    judge_model: str,
    judge_api_key: str | None = None,
    candidate_url: str | None = None,
    candidate_model: str | None = None,
    answer_prompt_file: str | None = None,
    judge_prompt_file: str | None = None,
    language_check: bool = True,
    max_tokens: int = 512,
    judge_max_tokens: int = 16,
    bootstrap: int = 1000,
    seed: int = 0,
    limit: int | None = None,
    concurrency: int = 8,
    registry_dir: str | None = None,
) -> dict[str, Any]:
    """Judge every language; writes ``OUTPUT/xl_alpacaeval.json``, per language
    ``xl_alpacaeval/<lang>.answers.jsonl`` and ``.judgments.jsonl``, and a registry record.
    The candidate is ``model`` (in-process) or ``candidate_url``/``candidate_model``. LLM
    answers are cached under ``OUTPUT/.llm_cache`` and finished languages are stored, so a
    killed run resends nothing it already has."""
    from eurollm_jax.llm import LLMClient

    start = time.perf_counter()
    if not languages:
        raise XLAlpacaEvalError("give the target languages (--languages=de,fr,...)")
    instructions = read_instructions(instructions_file, limit)
    references = {l: read_references(references_dir, l, instructions) for l in languages}
    prompts_dir = default_prompt_dir()
    answer_prompt = load_prompt(answer_prompt_file or os.path.join(prompts_dir,
                                                                   "answer_prompt.json"),
                                ("instruction", "language"))
    judge_prompt = load_prompt(judge_prompt_file or os.path.join(prompts_dir, "judge_prompt.json"),
                               ("instruction", "language", "output_a", "output_b"))
    cache = os.path.join(output_dir, ".llm_cache")
    if candidate_url:
        candidate = LLMClient.from_endpoint(candidate_url, candidate_model or "eurollm",
                                            concurrency=concurrency,
                                            cache_dir=os.path.join(cache, "candidate"))
        if model is None:
            model = common.EvalModel(None, {"path": f"endpoint:{candidate_url}#{candidate_model}",
                                            "kind": "endpoint", "fingerprint": None,
                                            "weights_files": []})
    elif model is not None:
        candidate = LLMClient.from_engine(model.engine, model_name="candidate",
                                          cache_dir=os.path.join(cache, "candidate"))
    else:
        raise XLAlpacaEvalError("give a checkpoint (the candidate) or --candidate_url")
    judge = LLMClient.from_endpoint(judge_url, judge_model, api_key=judge_api_key,
                                    concurrency=concurrency, cache_dir=os.path.join(cache, "judge"))
    identify = _language_identifier() if language_check else None
    settings = {"instructions_file": os.path.abspath(instructions_file),
                "references_dir": os.path.abspath(references_dir), "judge_url": judge_url,
                "judge_model": judge_model, "answer_prompt": answer_prompt,
                "judge_prompt": judge_prompt, "language_check": language_check,
                "max_tokens": max_tokens, "judge_max_tokens": judge_max_tokens,
                "bootstrap": bootstrap, "seed": seed, "limit": limit,
                "candidate": candidate.name}

    def one(lang: str) -> dict[str, Any]:
        result, answers, judgments = judge_language(
            lang=lang, instructions=instructions, references=references[lang],
            candidate=candidate, judge=judge, answer_prompt=answer_prompt,
            judge_prompt=judge_prompt, identify=identify, max_tokens=max_tokens,
            judge_max_tokens=judge_max_tokens, bootstrap=bootstrap, seed=seed)
        base = os.path.join(output_dir, "xl_alpacaeval", lang)
        write_jsonl(base + ".answers.jsonl", answers)
        write_jsonl(base + ".judgments.jsonl", judgments)
        return result

    results = common.run_per_language(task="xl_alpacaeval", languages=list(languages),
                                      output_dir=output_dir, model=model, settings=settings,
                                      evaluate_language=one)
    write_json(os.path.join(output_dir, "xl_alpacaeval.json"), results)
    scores = {l: {"win_rate": r["win_rate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                  "wrong_language_rate": r["wrong_language"]["candidate"] / max(r["pairs"], 1)}
              for l, r in results.items()}
    common.write_registry_record(
        registry_dir=registry_dir or os.path.join(output_dir, "registry"),
        task="xl_alpacaeval", languages=list(languages), scores=scores, settings=settings,
        model=model, seconds=time.perf_counter() - start, details={"xl_alpacaeval": results,
                                                                    "judge_usage": judge.usage})
    return results
