"""Trainer tests: a compilation cache shared by the tests of this package.

Several tests run the same jitted train step in fresh ``train()`` calls (resume, restore,
SIGTERM); a persistent compilation cache in a temporary directory makes the repeats
cheap. The previous settings are restored afterwards.
"""

import jax
import pytest


@pytest.fixture(scope="package", autouse=True)
def _compilation_cache(tmp_path_factory):
    names = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
    )
    old = {n: getattr(jax.config, n) for n in names}
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield
    for n, v in old.items():
        jax.config.update(n, v)
