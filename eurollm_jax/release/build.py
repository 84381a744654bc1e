"""The release job: run records + registry -> model card, datasheet, energy report.

``build_release(workdir, export_dir, output_dir, config)`` writes into ``output_dir``:

    README.md      the model card (Hugging Face YAML metadata + Markdown; validated offline)
    DATASHEET.md   the training data's datasheet
    energy.json    the energy and CO2e report (method, inputs, per-segment figures, range)
    release.json   every fact the card states, its source files and all warnings

Everything is computed before anything is written: stale evaluation results
(``integrity.StaleResultsError``), unreadable records or an energy figure that cannot be
computed fail with a message naming the fix, and leave ``output_dir`` untouched. Missing
items never fail the release; they are warnings, shown in the card, the datasheet and
``release.json``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from eurollm_jax.fileio import write_json, write_text
from eurollm_jax.release.card import card_warnings, render_model_card, validate_model_card
from eurollm_jax.release.config import ReleaseConfig, process_warnings
from eurollm_jax.release.datasheet import render_datasheet
from eurollm_jax.release.energy import EnergyReport, energy_report
from eurollm_jax.release.integrity import RegistryResults, check_registry
from eurollm_jax.release.records import RunRecords, collect_run_records, compute_segments, training_summary


@dataclasses.dataclass
class ReleaseFacts:
    name: str
    config: ReleaseConfig
    records: RunRecords
    training: dict
    energy: EnergyReport
    registry: RegistryResults | None
    languages: list[str]
    fingerprint: str
    param_count: int
    process_warnings: dict[str, str]
    warnings: list[str]  # from the records and the compute accounting


@dataclasses.dataclass
class ReleaseResult:
    output_dir: str
    card: str  # path of README.md
    datasheet: str
    energy: str
    facts: str  # release.json
    warnings: list[str]
    eval_results: int  # entries in the card's model-index
    co2_g: float


def gather_facts(workdir: str, export_dir: str, config: ReleaseConfig) -> ReleaseFacts:
    """Every fact of the release, checked (stale results raise here)."""
    from eurollm_jax.checkpoint import load_hf_config
    from eurollm_jax.evaluation import weights_fingerprint

    records = collect_run_records(workdir, export_dir, config)
    warnings = list(records.warnings)
    registry = None
    if records.registry_dir:
        registry = check_registry(records.registry_dir, records.export_dir, records.workdir)
        fingerprint = registry.fingerprint
    else:
        fingerprint = weights_fingerprint(records.export_dir)
        warnings.append("no evaluation registry given (registry in the release config): the card "
                        "reports no benchmark or bias results")
    segments, seg_warnings = compute_segments(records, config.energy)
    warnings += seg_warnings
    energy = energy_report(segments, config.energy)
    languages = sorted((records.manifest or {}).get("tokens_by_language", {}))
    if not languages:
        languages = sorted(config.model.languages or records.train_config.get("data", {}).get("languages") or ())
    if not languages and records.filter_report:
        languages = sorted(r["language"] for r in records.filter_report["languages"] if r["kept"])
    if not languages:
        warnings.append("the training languages are not recorded (no token manifest or filter report)")
    return ReleaseFacts(
        name=config.model.name or os.path.basename(records.export_dir.rstrip("/")),
        config=config, records=records, training=training_summary(records), energy=energy,
        registry=registry, languages=languages, fingerprint=fingerprint,
        param_count=load_hf_config(records.export_dir).param_count(),
        process_warnings=process_warnings(config.process), warnings=warnings,
    )


def _facts_json(facts: ReleaseFacts, warnings: list[str]) -> dict[str, Any]:
    reg = facts.registry
    return {
        "name": facts.name,
        "export_dir": facts.records.export_dir,
        "workdir": facts.records.workdir,
        "fingerprint": facts.fingerprint,
        "param_count": facts.param_count,
        "languages": facts.languages,
        "training": facts.training,
        "energy": facts.energy.to_dict(),
        "results": [{"file": reg.files[id(r)], "task": r["task"], "languages": r["languages"],
                     "date": r["date"]} for r in reg.accepted] if reg else [],
        "other_checkpoints_results": len(reg.other) if reg else 0,
        "process": facts.config.process.to_dict(),
        "config": facts.config.to_dict(),
        "sources": facts.records.paths,
        "warnings": warnings,
    }


def build_release(workdir: str, export_dir: str, output_dir: str,
                  config: ReleaseConfig | None = None) -> ReleaseResult:
    """Write the release artefacts (see the module docstring); returns their paths."""
    config = config if config is not None else ReleaseConfig()
    facts = gather_facts(workdir, export_dir, config)
    card = render_model_card(facts)
    checked = validate_model_card(card, require_language=bool(facts.languages))
    datasheet, ds_warnings = render_datasheet(facts)
    warnings = card_warnings(facts) + [w for w in ds_warnings if w not in facts.warnings]
    output_dir = os.path.abspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    paths = {name: os.path.join(output_dir, name)
             for name in ("README.md", "DATASHEET.md", "energy.json", "release.json")}
    write_json(paths["energy.json"], facts.energy.to_dict())
    write_text(paths["DATASHEET.md"], datasheet)
    write_json(paths["release.json"], _facts_json(facts, warnings))
    write_text(paths["README.md"], card)
    return ReleaseResult(
        output_dir=output_dir, card=paths["README.md"], datasheet=paths["DATASHEET.md"],
        energy=paths["energy.json"], facts=paths["release.json"], warnings=warnings,
        eval_results=len(checked["eval_results"]), co2_g=facts.energy.co2_g,
    )
