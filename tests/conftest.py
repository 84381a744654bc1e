"""Test session set-up: 8 emulated CPU devices, forced before jax is imported."""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=8"
    # Tests compile many small programs: cheaper LLVM passes cut compile time ~3x.
    + " --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import jax  # noqa: E402
import pytest  # noqa: E402

assert jax.device_count() == 8, (
    "tests need 8 emulated CPU devices; jax was imported before tests/conftest.py set XLA_FLAGS"
)


@pytest.fixture(scope="session")
def devices():
    return jax.devices()
