"""HBO's actors: softmax policies over subsets (global) and over buckets (local).

An ``Actor`` holds one logit per arm, ``p = softmax(w)``, and an Adam state. Its update
minimises ``-sum_a R_a log p_a`` for a reward vector ``R`` (``actor_steps`` Adam steps at
``lr``; the Adam moments and step count carry over from one update to the next). The
gradient is ``-(R - p * sum(R))``, so ``p`` moves towards ``R / sum(R)`` (the fixed point)
and, after one step, arm ``a`` gains mass exactly when ``R_a / sum(R) > p_a``.

Everything is float64 NumPy: the update is a few hundred tiny vector operations, the same
on every process, and its state round-trips through JSON exactly (``state_dict``).

``temperature_prior(sizes, tau)`` is HBO's global initialisation ``q_tau(i) ∝ |D_i|^(1/tau)``
(tau = 1: proportional, tau = inf: uniform): the static baselines of the paper use the same
``q_tau`` as their fixed mixture.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8


def softmax(w) -> np.ndarray:
    w = np.asarray(w, np.float64)
    e = np.exp(w - w.max())
    return e / e.sum()


def temperature_prior(sizes: Sequence[float], tau: float) -> np.ndarray:
    """``q_tau ∝ size^(1/tau)``, normalised; ``tau = inf`` gives the uniform distribution."""
    sizes = np.asarray(sizes, np.float64)
    if sizes.ndim != 1 or len(sizes) == 0 or np.any(sizes <= 0):
        raise ValueError(f"subset sizes must be a non-empty list of positive numbers, got {sizes}")
    tau = float(tau)
    if not tau > 0:
        raise ValueError(f"hbo.tau must be > 0 (or inf for uniform), got {tau}")
    alpha = 0.0 if math.isinf(tau) else 1.0 / tau
    q = sizes**alpha
    return q / q.sum()


class Actor:
    """One softmax policy with Adam state (see the module docstring)."""

    def __init__(self, names: Sequence[str], logits=None):
        self.names = list(names)
        n = len(self.names)
        if n == 0:
            raise ValueError("an actor needs at least one arm")
        self.logits = np.zeros(n) if logits is None else np.asarray(logits, np.float64).copy()
        if self.logits.shape != (n,) or not np.all(np.isfinite(self.logits)):
            raise ValueError(f"need {n} finite logits, got {logits}")
        self.m = np.zeros(n)
        self.v = np.zeros(n)
        self.t = 0

    @classmethod
    def from_probs(cls, names: Sequence[str], probs) -> "Actor":
        """Logits ``log p`` (probabilities must be > 0)."""
        probs = np.asarray(probs, np.float64)
        if np.any(probs <= 0):
            raise ValueError(f"initial probabilities must be > 0, got {probs}")
        return cls(names, np.log(probs / probs.sum()))

    @property
    def probs(self) -> np.ndarray:
        return softmax(self.logits)

    def loss(self, rewards) -> float:
        """``-sum_a R_a log softmax(w)_a``."""
        w = self.logits
        log_p = w - w.max() - math.log(np.exp(w - w.max()).sum())
        return float(-(np.asarray(rewards, np.float64) * log_p).sum())

    def update(self, rewards, *, steps: int, lr: float) -> None:
        """``steps`` Adam steps on ``-sum_a R_a log p_a`` (Adam state kept across calls)."""
        r = np.asarray(rewards, np.float64)
        if r.shape != self.logits.shape or not np.all(np.isfinite(r)):
            raise ValueError(f"need {len(self.names)} finite rewards, got {rewards}")
        total = r.sum()
        for _ in range(int(steps)):
            grad = total * softmax(self.logits) - r
            self.t += 1
            self.m = ADAM_B1 * self.m + (1 - ADAM_B1) * grad
            self.v = ADAM_B2 * self.v + (1 - ADAM_B2) * grad * grad
            m_hat = self.m / (1 - ADAM_B1**self.t)
            v_hat = self.v / (1 - ADAM_B2**self.t)
            self.logits = self.logits - lr * m_hat / (np.sqrt(v_hat) + ADAM_EPS)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {"names": list(self.names), "logits": self.logits.tolist(), "m": self.m.tolist(),
                "v": self.v.tolist(), "t": int(self.t)}

    def load_state_dict(self, state: Mapping) -> None:
        if list(state["names"]) != self.names:
            raise ValueError(
                f"saved actor has arms {list(state['names'])}, this one {self.names}: resume "
                "with the same subsets and buckets"
            )
        self.logits = np.asarray(state["logits"], np.float64)
        self.m = np.asarray(state["m"], np.float64)
        self.v = np.asarray(state["v"], np.float64)
        self.t = int(state["t"])
