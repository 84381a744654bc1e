"""Integrity: evaluation results are accepted only if measured on the exact exported weights.

The evaluation registry (``eurollm_jax.evaluation.registry``) records, with every result,
the fingerprint of the weights files it was measured on (``weights_fingerprint``: sha256
over each weights file's path, size and bytes). At release time the export directory is
fingerprinted again and each registry record is sorted into:

- accepted: its fingerprint equals the export's (wherever the files were when measured);
- stale: it names this release's checkpoint (the export directory, the training workdir or
  its ``params/``) but its fingerprint differs or is missing: measured on other bytes
  (before a conversion or quantisation, or before the files changed). Any stale record is a
  ``StaleResultsError`` naming each one, and nothing is written: a card must not report
  bias or benchmark numbers of weights it does not ship;
- other: results of other checkpoints in the same registry (comparisons), not on the card.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any


class StaleResultsError(ValueError):
    """Registry results of this checkpoint that were measured on different weights."""


@dataclasses.dataclass
class RegistryResults:
    fingerprint: str  # of the exported weights
    accepted: list[dict[str, Any]]  # records measured on exactly these weights
    other: list[dict[str, Any]]  # records of other checkpoints (ignored)
    files: dict[int, str]  # id(record) -> registry file name


def _same_path(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def check_registry(registry_dir: str, export_dir: str, workdir: str | None = None) -> RegistryResults:
    """Sort the registry's records against the export's fingerprint (see the module docstring)."""
    from eurollm_jax.evaluation import read_records, weights_fingerprint
    from eurollm_jax.evaluation.registry import record_filename

    fingerprint = weights_fingerprint(export_dir)
    ours = [export_dir] + ([workdir, os.path.join(workdir, "params")] if workdir else [])
    accepted, stale, other, files = [], [], [], {}
    for record in read_records(registry_dir):
        files[id(record)] = os.path.join(registry_dir, record_filename(record))
        ck = record["checkpoint"]
        if ck.get("fingerprint") == fingerprint:
            accepted.append(record)
        elif any(_same_path(str(ck.get("path", "")), p) for p in ours):
            stale.append(record)
        else:
            other.append(record)
    if stale:
        lines = [
            f"- {files[id(r)]}: task {r['task']}, languages {','.join(r['languages']) or '-'}, "
            f"measured {r['date']} on {r['checkpoint']['path']} with fingerprint "
            f"{r['checkpoint'].get('fingerprint')}" for r in stale]
        raise StaleResultsError(
            f"{len(stale)} evaluation result(s) of this checkpoint were not measured on the "
            f"exported weights (export {export_dir} has fingerprint {fingerprint}); the release "
            f"refuses to report them (bias and benchmark results must describe the weights "
            f"actually released):\n" + "\n".join(lines) + "\nRe-run these evaluations on the "
            f"export directory (`python -m launch.evaluate <task> ...` with the checkpoint "
            f"{export_dir}), or delete the stale files if the results are obsolete.")
    return RegistryResults(fingerprint=fingerprint, accepted=accepted, other=other, files=files)
