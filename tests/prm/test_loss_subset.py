"""train.loss.restrict_vocab / StepOptions.vocab_subset (the PRM's two-way cross-entropy)
against a NumPy reference computed from the model's full logits."""

import numpy as np
from flax import nnx

from eurollm_jax.model import ModelConfig, create_model
from eurollm_jax.train.loss import shifted_targets, target_weights
from eurollm_jax.train.step import loss_sums


def _setup():
    cfg = ModelConfig(vocab_size=61, d_model=32, num_layers=1, num_heads=2, num_kv_heads=1,
                      head_dim=16, ffn_dim=48, max_seq_len=32, compute_dtype="float32",
                      param_dtype="float32", attention_impl="xla")
    model = create_model(cfg, seed=3)
    rng = np.random.default_rng(0)
    tokens = rng.integers(5, 61, size=(2, 16)).astype(np.int32)
    subset = (7, 11)
    mask = np.zeros((2, 16), np.int32)
    for row, cols in ((0, (4, 9)), (1, (15,))):  # targets: subset tokens at these columns
        for c in cols:
            tokens[row, c] = subset[c % 2]
            mask[row, c] = 1
    batch = {"tokens": tokens, "segment_ids": np.ones_like(tokens),
             "positions": np.tile(np.arange(16, dtype=np.int32), (2, 1)), "loss_mask": mask}
    mb = dict(batch, targets=shifted_targets(batch), weights=target_weights(batch))
    return model, mb, subset


def test_two_way_cross_entropy_matches_numpy_on_the_subset_logits():
    model, mb, subset = _setup()
    graphdef, params = nnx.split(model)
    logits = np.asarray(model(mb["tokens"]), np.float64)
    want = 0.0
    for b, t in zip(*np.nonzero(np.asarray(mb["weights"]))):
        sub = logits[b, t, list(subset)]
        target = int(mb["targets"][b, t])
        want -= sub[subset.index(target)] - np.log(np.exp(sub).sum())
    for chunk in (0, 8):
        nll, _ = loss_sums(graphdef, model.cfg, params, mb, chunk, subset)
        np.testing.assert_allclose(float(nll), want, rtol=1e-5)
    full, _ = loss_sums(graphdef, model.cfg, params, mb)
    assert float(full) > float(nll) + 1.0  # the full-vocabulary CE is another number
