"""HBO actors: the q_tau prior, Adam against optax, the fixed point p ∝ R, one-step
direction, Adam state across updates and exact JSON state."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from eurollm_jax.hbo.actors import Actor, softmax, temperature_prior


def test_temperature_prior():
    sizes = [400, 100, 25]
    np.testing.assert_allclose(temperature_prior(sizes, 1), np.array(sizes) / 525)
    np.testing.assert_allclose(temperature_prior(sizes, math.inf), [1 / 3] * 3)
    q3 = np.array(sizes, float) ** (1 / 3)
    np.testing.assert_allclose(temperature_prior(sizes, 3), q3 / q3.sum())
    with pytest.raises(ValueError, match="tau"):
        temperature_prior(sizes, 0)
    with pytest.raises(ValueError, match="positive"):
        temperature_prior([3, 0], 1)


def test_adam_update_matches_optax():
    rewards = np.array([0.3, 1.2, 0.7, 2.0])
    actor = Actor.from_probs(list("abcd"), [0.4, 0.3, 0.2, 0.1])
    w = jnp.asarray(actor.logits, jnp.float32)
    tx = optax.adam(0.01, b1=0.9, b2=0.999, eps=1e-8)
    opt = tx.init(w)
    loss = lambda v: -jnp.sum(jnp.asarray(rewards, jnp.float32) * jax.nn.log_softmax(v))  # noqa
    for _ in range(50):
        g = jax.grad(loss)(w)
        upd, opt = tx.update(g, opt, w)
        w = optax.apply_updates(w, upd)
    actor.update(rewards, steps=50, lr=0.01)
    np.testing.assert_allclose(actor.logits, np.asarray(w), rtol=0, atol=2e-5)


def test_converges_to_p_proportional_to_reward():
    rewards = np.array([0.5, 1.5, 3.0, 1.0])
    actor = Actor.from_probs(list("abcd"), [0.7, 0.1, 0.1, 0.1])
    for _ in range(20):
        actor.update(rewards, steps=200, lr=0.02)
    np.testing.assert_allclose(actor.probs, rewards / rewards.sum(), atol=1e-4)
    before = actor.loss(rewards)
    actor.update(rewards, steps=10, lr=0.02)
    assert actor.loss(rewards) <= before + 1e-12  # at the minimum


def test_one_update_moves_towards_the_reward():
    # Arm a gains mass exactly when R_a / sum(R) > p_a (the gradient's sign).
    rewards = np.array([1.0, 1.0, 4.0])
    p0 = np.array([0.2, 0.5, 0.3])  # targets [1/6, 1/6, 2/3]: a and b lose, c gains
    for steps, lr in ((1, 1e-4), (200, 1e-4)):  # one step, and the paper's default update
        actor = Actor.from_probs(list("abc"), p0)
        actor.update(rewards, steps=steps, lr=lr)
        delta = actor.probs - p0
        assert delta[2] > 0 and delta[1] < 0
        assert np.sign(delta[2]) == np.sign(rewards[2] / rewards.sum() - p0[2])
        # the KL to the fixed point shrinks
        target = rewards / rewards.sum()
        kl = lambda p: float(np.sum(target * np.log(target / p)))  # noqa: E731
        assert kl(actor.probs) < kl(p0)


def test_adam_state_carries_over_and_state_round_trips_exactly():
    r1, r2 = np.array([1.0, 2.0, 0.5]), np.array([0.2, 0.1, 3.0])
    straight = Actor(list("abc"))
    straight.update(r1, steps=7, lr=0.01)
    straight.update(r2, steps=5, lr=0.01)
    first = Actor(list("abc"))
    first.update(r1, steps=7, lr=0.01)
    resumed = Actor(list("abc"))
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    resumed.update(r2, steps=5, lr=0.01)
    assert resumed.state_dict() == straight.state_dict()  # bitwise, Adam moments included
    fresh = Actor(list("abc"))  # a fresh Adam state would move differently
    fresh.logits = first.logits.copy()
    fresh.update(r2, steps=5, lr=0.01)
    assert not np.array_equal(fresh.logits, straight.logits)
    with pytest.raises(ValueError, match="same subsets"):
        Actor(list("abd")).load_state_dict(first.state_dict())


def test_softmax_is_stable():
    np.testing.assert_allclose(softmax([1000.0, 1000.0]), [0.5, 0.5])
