"""Shared pieces of the ml_collections configs: ``base_config(preset)``.

A job config has a ``model`` section (ModelConfig fields), a ``mesh`` section
(data/fsdp/tensor sizes, -1 = the rest); stages add their own sections. The trainer's:

- ``train``: steps (total), batch_size (global sequences per step), seq_len,
  micro_batches (gradient accumulation inside the step), log_every, z_loss,
  max_nonfinite (abort after this many non-finite steps in a row), stop_after (end this
  run after that many steps with a checkpoint; 0 = run to ``steps``), init_params (a
  params directory to start from: SFT), freeze / trainable (parameter path regexes),
  phases (list of {name, steps, mixture, lr}), loss_chunk (0 or a divisor of seq_len),
  compiler_options (XLA options for the jitted steps, e.g. xla_backend_optimization_level).
- ``optimizer``: AdamW (lr peak, b1, b2, eps, weight_decay, no_decay patterns, clip_norm)
  and the schedule (wsd | cosine | constant, warmup_steps or warmup_fraction,
  decay_fraction, decay_shape linear | cosine | 1-sqrt, min_lr_ratio).
- ``checkpoint``: every (steps; 0 = only at the end), keep, async_save, export_params,
  replica_parallel (split writes of replicated arrays over replicas: large DP meshes).
- ``data``: source (synthetic | text | sft | pipeline) and its options, mixture; for the
  production pipeline: manifest, eval_manifest, weighting, temperature, packing, num_workers;
  shards (logical data shards of each global batch, 0 = one per process row block; the same
  value gives the same batches on any number of hosts, see ``train.host_data``).
- ``eval``: every (steps; 0 = never), batches.

Override anything on the command line, e.g. ``--config.train.steps=100
--config.model.remat_policy=full --config.mesh.tensor=2``.
"""

import ml_collections

from eurollm_jax.model.config import get_preset


def model_section(preset: str, **overrides) -> ml_collections.ConfigDict:
    values = get_preset(preset, **overrides).to_dict()
    return ml_collections.ConfigDict(values, type_safe=False)


def train_sections(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Add the trainer's sections with defaults (EuroLLM's recipe where it is known)."""
    config.train = ml_collections.ConfigDict(
        dict(
            steps=1000,
            batch_size=8,
            seq_len=256,
            micro_batches=1,
            log_every=10,
            z_loss=0.0,
            max_nonfinite=5,
            stop_after=0,
            init_params="",
            freeze=(),
            trainable=(),
            phases=(),
            loss_chunk=0,
            compiler_options=ml_collections.ConfigDict(),
        ),
        type_safe=False,
    )
    config.optimizer = ml_collections.ConfigDict(
        dict(
            name="adamw",
            lr=3e-4,
            b1=0.9,
            b2=0.95,
            eps=1e-8,
            weight_decay=0.1,
            no_decay=("norm",),
            clip_norm=1.0,
            schedule="wsd",
            warmup_steps=-1,
            warmup_fraction=0.01,
            decay_fraction=0.1,
            decay_shape="linear",
            min_lr_ratio=0.0,
        )
    )
    config.checkpoint = ml_collections.ConfigDict(
        dict(
            every=500,
            keep=3,
            async_save=True,
            export_params=True,
            replica_parallel=False,
        )
    )
    config.data = ml_collections.ConfigDict(
        dict(
            source="synthetic",
            seed=0,
            num_docs=512,
            languages=(),
            text_files=(),
            sft_file="",
            eval_fraction=0.1,
            manifest="",
            eval_manifest="",
            weighting="proportional",
            temperature=3.0,
            packing="",
            num_workers=0,
            shards=0,
            mixture=ml_collections.ConfigDict(),
        ),
        type_safe=False,
    )
    config.eval = ml_collections.ConfigDict(dict(every=0, batches=2))
    return config


def base_config(preset: str, **model_overrides) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = model_section(preset, **model_overrides)
    config.mesh = ml_collections.ConfigDict({"data": 1, "fsdp": -1, "tensor": 1})
    config.seed = 0
    train_sections(config)
    return config


def pretrain_config(
    preset: str, *, steps: int, batch_size: int, lr: float, **model_overrides
) -> ml_collections.ConfigDict:
    """A production pre-training job: 4,096-token rows from the data pipeline, the LM head's
    loss 1,024 positions at a time, a log line every 50 steps, a checkpoint every 1,000."""
    config = base_config(preset, **model_overrides)
    t = config.train
    t.steps, t.batch_size, t.seq_len = steps, batch_size, 4096
    t.log_every, t.loss_chunk = 50, 1024
    config.optimizer.lr = lr
    config.checkpoint.every = 1000
    config.data.source = "pipeline"
    return config
