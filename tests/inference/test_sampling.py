"""Sampling filters and the empirical distribution of sampled tokens."""

import jax.numpy as jnp
import numpy as np

from eurollm_jax.inference.sampling import filter_logits, row_keys, sample_tokens, sampling_mode

LOGITS = np.array([2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -3.0], np.float32)


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def _expected(temperature, top_k, top_p):
    """numpy reference: temperature, then top-k, then top-p over the renormalised rest."""
    scaled = LOGITS / temperature
    order = np.argsort(-scaled)
    keep = np.zeros_like(scaled, bool)
    keep[order[: (top_k if top_k > 0 else len(scaled))]] = True
    p = _softmax(np.where(keep, scaled, -np.inf))
    mass = 0.0
    nucleus = np.zeros_like(keep)
    for i in order:
        if not keep[i]:
            break
        if mass < top_p or not nucleus.any():
            nucleus[i] = True
        mass += p[i]
    return _softmax(np.where(nucleus, scaled, -np.inf))


def test_filter_logits_matches_reference():
    logits = jnp.asarray(np.stack([LOGITS, LOGITS[::-1], LOGITS]))
    out = np.asarray(filter_logits(logits, jnp.asarray([3, 0, 0]), jnp.asarray([1.0, 0.6, 0.999])))
    assert np.isfinite(out[0]).sum() == 3 and set(np.flatnonzero(np.isfinite(out[0]))) == {0, 1, 2}
    want = _expected(1.0, 0, 0.6)
    assert set(np.flatnonzero(np.isfinite(out[1]))) == set(7 - np.flatnonzero(want > 0))
    assert np.isfinite(out[2]).sum() == 8  # top_p 0.999 keeps the whole (short) tail here


def test_sampled_frequencies_follow_the_filtered_distribution():
    n = 6000
    cases = [(1.0, 0, 1.0), (0.7, 4, 1.0), (1.3, 0, 0.8), (1.0, 5, 0.7)]
    for temperature, top_k, top_p in cases:
        keys = row_keys(jnp.full((n,), 11, jnp.uint32), jnp.arange(n, dtype=jnp.uint32), 0)
        toks = sample_tokens(
            jnp.broadcast_to(jnp.asarray(LOGITS), (n, 8)),
            temperature_B=jnp.full((n,), temperature),
            top_k_B=jnp.full((n,), top_k, jnp.int32),
            top_p_B=jnp.full((n,), top_p),
            keys_B2=keys,
            mode=sampling_mode([temperature], [top_k], [top_p]),
        )
        freq = np.bincount(np.asarray(toks), minlength=8) / n
        want = _expected(temperature, top_k, top_p)
        assert np.all(freq[want == 0] == 0), (temperature, top_k, top_p, freq)
        np.testing.assert_allclose(freq, want, atol=0.025)


def test_greedy_rows_and_modes():
    logits = jnp.asarray(np.stack([LOGITS, LOGITS[::-1]]))
    keys = row_keys(jnp.zeros((2,), jnp.uint32), jnp.arange(2, dtype=jnp.uint32), 3)

    def sample(temperatures, mode):
        return sample_tokens(
            logits,
            temperature_B=jnp.asarray(temperatures),
            top_k_B=jnp.zeros(2, jnp.int32),
            top_p_B=jnp.ones(2),
            keys_B2=keys,
            mode=mode,
        )

    assert np.asarray(sample([0.0, 0.0], "greedy")).tolist() == [0, 7]
    assert int(sample([0.0, 5.0], "sample")[0]) == 0
    assert sampling_mode([0.0, 0.0], [5, 0], [0.5, 1.0]) == "greedy"
    assert sampling_mode([0.0, 1.0], [5, 0], [0.5, 1.0]) == "sample"
    assert sampling_mode([0.0, 1.0], [5, 3], [0.5, 1.0]) == "filter"


def test_row_keys_depend_on_seed_stream_and_step():
    a = np.asarray(
        row_keys(jnp.asarray([1, 1, 2], jnp.uint32), jnp.asarray([0, 1, 0], jnp.uint32), 0)
    )
    b = np.asarray(row_keys(jnp.asarray([1], jnp.uint32), jnp.asarray([1], jnp.uint32), 0))
    c = np.asarray(row_keys(jnp.asarray([1], jnp.uint32), jnp.asarray([1], jnp.uint32), 1))
    assert len({tuple(k) for k in a}) == 3
    assert (a[1] == b[0]).all() and not (b == c).all()
