"""The steering job's typed schema: every setting of ``launch.steer``, its default, its checks.

Sections (key in brackets): [expert] / [target] ``ModelSource`` (a checkpoint dir, HF
Llama-family or ours, or a preset; the tokenizer); [concept] ``ConceptSection`` (labelled
text records, which label is the concept, probe-set shape); [collect] ``CollectSection``;
[align] ``AlignSection``; [pairing] ``PairingSection``; [rfm] ``RFMSection``;
[steer] ``SteerSection`` (methods, coefficient sweep); [evaluation] ``EvaluationSection``.
Together with ``output_dir`` and ``seed`` they are ``SteerJobConfig``;
``configs/steer_*.py`` build their ConfigDicts from these defaults.
"""

from __future__ import annotations

import dataclasses
import os

from eurollm_jax.schema import ConfigError, Section, nearest_key
from eurollm_jax.steering.evaluation import MC_BACKENDS
from eurollm_jax.steering.mi import ESTIMATORS
from eurollm_jax.steering.vectors import METHODS

BYTE_TOKENIZER = "byte"  # ModelSource.tokenizer value for the byte-level tokenizer


@dataclasses.dataclass(frozen=True)
class ModelSource(Section):
    path: str = ""  # HF checkpoint dir (config.json) or params dir (model_config.json)
    preset: str = ""  # instead of path: a model preset with random weights (smoke tests)
    tokenizer: str = ""  # tokenizer.model path; "byte" = byte-level; "" = next to the weights
    compute_dtype: str = "float32"

    def check(self, path):
        self.require(path, bool(self.path) != bool(self.preset), "path",
                     "give exactly one of path (a checkpoint directory) or preset")
        if self.path:
            self.require(path, os.path.isdir(self.path), "path",
                         f"{self.path!r} is not a directory")
        if self.tokenizer and self.tokenizer != BYTE_TOKENIZER:
            self.require(path, os.path.exists(self.tokenizer), "tokenizer",
                         f"{self.tokenizer!r} does not exist (or use 'byte')")


@dataclasses.dataclass(frozen=True)
class ConceptSection(Section):
    probe_file: str = ""  # labelled records for probes, alignment, pairing and vectors
    eval_file: str = ""  # labelled records for the evaluation tasks (held out)
    text_field: str = "text"
    label_field: str = "lang"  # the concept is label_field == positive
    positive: str = ""
    prefix_chars: tuple[int, ...] = (24, 48)  # each probe piece cut at these lengths
    max_probe: int = 256  # probe prompts (balanced classes)
    val_fraction: float = 0.25  # probe share held out to choose RFM bandwidth / ridge

    def check(self, path):
        for name in ("probe_file", "eval_file"):
            value = getattr(self, name)
            self.require(path, bool(value), name, "required: a JSONL/Parquet file of labelled texts")
            self.require(path, os.path.exists(value), name, f"{value!r} does not exist")
        self.require(path, bool(self.positive), "positive",
                     "required: the label value of the concept (e.g. 'de')")
        self.require(path, bool(self.prefix_chars) and min(self.prefix_chars) > 0, "prefix_chars",
                     "give positive lengths")
        self.require(path, self.max_probe >= 8, "max_probe", "must be >= 8")
        self.require(path, 0.0 < self.val_fraction < 0.9, "val_fraction", "must be in (0, 0.9)")


@dataclasses.dataclass(frozen=True)
class CollectSection(Section):
    pooling: str = "last"  # last | mean
    cache: bool = True  # activations cached under <output_dir>/cache
    max_batch_tokens: int = 8192

    def check(self, path):
        self.require_choice(path, "pooling", ("last", "mean"))
        self.require(path, self.max_batch_tokens > 0, "max_batch_tokens", "must be positive")


@dataclasses.dataclass(frozen=True)
class AlignSection(Section):
    steps: int = 500
    learning_rate: float = 1e-2
    paired_weight: float = 1.0  # the expertsteer_paired method's pairing term

    def check(self, path):
        self.require(path, self.steps > 0, "steps", "must be positive")
        self.require(path, self.learning_rate > 0, "learning_rate", "must be positive")
        self.require(path, self.paired_weight >= 0, "paired_weight", "must be >= 0")


@dataclasses.dataclass(frozen=True)
class PairingSection(Section):
    estimator: str = "gaussian"  # gaussian | knn
    dims: int = 4  # PCA components per side
    knn_k: int = 3
    num_pairs: int = 1
    expert_layers: tuple[int, ...] = ()  # () = all
    target_layers: tuple[int, ...] = ()

    def check(self, path):
        self.require_choice(path, "estimator", tuple(ESTIMATORS))
        self.require(path, self.dims >= 1, "dims", "must be >= 1")
        self.require(path, self.knn_k >= 1, "knn_k", "must be >= 1")
        self.require(path, self.num_pairs >= 1, "num_pairs", "must be >= 1")


@dataclasses.dataclass(frozen=True)
class RFMSection(Section):
    bandwidths: tuple[float, ...] = (1.0, 10.0, 100.0)  # chosen by validation AUC
    regs: tuple[float, ...] = (1e-3,)
    iters: int = 5
    center_grads: bool = False

    def check(self, path):
        self.require(path, bool(self.bandwidths) and min(self.bandwidths) > 0, "bandwidths",
                     "give positive bandwidths")
        self.require(path, bool(self.regs) and min(self.regs) >= 0, "regs", "give ridges >= 0")
        self.require(path, self.iters >= 1, "iters", "must be >= 1")


@dataclasses.dataclass(frozen=True)
class SteerSection(Section):
    methods: tuple[str, ...] = METHODS
    coefficients: tuple[float, ...] = (0.25, 0.5, 1.0)  # eps relative to the layer's norm

    def check(self, path):
        for m in self.methods:
            self.require(path, m in METHODS, "methods",
                         f"{m!r} is not one of {', '.join(METHODS)}{nearest_key(m, METHODS)}")
        self.require(path, bool(self.methods), "methods", "give at least one method")
        self.require(path, bool(self.coefficients), "coefficients", "give at least one coefficient")


@dataclasses.dataclass(frozen=True)
class EvaluationSection(Section):
    mc_backend: str = "lm_eval"  # lm_eval | direct
    mc_items: int = 48
    mc_choices: int = 4
    mc_chars: int = 24
    gen_prompts: int = 16
    gen_prompt_chars: int = 8
    gen_tokens: int = 24
    judge_layer: int = -1  # expert layer of the generation judge's probe

    def check(self, path):
        self.require_choice(path, "mc_backend", MC_BACKENDS)
        for name in ("mc_items", "mc_chars", "gen_tokens", "gen_prompt_chars"):
            self.require(path, getattr(self, name) > 0, name, "must be positive")
        self.require(path, self.mc_choices >= 2, "mc_choices", "must be >= 2")
        self.require(path, self.gen_prompts >= 0, "gen_prompts", "must be >= 0 (0: no generation)")


@dataclasses.dataclass(frozen=True)
class SteerJobConfig(Section):
    expert: ModelSource = dataclasses.field(default_factory=ModelSource)
    target: ModelSource = dataclasses.field(default_factory=ModelSource)
    concept: ConceptSection = dataclasses.field(default_factory=ConceptSection)
    collect: CollectSection = dataclasses.field(default_factory=CollectSection)
    align: AlignSection = dataclasses.field(default_factory=AlignSection)
    pairing: PairingSection = dataclasses.field(default_factory=PairingSection)
    rfm: RFMSection = dataclasses.field(default_factory=RFMSection)
    steer: SteerSection = dataclasses.field(default_factory=SteerSection)
    evaluation: EvaluationSection = dataclasses.field(default_factory=EvaluationSection)
    output_dir: str = ""
    seed: int = 0

    def check(self, path):
        self.require(path, bool(self.output_dir), "output_dir", "required: where results go")


def default_config_dict() -> dict:
    """The defaults as plain dicts, without running the checks (config files start here)."""
    out = {}
    for f in dataclasses.fields(SteerJobConfig):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        out[f.name] = default.to_dict() if isinstance(default, Section) else default
    return out


__all__ = ["SteerJobConfig", "ConfigError", "default_config_dict", "BYTE_TOKENIZER"]
