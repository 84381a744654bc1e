"""The release job's typed schema: what a person declares for a release (``configs/release_*.py``).

Everything the framework recorded (data, filters, training, compute, evaluations) is read
from the run's files; this config holds only what no run file can know:

- [model] ``ModelSection``: the model's name, licence, contact for complaints, intended and
  out-of-scope uses, known limitations, the Hugging Face ``pipeline_tag``/``library_name``
  and ``training_type`` (``co2_eq_emissions.training_type``).
- [data] ``DataSection``: per data source (the ``source`` names of the token manifest) its
  licence, consent and robots.txt status and how it was collected; collection decisions,
  PII notes, intended uses and limitations of the data; synthesis job summaries (JSON
  files) when SFT data was synthetic. A manifest source without a declaration is a
  warning in the datasheet, never silently omitted.
- [energy] ``EnergySection``: PUE, the grid carbon intensity (a region of
  ``energy.GRID_INTENSITY_G_PER_KWH`` or a number), an override of the device power table,
  and hardware overrides for runs recorded without a ``RunRecorder``.
- [process] ``ProcessSection``: the items the tool records but cannot decide (ethics review
  status, staged release plan, red-teaming, annotators when human labels were used); an
  empty item is a visible warning in the model card.
- top level: the evaluation registry directory and optional explicit paths of the filter
  report and tokenizer fertility (found from the token manifest when empty).
"""

from __future__ import annotations

import dataclasses

from eurollm_jax.schema import Section, nearest_key

TRAINING_TYPES = ("pre-training", "fine-tuning")
ENERGY_METHODS = ("auto", "measured", "estimate")
# Keys of one ``data.sources`` entry; "licence" is the one a datasheet cannot do without.
SOURCE_KEYS = ("licence", "consent", "robots", "collection", "url")


@dataclasses.dataclass(frozen=True)
class ModelSection(Section):
    name: str = ""  # the model id on the card (model-index name)
    license: str = ""  # Hugging Face licence id of the weights (e.g. "apache-2.0")
    contact: str = ""  # where to send complaints and questions
    description: str = ""
    training_type: str = "pre-training"  # co2_eq_emissions.training_type
    pipeline_tag: str = "text-generation"
    library_name: str = "transformers"  # the exported directory is a transformers Llama
    base_model: str = ""  # for fine-tuned models
    tags: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()  # the card's languages when no manifest records them
    intended_uses: tuple[str, ...] = ()
    out_of_scope_uses: tuple[str, ...] = ()
    limitations: tuple[str, ...] = ()

    def check(self, path):
        self.require(path, self.training_type in TRAINING_TYPES, "training_type",
                     f"{self.training_type!r} is not one of {', '.join(TRAINING_TYPES)}"
                     f"{nearest_key(self.training_type, TRAINING_TYPES)}")


@dataclasses.dataclass(frozen=True)
class DataSection(Section):
    # {source: {"licence": ..., "consent": ..., "robots": ..., "collection": ..., "url": ...}}
    sources: dict = dataclasses.field(default_factory=dict)
    collection: tuple[str, ...] = ()  # collection decisions (what was taken, what was left out, why)
    pii_notes: str = ""  # anything about PII beyond the filter's recorded settings
    intended_uses: tuple[str, ...] = ()
    limitations: tuple[str, ...] = ()
    synthesis_summaries: tuple[str, ...] = ()  # JSON summaries of synthesis jobs (synthetic SFT data)

    def check(self, path):
        for name, entry in self.sources.items():
            self.require(path, isinstance(entry, dict), f"sources.{name}",
                         f"expected a mapping with keys {', '.join(SOURCE_KEYS)}, got {entry!r}")
            for key in entry:
                self.require(path, key in SOURCE_KEYS, f"sources.{name}.{key}",
                             f"unknown key{nearest_key(key, SOURCE_KEYS)} (valid keys: "
                             f"{', '.join(SOURCE_KEYS)})")


@dataclasses.dataclass(frozen=True)
class EnergySection(Section):
    method: str = "auto"  # auto: measured where every run segment recorded energy, else estimate
    pue: float = 1.1  # data-centre power usage effectiveness (facility power / IT power)
    region: str = "EU-27"  # a key of energy.GRID_INTENSITY_G_PER_KWH
    grid_intensity_g_per_kwh: float = 0.0  # > 0: use this instead of the region's table value
    device_power_w: float = 0.0  # > 0: power per device (per host for CPUs) instead of the table
    hardware: str = ""  # device kind for runs without run records (e.g. "NVIDIA H100 80GB HBM3")
    device_count: int = 0  # devices for runs without run records (0: from the mesh config)

    def check(self, path):
        self.require(path, self.method in ENERGY_METHODS, "method",
                     f"{self.method!r} is not one of {', '.join(ENERGY_METHODS)}"
                     f"{nearest_key(self.method, ENERGY_METHODS)}")
        self.require(path, self.pue >= 1.0, "pue", f"{self.pue} < 1: a PUE is facility power over "
                     f"IT power, at least 1 (1.1 is a typical hyperscale figure)")
        for name in ("grid_intensity_g_per_kwh", "device_power_w"):
            self.require(path, getattr(self, name) >= 0, name, "must be >= 0 (0: use the table)")
        self.require(path, self.device_count >= 0, "device_count", "must be >= 0")


@dataclasses.dataclass(frozen=True)
class ProcessSection(Section):
    """Decisions people make; the release records them and warns where one is missing."""

    ethics_review: str = ""  # status of the ethics review (who, when, outcome)
    staged_release: str = ""  # the staged release plan (who gets access when)
    red_teaming: str = ""  # red-teaming done (by whom, what, findings)
    human_labels: bool | None = None  # were human labels used? None: not stated (a warning)
    annotators: str = ""  # annotator information (who, pay, instructions) when human labels were used


PROCESS_ITEMS = {
    "ethics_review": "ethics review status",
    "staged_release": "staged release plan",
    "red_teaming": "red-teaming",
}


@dataclasses.dataclass(frozen=True)
class ReleaseConfig(Section):
    model: ModelSection = dataclasses.field(default_factory=ModelSection)
    data: DataSection = dataclasses.field(default_factory=DataSection)
    energy: EnergySection = dataclasses.field(default_factory=EnergySection)
    process: ProcessSection = dataclasses.field(default_factory=ProcessSection)
    registry: str = ""  # the evaluation registry directory ("" : no evaluation results)
    filter_report: str = ""  # the filter's report.json ("" : found from the token manifest)
    fertility: str = ""  # the tokenizer's fertility.json ("" : next to the manifest's tokenizer)


def process_warnings(process: ProcessSection) -> dict[str, str]:
    """{item: warning} for every process item that is missing (never silently omitted)."""
    out = {}
    for key, label in PROCESS_ITEMS.items():
        if not getattr(process, key).strip():
            out[key] = (f"{label} not recorded: set process.{key} in the release config "
                        f"(the tool records it, it cannot decide it)")
    if process.human_labels is None:
        out["human_labels"] = ("whether human labels were used is not recorded: set "
                               "process.human_labels (and process.annotators if true)")
    elif process.human_labels and not process.annotators.strip():
        out["annotators"] = ("human labels were used but annotator information is missing: set "
                             "process.annotators (who, how recruited and paid, instructions)")
    return out
