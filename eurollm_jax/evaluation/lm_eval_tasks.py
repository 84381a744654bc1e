"""The European benchmark set through lm-evaluation-harness, on local files.

Each family is lm-eval's own built-in task (its prompt, answer extraction and metrics,
read from the installed lm-eval) with the dataset replaced by local files in the published
format (the rows of the Hugging Face dataset it normally downloads, as JSON lines, CSV or
Parquet): a generated YAML ``include``s the built-in config and overrides only the dataset
fields and the shot count. Scores are therefore lm-eval's built-in scoring by construction;
the tests check this and recompute the accuracies with transformers.

Local layout: ``DATA_DIR/<family>/<lang>/<split>.jsonl`` (or ``.json``, ``.csv``,
``.parquet``), split names as published (``FAMILIES[f].splits``), e.g.
``arc/de/test.jsonl`` + ``arc/de/train.jsonl`` (few-shot examples), ``hellaswag/de/val.jsonl``.

| family | lm-eval built-in (published dataset) | splits | shots |
|---|---|---|---|
| arc | okapi ``arc_<l>`` (alexandrainst/m_arc) | train, validation, test | 25 |
| hellaswag | okapi ``hellaswag_<l>`` (alexandrainst/m_hellaswag) | val | 10 |
| mmlu | okapi ``m_mmlu_<l>`` (alexandrainst/m_mmlu) | train (few-shot), test | 5 |
| truthfulqa | okapi ``truthfulqa_<l>_mc2`` (alexandrainst/m_truthfulqa) | val | 0 |
| truthfulqa_mc1 | okapi ``truthfulqa_<l>_mc1`` | val | 0 |
| gsm8k | ``gsm8k`` (openai/gsm8k rows, one file per language) | train, test | 5 |
| belebele | ``belebele_<flores>`` (facebook/belebele) | test | 0 |
| xnli | ``xnli_<l>`` (facebook/xnli) | train, validation | 0 |
| xcopa | ``xcopa_<l>`` (cambridgeltl/xcopa) | validation, test | 0 |
| xstorycloze | ``xstorycloze_<l>`` (juletxara/xstory_cloze) | train, eval | 0 |
| mgsm | ``mgsm_direct_<l>`` (juletxara/mgsm) | train, test | 0 |

ARC, HellaSwag, MMLU, TruthfulQA and belebele/xstorycloze prompts do not depend on the
language, so a language lm-eval has no config for uses the family's base config; XNLI,
XCOPA and MGSM prompts are written per language, so only lm-eval's languages work there.
Task names that are not families (``arc_easy``, ``m_mmlu_de``) are lm-eval's own tasks,
run through the default task index (their datasets must be in the local HF cache).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any, Sequence

from eurollm_jax.evaluation import common
from eurollm_jax.evaluation.mt import FLORES_CODES
from eurollm_jax.fileio import write_json, write_text

logger = logging.getLogger("eurollm_jax.evaluation")

_SPLIT_KEYS = ("training_split", "validation_split", "test_split", "fewshot_split")
_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


class LMEvalTaskError(ValueError):
    """A task, language or data file the run cannot use (raised before anything runs)."""


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    per_language: str  # built-in yaml, relative to lm_eval/tasks, with {code}
    base: str | None  # language-independent built-in yaml, or None
    splits: dict  # {"test_split": "test", ...}: the published split names
    num_fewshot: int | None
    code: str = "iso"  # how lm-eval names the language: "iso" or "flores"


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("arc", "okapi/arc_multilingual/arc_{code}.yaml", "okapi/arc_multilingual/_arc_yaml",
           {"training_split": "train", "validation_split": "validation", "test_split": "test"},
           25),
    Family("hellaswag", "okapi/hellaswag_multilingual/hellaswag_{code}.yaml",
           "okapi/hellaswag_multilingual/_hellaswag_yaml", {"validation_split": "val"}, 10),
    Family("mmlu", "okapi/mmlu_multilingual/m_mmlu_{code}.yaml",
           "okapi/mmlu_multilingual/_default_yaml",
           {"test_split": "test", "fewshot_split": "train"}, 5),
    Family("truthfulqa", "okapi/truthfulqa_multilingual/truthfulqa_{code}_mc2.yaml",
           "okapi/truthfulqa_multilingual/_truthfulqa_mc2_yaml", {"validation_split": "val"}, 0),
    Family("truthfulqa_mc1", "okapi/truthfulqa_multilingual/truthfulqa_{code}_mc1.yaml",
           "okapi/truthfulqa_multilingual/_truthfulqa_mc1_yaml", {"validation_split": "val"}, 0),
    Family("gsm8k", "gsm8k/gsm8k.yaml", "gsm8k/gsm8k.yaml",
           {"training_split": "train", "fewshot_split": "train", "test_split": "test"}, 5),
    Family("belebele", "belebele/belebele_{code}.yaml", "belebele/_default_template_yaml",
           {"test_split": "test", "fewshot_split": "test"}, None, code="flores"),
    Family("xnli", "xnli/xnli_{code}.yaml", None,
           {"training_split": "train", "validation_split": "validation"}, None),
    Family("xcopa", "xcopa/default_{code}.yaml", None,
           {"validation_split": "validation", "test_split": "test"}, None),
    Family("xstorycloze", "xstorycloze/default_{code}.yaml", "xstorycloze/default_ar.yaml",
           {"training_split": "train", "validation_split": "eval"}, None),
    Family("mgsm", "mgsm/direct/mgsm_direct_{code}.yaml", None,
           {"training_split": "train", "test_split": "test"}, None),
)}
LEADERBOARD_SHOTS = {"arc": 25, "hellaswag": 10, "mmlu": 5, "truthfulqa": 0, "gsm8k": 5}


def _lm_eval_tasks_dir() -> str:
    try:
        import lm_eval.tasks
    except ImportError as e:
        raise ImportError("lm-eval tasks need lm-eval: pip install 'eurollm_jax[eval]'") from e
    return os.path.dirname(os.path.abspath(lm_eval.tasks.__file__))


def builtin_config(family: str, lang: str) -> str:
    """Absolute path of the built-in lm-eval yaml a (family, language) task includes."""
    fam = FAMILIES[family]
    tasks = _lm_eval_tasks_dir()
    code = FLORES_CODES.get(lang, lang) if fam.code == "flores" else lang
    specific = os.path.join(tasks, fam.per_language.format(code=code))
    if os.path.isfile(specific):
        return specific
    if fam.base is not None:
        return os.path.join(tasks, fam.base)
    pattern = os.path.basename(fam.per_language)
    prefix, suffix = pattern.split("{code}")
    have = sorted(n[len(prefix):-len(suffix)] for n in os.listdir(os.path.dirname(specific))
                  if n.startswith(prefix) and n.endswith(suffix))
    raise LMEvalTaskError(f"{family} has prompts for {have} in lm-eval, not {lang!r} (its "
                          f"prompt is written per language)")


def task_name(family: str, lang: str) -> str:
    return f"eurollm_{family}_{lang}"


def _split_files(data_dir: str, family: str, lang: str) -> dict[str, str]:
    folder = os.path.join(data_dir, family, lang)
    found = {}
    for split in set(FAMILIES[family].splits.values()):
        for ext in _FORMATS:
            path = os.path.join(folder, split + ext)
            if os.path.isfile(path):
                found[split] = os.path.abspath(path)
                break
    return found


def task_yaml(family: str, lang: str, data_dir: str, num_fewshot: int | None = None) -> str:
    """The YAML of one local task: the built-in config with the dataset read from files."""
    import yaml

    fam = FAMILIES[family]
    files = _split_files(data_dir, family, lang)
    eval_split = fam.splits.get("test_split") or fam.splits.get("validation_split")
    if eval_split not in files:
        exts = "|".join(e.lstrip(".") for e in _FORMATS)
        raise LMEvalTaskError(
            f"{family} {lang}: no {os.path.join(data_dir, family, lang, eval_split)}.{{{exts}}} "
            f"(the {eval_split} split, in the published format of {fam.per_language})")
    formats = {_FORMATS[os.path.splitext(p)[1]] for p in files.values()}
    if len(formats) > 1:
        raise LMEvalTaskError(f"{family} {lang}: mixed file formats {sorted(formats)}")
    config: dict[str, Any] = {
        "include": builtin_config(family, lang),
        "task": task_name(family, lang),
        "tag": [f"eurollm_{family}"],
        "dataset_path": formats.pop(),
        "dataset_name": None,
        "dataset_kwargs": {"data_files": files},
    }
    for key in _SPLIT_KEYS:
        split = fam.splits.get(key)
        config[key] = split if split in files else None
    shots = fam.num_fewshot if num_fewshot is None else num_fewshot
    if shots is not None:
        config["num_fewshot"] = int(shots)
    # Each split is read on its own (evals/lm_eval_data.py): a column typed differently in
    # two splits (MGSM's answer: text in train, null in test) cannot share one schema.
    return (yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
            + "custom_dataset: !function evals.lm_eval_data.load_splits\n")


def parse_tasks(tasks: str | Sequence[str]) -> list[str]:
    items = tasks.split(",") if isinstance(tasks, str) else list(tasks)
    return [t.strip() for t in items if t.strip()]


def _flatten(results: dict[str, Any], prefix: str) -> dict[str, float | None]:
    out = {}
    for key, value in results.items():
        if (key in ("alias", "sample_len") or "_stderr" in key
                or isinstance(value, bool) or not isinstance(value, (int, float))):
            continue
        metric, _, filt = key.partition(",")
        name = metric if filt in ("", "none") else f"{metric}[{filt}]"
        out[f"{prefix}/{name}"] = float(value)
    return out


def results_table(scores: dict[str, dict[str, float | None]]) -> str:
    """Markdown: one row per task metric, one column per language."""
    langs = sorted(scores)
    metrics = sorted({m for s in scores.values() for m in s})
    lines = ["| task/metric | " + " | ".join(langs) + " |", "|---|" + "---|" * len(langs)]
    for m in metrics:
        cells = []
        for l in langs:
            v = scores[l].get(m)
            cells.append("" if v is None else f"{v:.4f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_lm_eval(
    model: common.EvalModel,
    *,
    tasks: str | Sequence[str],
    languages: Sequence[str],
    data_dir: str | None,
    output_dir: str,
    num_fewshot: int | None = None,
    limit: int | None = None,
    batch_size: int = 16,
    max_length: int | None = None,
    bootstrap_iters: int = 100,
    apply_chat_template: bool = False,
    registry_dir: str | None = None,
    log_samples: bool = False,
    gen_kwargs: dict[str, Any] | None = None,
    task_include_path: str | None = None,
) -> dict[str, Any]:
    """Run tasks x languages; writes ``OUTPUT/lm_eval.json`` (scores per language and the
    raw lm-eval results), ``OUTPUT/lm_eval.md`` (one table) and a registry record. Every
    (task, language) pair is stored when it finishes; a rerun skips finished pairs.

    ``tasks``: family names (``FAMILIES``, run on ``data_dir`` files for each language) and/or
    lm-eval task names (run once, as they are; reported under language "-"). Returns
    ``{"scores": {lang: {task/metric: value}}, "results": {pair: lm-eval results}}``.
    ``gen_kwargs`` override the generation settings of generative tasks (``max_gen_toks``).
    ``task_include_path``: a folder of the user's own lm-eval task YAMLs, found by name next
    to lm-eval's built-in ones.
    """
    import lm_eval
    from lm_eval.tasks import TaskManager

    from eurollm_jax.inference.lm_eval_backend import EuroLLMJaxLM

    start = time.perf_counter()
    names = parse_tasks(tasks)
    if not names:
        raise LMEvalTaskError("no tasks given")
    pairs, yamls = [], {}
    for name in names:
        if name in FAMILIES:
            if data_dir is None:
                raise LMEvalTaskError(f"task family {name!r} reads local files: pass --data_dir")
            if not languages:
                raise LMEvalTaskError(f"task family {name!r} needs --languages")
            for lang in languages:
                yamls[(name, lang)] = task_yaml(name, lang, data_dir, num_fewshot)
                pairs.append((name, lang))
        else:
            pairs.append((name, "-"))
    task_dir = os.path.join(output_dir, "lm_eval_tasks")
    for (family, lang), text in yamls.items():
        write_text(os.path.join(task_dir, f"{task_name(family, lang)}.yaml"), text)
    local_manager = TaskManager(include_path=task_dir, include_defaults=False) if yamls else None
    default_manager = None
    lm = EuroLLMJaxLM(model=model.engine, max_length=max_length, batch_size=batch_size)
    settings = {"tasks": names, "languages": list(languages), "num_fewshot": num_fewshot,
                "limit": limit, "max_length": max_length, "chat": bool(apply_chat_template),
                "gen_kwargs": gen_kwargs, "task_include_path": task_include_path,
                "data_dir": data_dir and os.path.abspath(data_dir), "task_yamls": {
                    f"{f}.{l}": t for (f, l), t in yamls.items()}}

    def one(pair_key: str) -> dict[str, Any]:
        nonlocal default_manager
        family, lang = pair_key.split(".", 1)
        if lang == "-":
            if default_manager is None:
                default_manager = TaskManager(include_path=task_include_path)
            manager, name = default_manager, family
            shots = num_fewshot
        else:
            manager, name, shots = local_manager, task_name(family, lang), None
        out = lm_eval.simple_evaluate(
            model=lm, tasks=[name], task_manager=manager, num_fewshot=shots, limit=limit,
            bootstrap_iters=bootstrap_iters, log_samples=log_samples,
            apply_chat_template=apply_chat_template, batch_size=batch_size,
            gen_kwargs=gen_kwargs)
        res = {"results": out["results"], "n_samples": out.get("n-samples", {}),
               "configs": {k: {"num_fewshot": v.get("num_fewshot")}
                           for k, v in out.get("configs", {}).items()}}
        if log_samples:
            res["samples"] = out.get("samples", {})
        return res

    keys = [f"{f}.{l}" for f, l in pairs]
    raw = common.run_per_language(task="lm_eval", languages=keys, output_dir=output_dir,
                                  model=model, settings=settings, evaluate_language=one)
    scores: dict[str, dict[str, float | None]] = {}
    for (family, lang), key in zip(pairs, keys):
        per_task = raw[key]["results"]
        name = task_name(family, lang) if lang != "-" else family
        for task, values in per_task.items():
            label = family if task == name else task
            scores.setdefault(lang, {}).update(_flatten(values, label))
    write_json(os.path.join(output_dir, "lm_eval.json"),
               {"scores": scores, "results": {k: v["results"] for k, v in raw.items()}})
    write_text(os.path.join(output_dir, "lm_eval.md"), results_table(scores))
    common.write_registry_record(
        registry_dir=registry_dir or os.path.join(output_dir, "registry"), task="lm_eval",
        languages=sorted(scores), scores=scores, settings=settings, model=model,
        seconds=time.perf_counter() - start,
        details={"results": {k: v["results"] for k, v in raw.items()}})
    return {"scores": scores, "results": raw}
