"""Evaluate a checkpoint: ``python -m launch.evaluate eurogest|lm_eval|mt|xl_alpacaeval|report``.

Thin entry point; the command line and everything behind it live in
``eurollm_jax.evaluation`` (see ``eurollm_jax/evaluation/cli.py`` and docs/evaluation.md).
"""

import sys

from eurollm_jax.evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
