"""Release artefacts: the run report (Markdown with PNG charts) written from a run's own files.

Model cards, datasheets and energy accounting will live here too.
"""

from eurollm_jax.release.report import RunReport, plot_bars, plot_loss_curve, read_metrics

__all__ = ["RunReport", "plot_bars", "plot_loss_curve", "read_metrics"]
