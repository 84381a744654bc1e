"""``python -m eurollm_jax.hbo --config=configs/hbo.py --workdir=DIR``: an HBO job
(``eurollm_jax.hbo.run``)."""

from eurollm_jax.hbo.run import main

if __name__ == "__main__":
    main()
