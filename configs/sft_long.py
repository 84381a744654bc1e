"""Long-context SFT: 32k-token rows split over the ``sequence`` mesh axis (context
parallelism), remat, the LM head + loss in chunks, and per-sequence loss normalisation (the
context-synthesis recipe: a long context with a short answer counts as one sequence).

    python -m launch.train --config=configs/sft_long.py --workdir=/tmp/long_sft \\
        --config.data.sft_file=/path/to/context_synthesis/output \\
        --config.train.init_params=/tmp/tiny/params

Defaults are the tiny model on 8 devices (CPU: ``XLA_FLAGS=--xla_force_host_platform_device_count=8``);
for EuroLLM-9B use ``base_config("eurollm-9b")`` with ``--config.mesh.fsdp=-1
--config.mesh.sequence=8`` (see docs/long_context.md and ``python -m launch.compile_tpu``).
SFT records are whole conversations (best-fit packing never splits one); a record longer
than ``train.seq_len`` is dropped and counted, never truncated into a partial answer.
"""

from configs.base import base_config


def get_config():
    config = base_config("tiny", compute_dtype="float32", max_seq_len=32_768,
                         remat_policy="full", context_parallel="ring")
    t = config.train
    t.steps = 20
    t.batch_size = 1
    t.seq_len = 32_768
    t.loss_chunk = 4_096
    t.loss_normalisation = "sequence"
    t.log_every = 1
    config.mesh.data, config.mesh.fsdp, config.mesh.sequence, config.mesh.tensor = 1, 1, -1, 1
    config.optimizer.lr = 1e-4
    config.optimizer.warmup_steps = 2
    config.optimizer.weight_decay = 0.0
    config.data.source = "sft"
    config.data.packing = "best_fit"
    config.checkpoint.every = 10
    config.eval.every = 0
    return config
