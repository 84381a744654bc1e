"""HBO tests share the trainer tests' persistent compilation cache fixture."""

from tests.train.conftest import _compilation_cache  # noqa: F401
