"""Per-sequence loss normalisation: each packed sequence weighs the same; the loss is the
mean of the sequences' mean token losses (checked against a per-token NumPy computation)."""

import jax.numpy as jnp
import numpy as np

from eurollm_jax.train.loss import shifted_targets, target_weights, token_nll
from eurollm_jax.train.step import per_sequence_weights


def test_per_sequence_loss_is_the_mean_of_sequence_means():
    rng = np.random.RandomState(0)
    seg = np.array([[1] * 5 + [2] * 9 + [0] * 2, [1] * 12 + [2] * 4], np.int32)
    mask = (rng.rand(2, 16) > 0.3).astype(np.int32)
    tokens = rng.randint(0, 11, (2, 16)).astype(np.int32)
    batch = {"tokens": jnp.asarray(tokens), "segment_ids": jnp.asarray(seg),
             "loss_mask": jnp.asarray(mask)}
    logits = jnp.asarray(rng.randn(2, 16, 11), jnp.float32)
    nll, _ = token_nll(logits, shifted_targets(batch))
    w_tok = np.asarray(target_weights(batch))
    w_seq = np.asarray(per_sequence_weights(jnp.asarray(w_tok), jnp.asarray(seg)))
    nll = np.asarray(nll)

    means = []
    for row in range(2):
        for s in (1, 2):
            sel = (seg[row] == s) & (w_tok[row] > 0)
            if sel.any():
                means.append(nll[row][sel].mean())
                np.testing.assert_allclose(w_seq[row][sel].sum(), 1.0, rtol=1e-6)
    assert np.all(w_seq[w_tok == 0] == 0)
    loss = (w_seq * nll).sum() / w_seq.sum()
    np.testing.assert_allclose(loss, np.mean(means), rtol=1e-6)
    token_loss = (w_tok * nll).sum() / w_tok.sum()
    assert abs(token_loss - loss) > 1e-3  # the two normalisations differ on this batch
