"""Run records: every fact a release states, read from the files the framework wrote.

``collect_run_records(workdir, export_dir, config)`` follows the run's own links, so nothing
is typed by hand:

    WORKDIR/config.json            the training job config (model, data, mesh, phases)
    WORKDIR/metrics.jsonl          steps, tokens, losses, step times (the trainer's log)
    WORKDIR/run_records.jsonl      one line per trainer start: wall time, device kind and
                                   count, process count, measured energy (``RunRecorder``)
    config.data.manifest           the token manifest: tokens per language and source
      -> manifest.inputs           the filter's kept shards; their filter output directory
                                   holds report.json (kept/dropped by language and reason)
      -> manifest.tokenizer.path   the tokenizer; fertility.json next to it
    EXPORT_DIR                     the published Hugging Face directory (config.json, weights)
    config.registry                the evaluation registry (``eurollm_jax.evaluation.registry``)
    config.data.sft_file           SFT runs: the synthesis jobs' report.json above the SFT
                                   files (``synthesis`` writes OUT/sft/ + OUT/report.json),
                                   plus any listed in data.synthesis_summaries

A record that cannot be found is a warning (``RunRecords.warnings``), never a silent gap.

``RunRecorder`` is the trainer hook that writes ``run_records.jsonl``: add it to any run
(``Trainer.add_hook(RunRecorder())`` or ``train(..., hooks=[RunRecorder()])``). It reads
NVML's per-GPU energy counters on GPUs (optional ``pynvml``), or codecarbon's tracker when
asked (``energy="codecarbon"``, optional ``eurollm_jax[energy]``). Runs without it are
accounted from ``metrics.jsonl`` step times (a lower bound: compilation, evaluation and
checkpoint time are missing) and the mesh config, with a warning.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import socket
import time
from typing import Any

from eurollm_jax.fileio import read_json, read_jsonl
from eurollm_jax.release.config import ReleaseConfig
from eurollm_jax.train import Hook

log = logging.getLogger(__name__)

RUN_RECORDS = "run_records.jsonl"
ENERGY_BACKENDS = ("auto", "nvml", "codecarbon", "none")


# ============================================================================ the hook
class _NVMLEnergy:
    """Total energy counters (mJ since driver load) of this process's GPUs."""

    def __init__(self, devices):
        import pynvml  # optional: nvidia-ml-py

        self.nvml = pynvml
        pynvml.nvmlInit()
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        mapping = [int(x) for x in visible.split(",") if x.strip().isdigit()] if visible else None
        indices = []
        for d in devices:
            hardware_id = getattr(d, "local_hardware_id", None)
            local = int(d.id if hardware_id is None else hardware_id)
            indices.append(mapping[local] if mapping and local < len(mapping) else local)
        self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in sorted(set(indices))]

    def read_mj(self) -> int:
        return sum(int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self.handles)

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - shutting down a library we only read from
            pass


class RunRecorder(Hook):
    """Appends one line per trainer start to ``WORKDIR/run_records.jsonl`` (process 0):
    ``start``/``end`` (UTC, unix seconds), ``seconds``, ``first_step``, ``last_step``,
    ``completed``, ``device_kind``, ``device_count``, ``process_count``, ``hostname``,
    ``energy_j`` (measured IT energy of all processes, or null) and ``energy_source``.

    ``energy``: "auto" (NVML on GPUs, nothing elsewhere), "nvml", "codecarbon" (offline
    tracker, ``country_iso_code``), or "none". Multi-host: process 0 measures its own
    devices and scales by the process count (stated in ``energy_source``).
    """

    name = "run_recorder"
    every = 1

    def __init__(self, energy: str = "auto", country_iso_code: str = "EUR"):
        if energy not in ENERGY_BACKENDS:
            raise ValueError(f"RunRecorder(energy={energy!r}): use one of {', '.join(ENERGY_BACKENDS)}")
        self.energy, self.country = energy, country_iso_code
        self.record: dict | None = None
        self._meter = self._start_mj = self._tracker = None
        self._t0 = 0.0

    def on_start(self, trainer, step: int) -> None:
        import jax

        devices = list(trainer.job.mesh.devices.flat)
        local = [d for d in devices if d.process_index == jax.process_index()]
        self.workdir = trainer.workdir
        self._t0 = time.time()
        self.record = {
            "start": self._t0, "first_step": int(step), "last_step": int(step), "completed": False,
            "device_kind": devices[0].device_kind, "platform": devices[0].platform,
            "device_count": len(devices), "process_count": jax.process_count(),
            "hostname": socket.gethostname(), "energy_j": None, "energy_source": None,
        }
        backend = self.energy
        if backend == "auto":
            backend = "nvml" if devices[0].platform == "gpu" else "none"
        try:
            if backend == "nvml":
                self._meter = _NVMLEnergy(local)
                self._start_mj = self._meter.read_mj()
            elif backend == "codecarbon":
                try:
                    from codecarbon import OfflineEmissionsTracker
                except ImportError as e:
                    raise ImportError("RunRecorder(energy='codecarbon') needs codecarbon: "
                                      "pip install 'eurollm_jax[energy]'") from e
                self._tracker = OfflineEmissionsTracker(
                    country_iso_code=self.country, save_to_file=False, log_level="error")
                self._tracker.start()
        except ImportError:
            if self.energy != "auto":
                raise
            log.info("RunRecorder: pynvml is not installed; energy will be estimated at release")
        except Exception as e:  # noqa: BLE001 - a platform without counters is not an error
            log.warning("RunRecorder: no energy measurement (%s: %s)", type(e).__name__, e)
            self._meter = self._tracker = None

    def __call__(self, info) -> None:
        if self.record is not None:
            self.record["last_step"] = int(info.step)

    def on_end(self, info) -> None:
        if self.record is not None:
            self.record["last_step"] = int(info.step)
            self.record["completed"] = True

    def close(self) -> None:
        import jax

        if self.record is None:
            return
        rec, self.record = self.record, None
        rec["end"] = time.time()
        rec["seconds"] = rec["end"] - self._t0
        nproc = rec["process_count"]
        scale = f" x {nproc} processes (process 0 measured)" if nproc > 1 else ""
        if self._meter is not None:
            try:
                rec["energy_j"] = (self._meter.read_mj() - self._start_mj) / 1000.0 * nproc
                rec["energy_source"] = "NVML total energy counters" + scale
            except Exception as e:  # noqa: BLE001
                log.warning("RunRecorder: reading NVML energy failed (%s)", e)
            self._meter.close()
        if self._tracker is not None:
            self._tracker.stop()
            data = getattr(self._tracker, "final_emissions_data", None)
            if data is not None:
                rec["energy_j"] = float(data.energy_consumed) * 3.6e6 * nproc
                rec["energy_source"] = "codecarbon (CPU + GPU + RAM)" + scale
        self._meter = self._tracker = None
        if jax.process_index() == 0:
            with open(os.path.join(self.workdir, RUN_RECORDS), "a", encoding="utf-8") as f:
                f.write(json.dumps(rec, sort_keys=True) + "\n")


# ============================================================================ collection
@dataclasses.dataclass
class RunRecords:
    """What ``collect_run_records`` found; ``paths`` says which file each part came from."""

    workdir: str
    export_dir: str
    train_config: dict
    metrics: list[dict]
    runs: list[dict]
    manifest: dict | None
    filter_report: dict | None
    fertility: list | None
    export_config: dict
    registry_dir: str
    synthesis: list[dict]
    paths: dict[str, str]
    warnings: list[str]


def resolve_workdir(workdir: str) -> str:
    """The trainer workdir (config.json + metrics.jsonl): ``workdir`` itself, or its
    ``train/`` sub-directory (the end-to-end demo's layout)."""
    workdir = os.path.abspath(workdir)
    for candidate in (workdir, os.path.join(workdir, "train")):
        if os.path.exists(os.path.join(candidate, "config.json")) and os.path.exists(
                os.path.join(candidate, "metrics.jsonl")):
            return candidate
    raise FileNotFoundError(
        f"{workdir} is not a training workdir: expected config.json and metrics.jsonl (written by "
        f"`python -m launch.train --workdir=...`) in it or in {workdir}/train")


def _find_filter_report(inputs: list[str]) -> str | None:
    """The filter output directory's report.json above the first kept shard that has one."""
    for path in inputs:
        directory = os.path.dirname(os.path.abspath(path))
        for _ in range(3):
            candidate = os.path.join(directory, "report.json")
            if os.path.exists(candidate):
                try:
                    if "dropped_by_reason" in read_json(candidate):
                        return candidate
                except ValueError:
                    pass
            directory = os.path.dirname(directory)
    return None


def _is_synthesis_report(path: str) -> bool:
    try:
        report = read_json(path)
    except ValueError:
        return False
    return isinstance(report, dict) and {"pipeline", "sft_records", "drop_reasons"} <= set(report)


def find_synthesis_reports(sft_file: str) -> list[str]:
    """The synthesis jobs' ``report.json`` above the SFT files a run trained on
    (``data.sft_file``: files, globs, directories, comma-separated; a synthesis job writes
    ``OUT/sft/part-*.jsonl`` next to ``OUT/report.json``)."""
    import glob

    found: list[str] = []
    for spec in (s.strip() for s in sft_file.split(",")):
        if not spec:
            continue
        paths = sorted(glob.glob(spec)) or [spec]
        for path in paths:
            directory = os.path.abspath(path if os.path.isdir(path) else os.path.dirname(path))
            for _ in range(2):
                candidate = os.path.join(directory, "report.json")
                if os.path.exists(candidate) and _is_synthesis_report(candidate):
                    if candidate not in found:
                        found.append(candidate)
                    break
                directory = os.path.dirname(directory)
    return found


def collect_run_records(workdir: str, export_dir: str, config: ReleaseConfig) -> RunRecords:
    """Read every record of the run (see the module docstring); missing parts become warnings."""
    from eurollm_jax.data import load_manifest

    workdir = resolve_workdir(workdir)
    export_dir = os.path.abspath(export_dir)
    if not os.path.exists(os.path.join(export_dir, "config.json")):
        raise FileNotFoundError(
            f"--export={export_dir} is not a Hugging Face export (no config.json); write one with "
            f"`python -m launch.convert` or eurollm_jax.save_hf_checkpoint")
    warnings: list[str] = []
    paths = {"train_config": os.path.join(workdir, "config.json"),
             "metrics": os.path.join(workdir, "metrics.jsonl"),
             "export_config": os.path.join(export_dir, "config.json")}
    train_config = read_json(paths["train_config"])
    metrics = read_jsonl(paths["metrics"])
    if not metrics:
        raise ValueError(f"{paths['metrics']} has no records: the run logged no step")
    runs: list[dict] = []
    runs_path = os.path.join(workdir, RUN_RECORDS)
    if os.path.exists(runs_path):
        runs = read_jsonl(runs_path)
        paths["runs"] = runs_path
    else:
        warnings.append(
            f"no {RUN_RECORDS} in {workdir} (the run did not use release.RunRecorder): training "
            f"time is the sum of logged step times, which leaves out compilation, evaluation and "
            f"checkpointing, and the device kind comes from energy.hardware")

    manifest = None
    data = train_config.get("data", {})
    manifest_dir = data.get("manifest") or ""
    if manifest_dir:
        try:
            manifest = load_manifest(manifest_dir)
            paths["manifest"] = os.path.join(manifest["root"], "manifest.json")
        except FileNotFoundError as e:
            warnings.append(f"token manifest not readable: {e}")
    else:
        warnings.append(f"the training data (data.source={data.get('source')!r}) has no token "
                        f"manifest: tokens per language and source are not recorded")

    filter_report = None
    report_path = config.filter_report or (
        _find_filter_report(manifest.get("inputs", [])) if manifest else None)
    if report_path and os.path.exists(report_path):
        filter_report = read_json(report_path)
        paths["filter_report"] = os.path.abspath(report_path)
    else:
        warnings.append("no filter report found (report.json of `launch.filter` above the "
                        "manifest's inputs, or filter_report in the release config): what the "
                        "filters removed is not documented")

    fertility = None
    tok_path = ((manifest or {}).get("tokenizer") or {}).get("path")
    fert_path = config.fertility or (os.path.join(os.path.dirname(tok_path), "fertility.json")
                                     if tok_path else "")
    if fert_path and os.path.exists(fert_path):
        fertility = read_json(fert_path)
        paths["fertility"] = os.path.abspath(fert_path)
    else:
        warnings.append("no tokenizer fertility report found (fertility.json next to the "
                        "tokenizer, or fertility in the release config)")

    synthesis = []
    summaries = list(config.data.synthesis_summaries)
    if data.get("source") == "sft":
        summaries += [p for p in find_synthesis_reports(str(data.get("sft_file") or ""))
                      if os.path.abspath(p) not in map(os.path.abspath, summaries)]
    for path in summaries:
        if not os.path.exists(path):
            raise FileNotFoundError(f"data.synthesis_summaries: {path} does not exist")
        synthesis.append({"path": os.path.abspath(path), "summary": read_json(path)})
    if data.get("source") == "sft" and not synthesis:
        warnings.append("SFT data without synthesis summaries: if any of it is synthetic, list "
                        "the synthesis jobs' summaries in data.synthesis_summaries")

    registry_dir = os.path.abspath(config.registry) if config.registry else ""
    if registry_dir:
        paths["registry"] = registry_dir
    return RunRecords(
        workdir=workdir, export_dir=export_dir, train_config=train_config, metrics=metrics,
        runs=runs, manifest=manifest, filter_report=filter_report, fertility=fertility,
        export_config=read_json(paths["export_config"]), registry_dir=registry_dir,
        synthesis=synthesis, paths=paths, warnings=warnings,
    )


# ============================================================================ summaries
def _mesh_devices(train_config: dict) -> int | None:
    mesh = train_config.get("mesh", {})
    sizes = [int(mesh.get(k, 1)) for k in ("data", "fsdp", "tensor")]
    return None if any(s <= 0 for s in sizes) else math.prod(sizes)


def training_summary(records: RunRecords) -> dict[str, Any]:
    """Steps, tokens, final losses and tokens per phase, from metrics.jsonl and the config."""
    rows = sorted(records.metrics, key=lambda r: r["step"])
    last = rows[-1]
    train = records.train_config.get("train", {})
    evals = [r for r in rows if "eval_loss" in r]
    phases_cfg = list(train.get("phases") or ())
    per_phase: dict[int, dict] = {}
    prev_tokens = 0
    for r in rows:
        p = int(r.get("phase", 0))
        entry = per_phase.setdefault(p, {"phase": p, "first_step": r["step"], "tokens": 0})
        entry["last_step"] = r["step"]
        entry["tokens"] += int(r.get("tokens", 0)) - prev_tokens
        prev_tokens = int(r.get("tokens", 0))
    phases = []
    for p, entry in sorted(per_phase.items()):
        cfg = phases_cfg[p] if p < len(phases_cfg) and isinstance(phases_cfg[p], dict) else {}
        phases.append(entry | {"name": cfg.get("name", f"phase {p}"), "mixture": cfg.get("mixture") or {}})
    return {
        "steps": int(last["step"]),
        "planned_steps": int(train.get("steps", last["step"])),
        "tokens": int(last.get("tokens", 0)),
        "batch_size": train.get("batch_size"),
        "seq_len": train.get("seq_len"),
        "final_loss": last.get("loss"),
        "final_step": int(last["step"]),
        "final_eval_loss": evals[-1]["eval_loss"] if evals else None,
        "final_eval_ppl": evals[-1].get("eval_ppl") if evals else None,
        "final_eval_step": int(evals[-1]["step"]) if evals else None,
        "phases": phases,
    }


def compute_segments(records: RunRecords, energy_cfg) -> tuple[list[dict], list[str]]:
    """Run segments for ``energy.energy_report`` (from run_records.jsonl, else from the
    logged step times) and the warnings that go with them."""
    warnings: list[str] = []
    if records.runs:
        segments = []
        for r in records.runs:
            seg = dict(r)
            if energy_cfg.hardware:
                seg["device_kind"] = energy_cfg.hardware
            if energy_cfg.device_count:
                seg["device_count"] = energy_cfg.device_count
            segments.append(seg)
        return segments, warnings
    rows = sorted(records.metrics, key=lambda r: r["step"])
    seconds, prev = 0.0, 0
    for r in rows:
        if "step_time_s" in r:
            seconds += float(r["step_time_s"]) * (int(r["step"]) - prev)
        prev = int(r["step"])
    count = energy_cfg.device_count or _mesh_devices(records.train_config)
    if not count:
        raise ValueError("the run has no run records and its mesh config has a -1 axis: set "
                         "energy.device_count in the release config")
    kind = energy_cfg.hardware
    if not kind:
        raise ValueError("the run has no run records (release.RunRecorder): set energy.hardware "
                         "(the device kind, e.g. 'NVIDIA H100 80GB HBM3') in the release config")
    warnings.append(f"compute from logged step times: {seconds:.1f} s on {count} x {kind} "
                    f"(a lower bound)")
    return [{"seconds": seconds, "device_kind": kind, "device_count": count, "process_count": 1,
             "first_step": 0, "last_step": prev}], warnings
