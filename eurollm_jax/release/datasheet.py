"""The datasheet of the training data, from the token manifest, the filter report and the
release config's declarations.

Sections: sources and licences (per source: languages, records and tokens from the
manifest; licence, consent, robots.txt status and collection from ``data.sources``, a
missing declaration is a warning), collection decisions, the filters applied (the filter
job's recorded config), what they removed per language and by reason (whose text the
filters drop), PII handling (the recorded PII settings), synthetic data (synthesis job
summaries), intended uses and known limitations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eurollm_jax.release.config import SOURCE_KEYS
from eurollm_jax.release.report import markdown_table

if TYPE_CHECKING:
    from eurollm_jax.release.build import ReleaseFacts

NOT_DECLARED = "**WARNING: not declared**"


def source_table(facts: "ReleaseFacts") -> tuple[list[tuple], list[str]]:
    """Rows (source, languages, records, tokens, licence, consent, robots, collection) and
    the warnings for sources the release config does not declare."""
    manifest = facts.records.manifest or {}
    grouped: dict[str, dict] = {}
    for entry in manifest.get("sources", {}).values():
        g = grouped.setdefault(entry["source"], {"languages": set(), "records": 0, "tokens": 0})
        g["languages"].add(entry["language"])
        g["records"] += int(entry["records"])
        g["tokens"] += int(entry["tokens"])
    declared = facts.config.data.sources
    rows, warnings = [], []
    for source in sorted(set(grouped) | set(declared)):
        g = grouped.get(source, {"languages": set(), "records": 0, "tokens": 0})
        d = declared.get(source)
        if d is None:
            warnings.append(f"data source {source!r} ({g['tokens']:,} tokens) has no declaration: add "
                            f"data.sources.{source} = {{licence, consent, robots, collection}} to "
                            f"the release config")
            d = {}
        elif not d.get("licence"):
            warnings.append(f"data source {source!r}: licence not declared (data.sources.{source}.licence)")
        if source not in grouped:
            warnings.append(f"data source {source!r} is declared but has no tokens in the manifest "
                            f"(not found, or all of its documents were filtered out)")
        rows.append((source, len(g["languages"]), f"{g['records']:,}", f"{g['tokens']:,}",
                     *[d.get(k) or NOT_DECLARED for k in SOURCE_KEYS[:4]]))
    return rows, warnings


def _filters_applied(cfg: dict) -> list[str]:
    out = []
    lid = cfg.get("language_id", {})
    if lid.get("enabled"):
        out.append(f"language ID ({lid.get('backend')} backend): documents below confidence "
                   f"{lid.get('threshold')} or outside {len(lid.get('languages') or [])} target "
                   f"languages are dropped")
    ub = cfg.get("url_blocklist", {})
    if ub.get("enabled"):
        out.append(f"URL blocklist: {len(ub.get('domains') or [])} domains, "
                   f"{len(ub.get('substrings') or [])} substrings"
                   + (f", file {ub['domains_file']}" if ub.get("domains_file") else ""))
    h = cfg.get("heuristics", {})
    if h.get("enabled"):
        out.append("quality and repetition heuristics (Gopher, C4, FineWeb rules) with per-language "
                   f"settings (default {h.get('default_language')}, overrides for "
                   f"{len(h.get('per_language') or {})} languages)")
    q = cfg.get("quality", {})
    if q.get("enabled"):
        out.append(f"EuroFilter quality classifier ({q.get('model_dir')}): documents scoring below "
                   f"{q.get('threshold')} are dropped")
    d = cfg.get("dedup", {})
    if d.get("exact") or d.get("near"):
        kinds = [k for k, on in (("exact", d.get("exact")), ("near-duplicate (MinHash "
                 f"{d.get('bands')} bands x {d.get('rows')} rows, {d.get('ngram')}-grams)", d.get("near"))) if on]
        out.append("deduplication: " + " and ".join(kinds))
    return out


def _pii(cfg: dict, notes: str) -> str:
    p = cfg.get("pii", {})
    if not p:
        return f"> **Warning:** the filter report records no PII settings. {notes}".strip()
    if not p.get("enabled"):
        return ("> **Warning:** PII redaction was disabled in the filter job (pii.enabled=false). "
                + notes).strip()
    kinds = [k.replace("_", " ") for k in ("emails", "ip_addresses", "phone_numbers") if p.get(k)]
    return (f"Redacted by the filter job: {', '.join(kinds)} are replaced with placeholders "
            f"(`<EMAIL>`, `<IP_ADDRESS>`, `<PHONE_NUMBER>`); documents are kept, and the count of "
            f"replacements is recorded in each document's metadata. Names, addresses and other "
            f"personal data are not detected. {notes}").strip()


def render_datasheet(facts: "ReleaseFacts") -> tuple[str, list[str]]:
    """(the datasheet's Markdown, its warnings)."""
    from eurollm_jax.filtering.report import by_step

    data = facts.config.data
    rec = facts.records
    rows, warnings = source_table(facts)
    report = rec.filter_report
    if report is None:
        warnings.append("no filter report: what the filters removed is not documented")
    if not data.collection:
        warnings.append("collection decisions not stated: set data.collection in the release config")
    if not data.intended_uses:
        warnings.append("intended uses of the data not stated: set data.intended_uses")
    if not data.limitations:
        warnings.append("known limitations of the data not stated: set data.limitations")
    out = [f"# Datasheet: training data of {facts.name}\n",
           "Generated by `python -m launch.release` from the token manifest, the filter job's "
           "report and the release config's declarations.\n"]
    if warnings:
        out.append("## Warnings\n\n" + "\n".join(f"> **Warning:** {w}  " for w in warnings) + "\n")
    out.append("## Sources and licences\n")
    out.append(markdown_table(["source", "languages", "records", "tokens", "licence", "consent",
                               "robots.txt", "collection"], rows) + "\n")
    urls = [f"- {source}: {d['url']}" for source, d in sorted(data.sources.items()) if d.get("url")]
    if urls:
        out.append("\n".join(urls) + "\n")
    manifest = rec.manifest or {}
    out.append("## Collection decisions\n")
    recorded = []
    if manifest:
        t = manifest.get("totals", {})
        recorded.append(f"tokenized {t.get('docs', 0):,} documents ({t.get('bytes', 0):,} bytes) "
                        f"from {t.get('inputs', 0)} input files into {t.get('tokens', 0):,} tokens "
                        f"({manifest.get('kind')} data; tokenizer sha256 "
                        f"{(manifest.get('tokenizer') or {}).get('sha256')})")
        bad = (manifest.get("bad_input") or {}).get("total", 0)
        if bad:
            recorded.append(f"{bad:,} unreadable input records were skipped by the tokenizer job")
    out.append("\n".join(f"- {c}" for c in list(data.collection) + recorded) or
               "> **Warning:** collection decisions not stated.")
    out.append("")
    if report is not None:
        cfg = report.get("config", {})
        out.append("## Filters applied\n")
        out.append("\n".join(f"- {f}" for f in _filters_applied(cfg)) or "- none recorded")
        out.append("")
        out.append("## What the filters removed, by language\n")
        out.append(f"{report['documents']:,} documents in, {report['kept']:,} kept, "
                   f"{report['dropped']:,} dropped.\n")
        lrows = []
        for row in sorted(report["languages"], key=lambda r: r["language"]):
            steps = by_step(row.get("dropped", {}))
            lrows.append((row["language"], row["documents"], row["kept"],
                          f"{row['kept'] / max(row['documents'], 1):.1%}",
                          ", ".join(f"{s} {n}" for s, n in sorted(steps.items()) if n) or "-"))
        out.append(markdown_table(["language", "documents", "kept", "kept share", "dropped by step"], lrows))
        ranked = sorted((r for r in report["languages"] if r["documents"]),
                        key=lambda r: r["kept"] / r["documents"])
        if ranked:
            out.append("\nWhose text the filters drop most (lowest kept share): " + ", ".join(
                f"{r['language']} ({r['kept'] / r['documents']:.0%} kept)" for r in ranked[:3])
                + ". Language ID and heuristics tuned on large languages remove more of small "
                  "languages' text; read this before drawing conclusions per language.\n")
        out.append("### Dropped documents by reason\n")
        out.append(markdown_table(["reason", "documents"],
                                  sorted(report.get("dropped_by_reason", {}).items(), key=lambda kv: -kv[1])) + "\n")
        out.append("## PII handling\n\n" + _pii(cfg, data.pii_notes) + "\n")
    else:
        out.append("## PII handling\n\n> **Warning:** no filter report, PII handling not recorded. "
                   + data.pii_notes + "\n")
    if rec.synthesis:
        out.append("## Synthetic data\n")
        out.append("Part of the SFT data was generated by LLMs (synthesis jobs); per job:\n")
        for s in rec.synthesis:
            summary = s["summary"]
            items = {k: v for k, v in summary.items() if isinstance(v, (str, int, float, bool))}
            out.append(f"- `{s['path']}`: " + ", ".join(f"{k} {v}" for k, v in items.items()))
            if isinstance(summary.get("per_group"), dict) and summary["per_group"]:
                out.append("  - records per language or task: " + ", ".join(
                    f"{k} {v}" for k, v in summary["per_group"].items()))
            if isinstance(summary.get("drop_reasons"), dict) and summary["drop_reasons"]:
                out.append("  - dropped by reason: " + ", ".join(
                    f"{k} {v}" for k, v in summary["drop_reasons"].items()))
            llm = summary.get("llm")
            if isinstance(llm, dict) and "requests" in llm:
                out.append(f"  - LLM usage: {llm.get('requests', 0):,} requests, "
                           f"{llm.get('prompt_tokens', 0):,} prompt and "
                           f"{llm.get('completion_tokens', 0):,} completion tokens")
        out.append("")
    out.append("## Intended uses\n\n" + ("\n".join(f"- {u}" for u in data.intended_uses)
                                          or "> **Warning:** intended uses of the data not stated.") + "\n")
    limits = list(data.limitations)
    by_lang = manifest.get("tokens_by_language", {})
    if by_lang:
        total = sum(by_lang.values()) or 1
        small = sorted(by_lang.items(), key=lambda kv: kv[1])[:3]
        limits.append("the smallest languages in the corpus: " + ", ".join(
            f"{k} ({v / total:.1%} of tokens)" for k, v in small))
    out.append("## Known limitations\n\n" + ("\n".join(f"- {x}" for x in limits)
                                              or "> **Warning:** known limitations not stated.") + "\n")
    return "\n".join(out), warnings
