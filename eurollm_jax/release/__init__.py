"""Release artefacts, generated from the run's own records, never typed by hand.

- ``report``: the run report (Markdown with PNG charts) of the end-to-end demo.
- ``config``: ``ReleaseConfig``, what a person declares (licence, contact, uses, data
  source licences and consent, process items, PUE and grid region).
- ``records``: ``collect_run_records`` (training config and metrics, token manifest, filter
  report, fertility, run records, synthesis summaries) and ``RunRecorder``, the trainer hook
  that records wall time, devices and measured energy (NVML / codecarbon) per run.
- ``energy``: ``energy_report``: measured or TDP x device-hours x PUE x grid intensity.
- ``integrity``: ``check_registry``: registry results are accepted only for the exact
  exported weights (``StaleResultsError`` otherwise).
- ``card`` / ``datasheet``: the Hugging Face model card and the data's datasheet;
  ``validate_model_card`` parses a card offline with huggingface_hub.
- ``build``: ``build_release(workdir, export_dir, output_dir, config)`` (``python -m launch.release``).
"""

from eurollm_jax.release.report import RunReport, plot_bars, plot_loss_curve, read_metrics
from eurollm_jax.release.config import ReleaseConfig, process_warnings
from eurollm_jax.release.energy import EnergyError, EnergyReport, energy_report
from eurollm_jax.release.integrity import StaleResultsError, check_registry
from eurollm_jax.release.records import RunRecorder, RunRecords, collect_run_records
from eurollm_jax.release.card import render_model_card, validate_model_card
from eurollm_jax.release.datasheet import render_datasheet
from eurollm_jax.release.build import ReleaseResult, build_release, gather_facts

__all__ = [
    "RunReport", "plot_bars", "plot_loss_curve", "read_metrics",
    "ReleaseConfig", "process_warnings",
    "EnergyError", "EnergyReport", "energy_report",
    "StaleResultsError", "check_registry",
    "RunRecorder", "RunRecords", "collect_run_records",
    "render_model_card", "validate_model_card", "render_datasheet",
    "ReleaseResult", "build_release", "gather_facts",
]
