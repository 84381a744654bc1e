"""The training job's typed schema: every trainer setting, its default and its checks, once.

``TrainJobConfig.from_config(config)`` turns the ml_collections config of a job (a config
file plus ``--config.x.y=`` overrides) into frozen dataclass sections — ``model``
(``ModelConfig``), ``mesh``, ``train``, ``optimizer``, ``checkpoint``, ``data``, ``eval`` —
and validates them: unknown keys name the nearest valid key, bad values name the field.
``check_devices(num_devices)`` adds the checks that need the device count (mesh, batch
divisibility). ``configs/base.py`` builds its ConfigDict defaults from these dataclasses,
so a default is written here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from eurollm_jax.model import ModelConfig
from eurollm_jax.parallel import MeshConfig, resolve_mesh_shape
from eurollm_jax.schema import ConfigError, Section, nearest_key, plain

DATA_SOURCES = ("synthetic", "text", "sft", "pipeline")
WEIGHTINGS = ("proportional", "temperature", "uniform")


@dataclasses.dataclass(frozen=True)
class TrainSection(Section):
    steps: int = 1000  # total steps of the job
    batch_size: int = 8  # global sequences per step
    seq_len: int = 256
    micro_batches: int = 1  # gradient accumulation inside the step
    log_every: int = 10
    z_loss: float = 0.0
    max_nonfinite: int = 5  # abort after this many non-finite steps in a row
    stop_after: int = 0  # end this run after that many steps (checkpointed); 0 = run to steps
    init_params: str = ""  # a params directory to start from (SFT)
    freeze: tuple[str, ...] = ()  # parameter path regexes that never change
    trainable: tuple[str, ...] = ()  # when set, everything else is frozen
    phases: tuple[Any, ...] = ()  # ({name, steps, mixture, lr}, ...)
    loss_chunk: int = 0  # 0 or a divisor of seq_len: LM head + loss this many positions at a time
    loss_normalisation: str = "token"  # token | sequence (each packed sequence weighs the same)
    compiler_options: dict = dataclasses.field(default_factory=dict)  # XLA options of the steps
    profile_start: int = 0  # jax.profiler trace of profile_steps steps after this step
    profile_steps: int = 0

    def check(self, path):
        for name in ("steps", "batch_size", "seq_len", "micro_batches", "log_every",
                     "max_nonfinite"):
            self.require(path, getattr(self, name) > 0, name,
                         f"must be a positive integer, got {getattr(self, name)}")
        self.require(path, self.batch_size % self.micro_batches == 0, "batch_size",
                     f"({self.batch_size}) must be divisible by train.micro_batches "
                     f"({self.micro_batches})")
        self.require(path, self.loss_chunk >= 0 and (
            self.loss_chunk == 0 or self.seq_len % self.loss_chunk == 0), "loss_chunk",
            f"({self.loss_chunk}) must be 0 or divide train.seq_len ({self.seq_len})")
        self.require(path, self.loss_normalisation in ("token", "sequence"), "loss_normalisation",
                     f"{self.loss_normalisation!r}: choose 'token' or 'sequence'")
        for name in ("stop_after", "profile_start", "profile_steps"):
            self.require(path, getattr(self, name) >= 0, name, "must be >= 0")


@dataclasses.dataclass(frozen=True)
class OptimizerSection(Section):
    name: str = "adamw"  # adamw | sgd
    lr: float = 3e-4  # peak learning rate
    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    no_decay: tuple[str, ...] = ("norm",)  # path regexes without weight decay
    clip_norm: float = 1.0  # 0: no clipping
    momentum: float = 0.0  # sgd only
    schedule: str = "wsd"  # wsd | cosine | constant
    warmup_steps: int = -1  # -1: warmup_fraction of the steps
    warmup_fraction: float = 0.01
    decay_fraction: float = 0.1
    decay_shape: str = "linear"  # linear | cosine | 1-sqrt
    min_lr_ratio: float = 0.0

    def check(self, path):
        self.require(path, self.name in ("adamw", "sgd"), "name",
                     f"unknown optimizer {self.name!r}; choose adamw or sgd")
        self.require(path, self.lr > 0, "lr", f"must be positive, got {self.lr}")
        self.require(path, self.clip_norm >= 0, "clip_norm", "must be >= 0 (0: no clipping)")


@dataclasses.dataclass(frozen=True)
class CheckpointSection(Section):
    every: int = 500  # steps; 0 = only at the end
    keep: int = 3
    async_save: bool = True
    export_params: bool = True  # WORKDIR/params at the end of training
    replica_parallel: bool = False  # split writes of replicated arrays over replicas

    def check(self, path):
        self.require(path, self.keep > 0, "keep", "must be positive")
        self.require(path, self.every >= 0, "every", "must be >= 0 (0: only at the end)")


@dataclasses.dataclass(frozen=True)
class DataSection(Section):
    source: str = "synthetic"  # synthetic | text | sft | pipeline
    seed: int = 0
    num_docs: int = 512  # synthetic documents
    languages: tuple[str, ...] = ()  # text / sft: UDHR languages (default: the 24 EU ones)
    text_files: tuple[str, ...] = ()  # text: glob patterns; the file stem is the mixture key
    sft_file: str = ""  # sft: SFT records (data.sft): file, glob, directory or comma list
    eval_fraction: float = 0.1  # held-out share of each in-memory sub-source
    manifest: str = ""  # pipeline: the tokenized directory (launch.tokenize)
    eval_manifest: str = ""
    weighting: str = "proportional"  # when no mixture: proportional | temperature | uniform
    temperature: float = 3.0
    packing: str = ""  # "" = from the manifest kind | concat | best_fit
    num_workers: int = 0  # Grain worker processes
    shards: int = 0  # logical data shards of each global batch (train.host_data); 0 = auto
    mixture: dict = dataclasses.field(default_factory=dict)  # {name: weight}

    def check(self, path):
        self.require(path, self.source in DATA_SOURCES, "source",
                     f"unknown source {self.source!r}{nearest_key(self.source, DATA_SOURCES)} "
                     f"(choose one of {', '.join(DATA_SOURCES)})")
        self.require(path, self.weighting in WEIGHTINGS, "weighting",
                     f"{self.weighting!r}: choose one of {', '.join(WEIGHTINGS)}")
        self.require(path, self.packing in ("", "concat", "best_fit"), "packing",
                     f"{self.packing!r}: choose '', concat or best_fit")
        self.require(path, 0.0 <= self.eval_fraction < 1.0, "eval_fraction", "must be in [0, 1)")
        self.require(path, self.shards >= 0, "shards", "must be >= 0 (0: one per process block)")
        self.require(path, self.num_workers >= 0, "num_workers", "must be >= 0")


@dataclasses.dataclass(frozen=True)
class EvalSection(Section):
    every: int = 0  # steps; 0 = never
    batches: int = 2

    def check(self, path):
        self.require(path, self.every >= 0, "every", "must be >= 0 (0: never)")
        self.require(path, self.batches > 0, "batches", "must be positive")


SECTIONS = {
    "train": TrainSection,
    "optimizer": OptimizerSection,
    "checkpoint": CheckpointSection,
    "data": DataSection,
    "eval": EvalSection,
    "mesh": MeshConfig,
}


@dataclasses.dataclass(frozen=True)
class TrainJobConfig:
    model: ModelConfig
    mesh: MeshConfig
    train: TrainSection
    optimizer: OptimizerSection
    checkpoint: CheckpointSection
    data: DataSection
    eval: EvalSection
    seed: int = 0

    @classmethod
    def from_config(cls, config) -> "TrainJobConfig":
        values = plain(config)
        valid = set(SECTIONS) | {"model", "seed"}
        for key in values:
            if key not in valid:
                raise ConfigError(f"{key}: unknown section{nearest_key(key, valid)} "
                                  f"(valid: {', '.join(sorted(valid))})")
        if "model" not in values:
            raise ConfigError("model: the job config has no model section (see configs/base.py)")
        try:
            model = ModelConfig.from_dict(values["model"])
        except (TypeError, ValueError) as e:
            raise ConfigError(f"model: {e}") from e
        sections = {name: sec.from_mapping(values.get(name), name)
                    for name, sec in SECTIONS.items()}
        seed = values.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"seed: expected an integer, got {seed!r}")
        job = cls(model=model, seed=seed, **sections)
        job._check()
        return job

    def _check(self) -> None:
        if self.train.seq_len > self.model.max_seq_len:
            raise ConfigError(f"train.seq_len ({self.train.seq_len}) exceeds model.max_seq_len "
                              f"({self.model.max_seq_len})")

    def check_devices(self, num_devices: int) -> tuple[int, ...]:
        """The resolved mesh shape; errors for a mesh or batch the devices cannot hold."""
        try:
            shape = resolve_mesh_shape(self.mesh.shape, num_devices)
        except ValueError as e:
            raise ConfigError(f"mesh: {e}") from e
        data_par = shape[0] * shape[1]
        b, m = self.train.batch_size, self.train.micro_batches
        if (b // m) % data_par:
            raise ConfigError(
                f"train.batch_size: each micro-batch ({b} / {m} = {b // m} sequences) must "
                f"divide over the data axes of the mesh (data x fsdp = {shape[0]} x {shape[1]} = "
                f"{data_par}); choose train.batch_size a multiple of {m * data_par} or change "
                f"the mesh"
            )
        sequence = shape[2]
        if sequence > 1:
            chunks = sequence * (2 if self.model.context_load_balance else 1)
            if self.train.seq_len % chunks:
                why = (f"2 x mesh.sequence = {chunks} load-balanced chunks"
                       if self.model.context_load_balance else f"mesh.sequence = {chunks} shards")
                raise ConfigError(
                    f"train.seq_len ({self.train.seq_len}) must split into {why}: choose a "
                    f"multiple of {chunks}" + (" or set model.context_load_balance=False"
                                               if self.model.context_load_balance else ""))
        return shape

    def to_dict(self) -> dict:
        out = {name: getattr(self, name).to_dict() for name in SECTIONS}
        out["model"] = self.model.to_dict()
        out["seed"] = self.seed
        return out


def default_sections() -> dict[str, dict]:
    """Plain defaults of every trainer section (configs/base.py turns them into ConfigDicts)."""
    return {name: sec().to_dict() for name, sec in SECTIONS.items()}
