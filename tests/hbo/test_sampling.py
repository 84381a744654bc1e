"""Sampling: the pipeline's sampler, given HBO's weights, draws subset i and bucket j with
frequencies p_G(i) p_L(j|i) (within 1% over 100k draws), and examples uniformly in a bucket."""

import collections

import numpy as np
import pytest

from eurollm_jax.data import InMemoryRecords
from eurollm_jax.data.pipeline import MixtureSampler
from eurollm_jax.hbo.actors import Actor
from eurollm_jax.hbo.buckets import BucketLayout, bucket_source, difficulty_buckets, parse_source
from eurollm_jax.hbo.config import HBOSection
from eurollm_jax.hbo.hook import HBOHook, pipeline_weights


def _hook_with(p_global, p_local):
    subsets = sorted(p_local)
    hook = HBOHook(HBOSection())
    hook.layout = BucketLayout([bucket_source(s, j) for s in subsets
                                for j in range(len(p_local[s]))])
    hook.global_actor = Actor.from_probs(subsets, [p_global[s] for s in subsets])
    hook.local_actors = {s: Actor.from_probs(hook.layout.buckets(s), p_local[s]) for s in subsets}
    return hook


@pytest.mark.parametrize("unit", ["tokens", "examples"])
def test_draw_frequencies_are_p_global_times_p_local(unit):
    p_global = {"de": 0.5, "fr": 0.3, "mt": 0.2}
    p_local = {"de": [0.1, 0.2, 0.3, 0.4], "fr": [0.25] * 4, "mt": [0.55, 0.25, 0.15, 0.05]}
    hook = _hook_with(p_global, p_local)
    mix = hook.example_mixture()
    for s in p_global:
        for j in range(4):
            assert mix[f"{s}/b{j}"] == pytest.approx(p_global[s] * p_local[s][j], rel=1e-12)
    rng = np.random.default_rng(0)
    names = sorted(mix)
    # buckets of different sizes and document lengths (harder buckets: longer examples)
    sources, mean_tokens = [], {}
    for k, name in enumerate(names):
        j = parse_source(name)[1]
        docs = [rng.integers(3, 200, size=int(rng.integers(10 + 20 * j, 40 + 40 * j)))
                for _ in range(30 + 7 * k)]
        sources.append(InMemoryRecords(docs))
        mean_tokens[name] = float(np.mean([len(d) for d in docs]))
    weights = pipeline_weights(mix, mean_tokens, unit)
    sampler = MixtureSampler(sources, names, [weights[n] for n in names], unit=unit, seed=3)
    draws = 100_000
    counts = collections.Counter()
    per_example = collections.Counter()
    for _ in range(draws):
        (s, index), _, _ = sampler.draw()
        counts[s] += 1
        per_example[(s, index)] += 1
    freq = np.array([counts[k] / draws for k in range(len(names))])
    target = np.array([mix[n] for n in names])
    np.testing.assert_allclose(freq, target, rtol=0.01)
    # subset marginals are p_G, buckets given the subset p_L
    for s, pg in p_global.items():
        idx = [k for k, n in enumerate(names) if n.startswith(s + "/")]
        assert freq[idx].sum() == pytest.approx(pg, rel=0.01)
        np.testing.assert_allclose(freq[idx] / freq[idx].sum(), p_local[s], rtol=0.01)
    # within a bucket every example is drawn equally often (one per epoch each)
    for k in range(len(names)):
        c = [per_example[(k, i)] for i in range(len(sources[k]))]
        assert max(c) - min(c) <= 1


def test_difficulty_buckets_are_equal_and_sorted():
    scores = [5.0, 1.0, 3.0, 2.0, 4.0, 0.5, 6.0, 7.0, 2.5]
    parts = difficulty_buckets(scores, 4)
    assert [len(p) for p in parts] == [3, 2, 2, 2]
    flat = [scores[i] for p in parts for i in p]
    assert flat == sorted(scores)
    with pytest.raises(ValueError, match="cannot fill"):
        difficulty_buckets([1.0], 2)
    with pytest.raises(ValueError, match="finite"):
        difficulty_buckets([1.0, float("nan")], 2)


def test_bucket_layout_parses_and_rejects():
    layout = BucketLayout(["fr/b1", "de/b0", "fr/b0", "de/b1", "en"])
    assert layout.subsets == ["de", "en", "fr"]
    assert layout.buckets("fr") == ["fr/b0", "fr/b1"] and layout.buckets("en") == ["en"]
    assert BucketLayout(["de.b0", "de.b1"]).buckets("de") == ["de.b0", "de.b1"]
    with pytest.raises(ValueError, match="buckets 0..k-1"):
        BucketLayout(["de/b0", "de/b2"])
    with pytest.raises(ValueError, match="both bucket 0"):
        BucketLayout(["de/b0", "de.b0"])
