"""HBO fine-tuning: ``python -m launch.hbo --config=configs/hbo.py --workdir=DIR [overrides]``.

The trainer with the HBO hook (hierarchical balancing of the data mixture while it trains),
its ablations (``--config.hbo.mode=global|local``) and the static baselines
(``--config.hbo.mode=static --config.hbo.tau=1|3|inf``) under one command. All logic lives in
``eurollm_jax.hbo.run`` (docs/hbo.md); the tiny 8-language experiment:
``python -m eurollm_jax.hbo.experiment --out=DIR``.
"""

from eurollm_jax.hbo.run import main

if __name__ == "__main__":
    main()
