"""Exact and MinHash near-dedup: planted near-duplicates found, distinct pages left alone."""

import random

import numpy as np
import pytest

from eurollm_jax.filtering.dedup import (
    DedupConfig,
    cluster,
    collision_probability,
    exact_key,
    jaccard,
    normalize,
)


def _planted(n_pairs=250, n_distinct=1500, words=250, target=0.8, seed=0):
    """Originals, near-copies at shingle Jaccard in [target, target + 0.02), distinct docs."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(30000)]
    originals, copies, js = [], [], []
    for _ in range(n_pairs):
        ws = [rng.choice(vocab) for _ in range(words)]
        base = " ".join(ws)
        pos = rng.sample(range(words), words)
        best = None
        lo, hi = 1, words
        while lo <= hi:  # most edits that keep Jaccard >= target
            mid = (lo + hi) // 2
            w2 = list(ws)
            for p in pos[:mid]:
                w2[p] = rng.choice(vocab)
            j = jaccard(base, " ".join(w2))
            if j >= target:
                best, lo = (" ".join(w2), j), mid + 1
            else:
                hi = mid - 1
        originals.append(base)
        copies.append(best[0])
        js.append(best[1])
    distinct = [" ".join(rng.choice(vocab) for _ in range(words)) for _ in range(n_distinct)]
    return originals, copies, js, distinct


@pytest.fixture(scope="module")
def planted():
    return _planted()


def _rates(cfg, originals, copies, distinct):
    texts = originals + copies + distinct
    sigs = np.stack([cfg.signature(t) for t in texts])
    dec = cluster(range(len(texts)), [exact_key(t) for t in texts], sigs, cfg)
    n = len(originals)
    recall = sum((n + i) in dec and dec[n + i][1] == i for i in range(n)) / n
    fp = sum(i in dec for i in range(2 * n, len(texts))) / len(distinct)
    assert all(i not in dec for i in range(n))  # the first copy of a cluster is kept
    return recall, fp


def test_recall_and_false_positives_at_jaccard_08(planted):
    originals, copies, js, distinct = planted
    assert 0.8 <= min(js) and max(js) < 0.83
    # FineWeb's default 14 x 8: expected recall 1 - (1 - 0.8**8)**14 = 0.924 at J = 0.8.
    recall_default, fp_default = _rates(DedupConfig(), originals, copies, distinct)
    # A recall-oriented setting: 20 x 5 (0.9996 at J = 0.8) with signature verification.
    recall_wide, fp_wide = _rates(DedupConfig(bands=20, rows=5, verify_threshold=0.6),
                                  originals, copies, distinct)
    print(f"near-dedup @J~0.8: 14x8 recall {recall_default:.3f} fp {fp_default:.4f}; "
          f"20x5+verify recall {recall_wide:.3f} fp {fp_wide:.4f}")
    theory = float(np.mean([collision_probability(j, 14, 8) for j in js]))  # ~0.93-0.95
    assert abs(recall_default - theory) < 0.05 and fp_default <= 0.01
    assert recall_wide >= 0.95 and fp_wide <= 0.01


def test_default_recall_at_jaccard_09():
    originals, copies, js, distinct = _planted(n_pairs=120, n_distinct=200, target=0.9, seed=1)
    recall, fp = _rates(DedupConfig(), originals, copies, distinct)
    assert recall >= 0.95 and fp <= 0.01


def test_exact_duplicates_ignore_case_space_punctuation():
    a = "Hello, World!  This is   a test."
    b = "hello world this is a TEST"
    assert normalize(a) == normalize(b) and exact_key(a) == exact_key(b)
    cfg = DedupConfig(near=False)
    dec = cluster([5, 3, 9], [exact_key(a), exact_key(b), exact_key("other")], None, cfg)
    assert dec == {5: ("exact_duplicate", 3)}


def test_signatures_are_deterministic_and_shaped():
    cfg = DedupConfig(bands=4, rows=3, seed=7)
    s1, s2 = cfg.signature("a b c d e f g"), cfg.signature("a b c d e f g")
    assert s1.shape == (12,) and s1.dtype == np.uint32 and (s1 == s2).all()
    assert (cfg.signature("") == 0xFFFFFFFF).all()
    assert not (DedupConfig(seed=8, bands=4, rows=3).signature("a b c d e f g") == s1).all()


def test_transitive_clusters_keep_one():
    cfg = DedupConfig(bands=20, rows=5)
    base = " ".join(f"t{i}" for i in range(300))
    near1 = base.replace("t10 ", "x ").replace("t200 ", "y ")
    near2 = near1.replace("t50 ", "z ")
    texts = [near2, base, near1]
    sigs = np.stack([cfg.signature(t) for t in texts])
    dec = cluster([30, 10, 20], [exact_key(t) for t in texts], sigs, cfg)
    assert dec == {20: ("near_duplicate", 10), 30: ("near_duplicate", 10)}
