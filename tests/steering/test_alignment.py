"""Affine auto-encoder alignment and the linear-probe check of a transferred direction."""

import numpy as np
import pytest

from eurollm_jax.steering.alignment import (
    fit_autoencoder,
    fit_linear_probe,
    probe_check,
    transfer_direction,
)


def two_views(n=400, latent=4, d_e=12, d_t=8, seed=0):
    """Expert and target states as two linear views (orthogonal columns, so a readout
    direction and a displacement coincide) of one latent s; y = [s_0 > 0]."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, latent))
    A = np.linalg.qr(rng.normal(size=(d_e, latent)))[0] * 3.0
    B = np.linalg.qr(rng.normal(size=(d_t, latent)))[0]
    H_e = s @ A.T + 5.0 + 0.01 * rng.normal(size=(n, d_e))  # offset: the biases matter
    H_t = s @ B.T - 1.0 + 0.01 * rng.normal(size=(n, d_t))
    y = (s[:, 0] > 0).astype(np.float32)
    v_e = np.linalg.pinv(A).T[:, 0]  # <h_e, v_e> = s_0 (+ const)
    return H_e, H_t, y, v_e / np.linalg.norm(v_e)


def test_autoencoder_reconstructs_low_rank_states():
    H_e, _, _, _ = two_views()
    ae = fit_autoencoder(H_e, 8, steps=800, learning_rate=2e-2)
    assert ae.W.shape == (8, 12) and ae.U.shape == (12, 8)
    assert ae.relative_error < 1e-3  # rank-4 data through an 8-wide code
    rec = ae.decode(ae.encode(H_e))
    mse = np.mean(np.sum((H_e - rec) ** 2, 1))
    assert mse == pytest.approx(ae.final_loss, rel=0.05)  # reported loss is in raw units
    narrow = fit_autoencoder(H_e, 2, steps=800, learning_rate=2e-2)
    assert narrow.relative_error > 0.2  # a 2-wide code cannot hold rank 4


def test_probe_check_tells_aligned_from_unaligned():
    H_e, H_t, y, v_e = two_views()
    probe = fit_linear_probe(H_t, y)
    assert probe.train_auc > 0.99
    paired = fit_autoencoder(H_e, 8, steps=800, learning_rate=2e-2, paired_target=H_t,
                             paired_weight=1.0)
    assert paired.paired_loss < 0.05 * np.mean(np.sum((H_t - H_t.mean(0)) ** 2, 1))
    good = probe_check(H_t, y, transfer_direction(paired, v_e), probe)
    assert good["projection_auc"] > 0.95
    # the probe's weight is not unique in an 8-wide view of a rank-4 latent: only check the sign
    assert good["probe_cosine"] > 0
    rng = np.random.default_rng(1)
    random_dir = rng.normal(size=8)
    bad = probe_check(H_t, y, random_dir / np.linalg.norm(random_dir), probe)
    assert bad["projection_auc"] < good["projection_auc"]


def test_errors():
    with pytest.raises(ValueError, match="paired_target"):
        fit_autoencoder(np.ones((4, 3)), 2, paired_weight=1.0)
    with pytest.raises(ValueError, match="both classes"):
        fit_linear_probe(np.ones((4, 3)), np.ones(4))
    with pytest.raises(ValueError, match="width"):
        probe_check(np.ones((4, 3)), np.array([0, 1, 0, 1]), np.ones(2))
