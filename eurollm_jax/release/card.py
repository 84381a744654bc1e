"""The model card: Markdown with Hugging Face model-card YAML metadata, from release facts.

Metadata (``huggingface_hub.ModelCardData``, so the Hub's own serialiser writes it):
``language``, ``license``, ``library_name``, ``pipeline_tag``, ``tags``, ``base_model``,
``model-index`` (every accepted evaluation result: one ``EvalResult`` per registry record,
language and metric, plus the training run's final held-out loss) and ``co2_eq_emissions``
(``emissions`` in grams, ``source``, ``training_type``, ``geographical_location``,
``hardware_used``). The body states the architecture, training data and compute, energy and
its uncertainty, results (bias separately), uses, process items and the contact; every
missing item is a visible ``> **Warning:**`` line near the top.

``validate_model_card(text)`` is the offline check: ``huggingface_hub.ModelCard`` parses the
card, ``model_index_to_eval_results`` parses its model-index, and the required keys are
present. (``ModelCard.validate`` asks the Hub over the network, so it is not used.)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from eurollm_jax.release.config import PROCESS_ITEMS
from eurollm_jax.release.report import markdown_table

if TYPE_CHECKING:
    from eurollm_jax.release.build import ReleaseFacts

TASK_LABELS = {
    "eurogest": "EuroGEST (gender-stereotypical reasoning)",
    "lm_eval": "lm-evaluation-harness benchmarks",
    "mt": "Machine translation",
    "xl_alpacaeval": "XL-AlpacaEval",
}
BIAS_TASKS = ("eurogest",)
HELDOUT_DATASET = "eurollm_jax/heldout"
# license is not required here: a missing licence is a card warning (model.license), not a
# parse error; so is an unknown language list (validate_model_card(require_language=False)).
REQUIRED_METADATA = ("language", "library_name", "pipeline_tag", "co2_eq_emissions")
REQUIRED_CO2 = ("emissions", "source", "training_type", "hardware_used")


def _hub():
    try:
        import huggingface_hub
        from huggingface_hub import repocard_data
    except ImportError as e:
        raise ImportError("model cards need huggingface_hub: pip install 'eurollm_jax[release]'") from e
    return huggingface_hub, repocard_data


def eval_results(facts: "ReleaseFacts") -> list:
    """One ``EvalResult`` per (accepted registry record, language, metric) with a number,
    then the training run's final held-out loss and perplexity."""
    _, rd = _hub()
    out = []
    for record in facts.registry.accepted if facts.registry else []:
        task = record["task"]
        label = TASK_LABELS.get(task, task)
        for lang in sorted(record["scores"]):
            for metric, value in record["scores"][lang].items():
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    continue
                out.append(rd.EvalResult(
                    task_type="text-generation", task_name=label,
                    dataset_type=f"eurollm_jax/{task}", dataset_name=f"{label} ({lang})",
                    dataset_config=lang, metric_type=metric, metric_name=f"{task} {metric}",
                    metric_value=float(value)))
    t = facts.training
    for metric, key in (("loss", "final_eval_loss"), ("perplexity", "final_eval_ppl")):
        if t.get(key) is not None:
            out.append(rd.EvalResult(
                task_type="text-generation",
                task_name="Held-out language modelling (by the trainer, before the export)",
                dataset_type=HELDOUT_DATASET,
                dataset_name=f"held-out split of the training data (step {t['final_eval_step']})",
                dataset_split="heldout", metric_type=metric,
                metric_name=f"held-out {metric} (nats/token)" if metric == "loss" else "held-out perplexity",
                metric_value=float(t[key])))
    return out


def co2_metadata(facts: "ReleaseFacts") -> dict[str, Any]:
    e = facts.energy
    return {
        "emissions": float(e.co2_g),
        "source": e.source,
        "training_type": facts.config.model.training_type,
        "geographical_location": facts.config.energy.region,
        "hardware_used": e.hardware_used,
    }


def card_metadata(facts: "ReleaseFacts"):
    """The ``ModelCardData`` of the card."""
    _, rd = _hub()
    m = facts.config.model
    results = eval_results(facts)
    return rd.ModelCardData(
        language=list(facts.languages) or None,
        license=m.license or None,
        library_name=m.library_name,
        pipeline_tag=m.pipeline_tag,
        tags=list(m.tags) or None,
        base_model=m.base_model or None,
        model_name=facts.name if results else None,
        eval_results=results or None,
        co2_eq_emissions=co2_metadata(facts),
    )


def _bullets(items, missing: str) -> str:
    items = [i for i in items if str(i).strip()]
    return "\n".join(f"- {i}" for i in items) if items else f"> **Warning:** {missing}"


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def card_warnings(facts: "ReleaseFacts") -> list[str]:
    """Every missing item of the card (shown near its top and in release.json)."""
    m = facts.config.model
    out = list(facts.warnings)
    for field, text in (("license", "the weights' licence"), ("contact", "a contact for complaints"),
                        ("intended_uses", "intended uses"), ("out_of_scope_uses", "out-of-scope uses")):
        if not (getattr(m, field) if isinstance(getattr(m, field), str) else any(getattr(m, field))):
            out.append(f"{text} not stated: set model.{field} in the release config")
    out += list(facts.process_warnings.values())
    if not any(r["task"] in BIAS_TASKS for r in (facts.registry.accepted if facts.registry else [])):
        out.append("no bias evaluation (EuroGEST) of the exported weights in the evaluation "
                   "registry: run `python -m launch.evaluate eurogest` on the export directory")
    return out


def _strongest_stereotypes(records, top: int = 3) -> str:
    """Per language, the ``top`` stereotypes by R_s (EuroGEST records' ``details``)."""
    from eurollm_jax.evaluation.eurogest import STEREOTYPE_NAMES

    lines = []
    for r in records:
        per_lang = (r.get("details") or {}).get("eurogest") or {}
        for lang in sorted(per_lang):
            result = per_lang[lang] or {}
            ranks, R = result.get("ranks") or {}, result.get("R") or {}
            ordered = sorted(ranks, key=lambda s: ranks[s])[:top]
            if ordered:
                lines.append(f"- {lang}: " + ", ".join(
                    f"{STEREOTYPE_NAMES.get(int(s), s)} ({R.get(s, float('nan')):.3f})" for s in ordered))
    return "\n".join(lines)


def _results_section(facts: "ReleaseFacts") -> str:
    reg = facts.registry
    parts = []
    records = reg.accepted if reg else []
    bench = [r for r in records if r["task"] not in BIAS_TASKS]
    bias = [r for r in records if r["task"] in BIAS_TASKS]

    def table(rs):
        rows = []
        for r in rs:
            for lang in sorted(r["scores"]):
                for metric, value in r["scores"][lang].items():
                    rows.append((TASK_LABELS.get(r["task"], r["task"]), lang, metric, _fmt(value),
                                 r["date"], reg.files[id(r)].rsplit("/", 1)[-1]))
        return markdown_table(["task", "language", "metric", "value", "measured", "registry file"], rows)

    if reg:
        parts.append(f"Results from the evaluation registry `{facts.records.registry_dir}`, each "
                     f"measured on the exported weights (fingerprint `{reg.fingerprint}`, checked "
                     f"at release time). {len(reg.other)} record(s) of other checkpoints are not "
                     f"shown.")
    parts.append(table(bench) if bench else "_No benchmark results of the exported weights._")
    parts.append("### Bias (EuroGEST)")
    if bias:
        parts.append("EuroGEST compares the likelihood of masculine and feminine versions of "
                     "first-person sentences; the stereotype score g is above 1 when the model "
                     "prefers stereotype-consistent genders.\n\n" + table(bias))
        strongest = _strongest_stereotypes(bias)
        if strongest:
            parts.append("Stereotypes ranked by R_s (the mean masculine rate of their sentences), "
                         "top three per language, from the records' details:\n\n" + strongest)
    else:
        parts.append("> **Warning:** no bias evaluation (EuroGEST) of the exported weights.")
    t = facts.training
    if t.get("final_eval_loss") is not None:
        parts.append("### Training-time held-out loss")
        parts.append(f"Held-out loss {t['final_eval_loss']:.4f} nats/token (perplexity "
                     f"{_fmt(t['final_eval_ppl'])}) at step {t['final_eval_step']}, from the "
                     f"trainer's `metrics.jsonl`: measured by the trainer on its own parameters, "
                     f"before the export to this format.")
    return "\n\n".join(parts)


def render_model_card(facts: "ReleaseFacts") -> str:
    """The card's full text (YAML front matter + Markdown)."""
    data = card_metadata(facts)
    m, t, e, rec = facts.config.model, facts.training, facts.energy, facts.records
    hf = rec.export_config
    warnings = card_warnings(facts)
    out = [f"---\n{data.to_yaml()}\n---\n", f"# {facts.name}\n"]
    if m.description:
        out.append(m.description + "\n")
    out.append("This card was generated by `python -m launch.release` from the run's own records "
               "(training config and metrics, token manifest, filter report, tokenizer fertility, "
               "run records, evaluation registry); the training data is described in "
               "[DATASHEET.md](DATASHEET.md).\n")
    if warnings:
        out.append("## Warnings\n\n" + "\n".join(f"> **Warning:** {w}  " for w in warnings) + "\n")

    out.append("## Model\n")
    out.append(markdown_table(["property", "value"], [
        ("architecture", f"{', '.join(hf.get('architectures', ['?']))} (decoder-only, RoPE, SwiGLU, "
                         f"grouped-query attention)"),
        ("parameters", f"{facts.param_count:,}"),
        ("layers", hf.get("num_hidden_layers")), ("hidden size", hf.get("hidden_size")),
        ("attention heads / kv heads", f"{hf.get('num_attention_heads')} / {hf.get('num_key_value_heads')}"),
        ("FFN size", hf.get("intermediate_size")), ("vocabulary", hf.get("vocab_size")),
        ("context length", hf.get("max_position_embeddings")),
        ("tied embeddings", hf.get("tie_word_embeddings")), ("weights dtype", hf.get("torch_dtype")),
        ("weights fingerprint", f"`{facts.fingerprint}`"),
    ]) + "\n")

    out.append("## Training\n")
    lines = [f"- {t['steps']:,} steps of {t['batch_size']} x {t['seq_len']} tokens: "
             f"{t['tokens']:,} training tokens (planned {t['planned_steps']:,} steps)",
             f"- final training loss {_fmt(t['final_loss'])} at step {t['final_step']}",
             f"- compute: {e.device_hours:.4g} device-hours on {e.hardware_used}"]
    out.append("\n".join(lines) + "\n")
    if len(t["phases"]) > 1 or any(p["mixture"] for p in t["phases"]):
        out.append(markdown_table(["phase", "steps", "tokens", "mixture"], [
            (p["name"], f"{p['first_step']}-{p['last_step']}", f"{p['tokens']:,}",
             ", ".join(f"{k} {v:g}" for k, v in p["mixture"].items()) or "default")
            for p in t["phases"]]) + "\n")
    if rec.manifest:
        by_lang = rec.manifest.get("tokens_by_language", {})
        total = sum(by_lang.values()) or 1
        out.append("Tokenized training corpus by language (token manifest; the sampler's "
                   "mixture weights decide how often each is seen):\n\n" + markdown_table(
                       ["language", "tokens", "share"],
                       [(k, f"{v:,}", f"{v / total:.1%}") for k, v in by_lang.items()]) + "\n")
    if rec.fertility:
        rows = []
        for row in rec.fertility:
            for name, stats in row.items():
                if name != "lang" and isinstance(stats, dict):
                    rows.append((row["lang"], name, _fmt(stats.get("tokens_per_word")),
                                 _fmt(stats.get("tokens_per_char"))))
        out.append("Tokenizer fertility on held-out text (tokens per word: higher means the "
                   "language pays more per word):\n\n" + markdown_table(
                       ["language", "tokenizer", "tokens/word", "tokens/char"], rows) + "\n")

    out.append("## Energy and CO2\n")
    seg_rows = [(s["index"], f"{s['first_step']}-{s['last_step']}", f"{s['seconds']:.1f}",
                 f"{s['device_count']} x {s['device_kind']}", s["method"],
                 (f"{s['power_w']:g} W x {s['power_units']} {s['power_per']}(s)" if s["method"] == "estimate"
                  else s.get("energy_source", "")), f"{s['it_kwh']:.4g}") for s in e.segments]
    out.append(
        f"**{e.co2_g:.4g} g CO2e** ({e.method}): {e.it_energy_kwh:.4g} kWh of device energy x PUE "
        f"{e.pue:g} = {e.energy_kwh:.4g} kWh, x {e.grid_g_per_kwh:g} gCO2e/kWh ({e.grid_source}).\n\n"
        f"Uncertainty: {e.uncertainty}\n\n" + markdown_table(
            ["run segment", "steps", "seconds", "devices", "method", "power", "device kWh"], seg_rows) + "\n")

    out.append("## Evaluation\n")
    out.append(_results_section(facts) + "\n")

    out.append("## Uses\n")
    out.append("### Intended uses\n\n" + _bullets(m.intended_uses, "intended uses not stated") + "\n")
    out.append("### Out-of-scope uses\n\n" + _bullets(m.out_of_scope_uses, "out-of-scope uses not stated") + "\n")
    out.append("### Limitations\n\n" + _bullets(
        list(m.limitations) + ["The model reproduces the biases of its training data; see the "
                               "bias results above and the datasheet's filter report."],
        "limitations not stated") + "\n")

    out.append("## Process\n")
    p = facts.config.process
    rows = [(label, getattr(p, key) or "**WARNING: not recorded**") for key, label in PROCESS_ITEMS.items()]
    labels = {None: "**WARNING: not recorded**", True: "yes", False: "no"}
    rows.append(("human labels used", labels[p.human_labels]))
    if p.human_labels:
        rows.append(("annotators", p.annotators or "**WARNING: not recorded**"))
    out.append(markdown_table(["item", "status"], rows) + "\n")

    out.append("## Contact\n\n" + (m.contact or "> **Warning:** no contact for complaints stated.") + "\n")
    out.append("## Provenance\n\n" + "\n".join(
        f"- {k}: `{v}`" for k, v in sorted(rec.paths.items())) + f"\n- export: `{rec.export_dir}`\n")
    return "\n".join(out)


def validate_model_card(text: str, *, require_language: bool = True) -> dict[str, Any]:
    """Parse the card offline with huggingface_hub; raise ``ValueError`` naming what is wrong.

    Returns ``{"model_name", "eval_results" (list of EvalResult), "metadata" (dict)}``."""
    hub, rd = _hub()
    card = hub.ModelCard(text, ignore_metadata_errors=False)
    meta = card.data.to_dict()
    missing = [k for k in REQUIRED_METADATA if not meta.get(k)
               and (require_language or k != "language")]
    if missing:
        raise ValueError(f"model card metadata lacks {missing}")
    co2 = meta["co2_eq_emissions"]
    missing = [k for k in REQUIRED_CO2 if co2.get(k) in (None, "")]
    if missing:
        raise ValueError(f"co2_eq_emissions lacks {missing}")
    if not isinstance(co2["emissions"], (int, float)) or co2["emissions"] < 0:
        raise ValueError(f"co2_eq_emissions.emissions must be grams (a number >= 0), got {co2['emissions']!r}")
    name, results = (None, [])
    if "model-index" in meta:
        name, results = rd.model_index_to_eval_results(meta["model-index"])
    return {"model_name": name, "eval_results": results, "metadata": meta}
