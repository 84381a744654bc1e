"""Batch helpers shared by the data-path tests (tests/data, tests/train)."""

import numpy as np


def take(it, n):
    return [next(it) for _ in range(n)]


def assert_same(a, b):
    """Two lists of batches are equal, key by key and bit by bit."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
