"""The ExpertSteer demo's expert: a tiny byte-level model (d_model 128, 4 layers) trained on
real multilingual text (``data.text_files``: one file per language, set by
``python -m launch.steer --prepare_demo=DIR``, or on the command line).

    python -m launch.train --config=configs/steer_expert_tiny.py --workdir=/tmp/expert \
        --config.data.text_files='("/tmp/corpus/*.txt",)'
"""

from configs.base import base_config


def get_config(width: int = 128, layers: int = 4, ffn: int = 344):
    config = base_config(
        "tiny", compute_dtype="float32", vocab_size=264, d_model=width, num_layers=layers,
        num_heads=4, num_kv_heads=2, head_dim=width // 4, ffn_dim=ffn, max_seq_len=256,
    )
    t = config.train
    t.steps = 300
    t.batch_size = 8
    t.seq_len = 128
    t.log_every = 50
    config.optimizer.lr = 3e-3
    config.optimizer.warmup_steps = 20
    config.optimizer.decay_fraction = 0.2
    config.checkpoint.every = 0  # only at the end
    config.data.source = "text"
    config.data.text_files = ()
    config.eval.every = 0
    return config
