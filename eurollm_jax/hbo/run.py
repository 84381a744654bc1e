"""Run an HBO job: the trainer with ``HBOHook``, one command for HBO, ablations and baselines.

``run(config, workdir)`` takes an HBO job config (the trainer's sections plus ``hbo``,
``hbo.config``), builds the ``train.Trainer`` with an ``HBOHook`` and runs or resumes it.
``main(argv)`` is the command line::

    python -m eurollm_jax.hbo --config=configs/hbo_tiny8.py --workdir=/tmp/hbo \
        [--config.hbo.mode=static --config.hbo.tau=3 ...]

Multi-host: every process runs the same command (jax.distributed from the environment, as
``launch.train``).
"""

from __future__ import annotations

import sys

from eurollm_jax.hbo.config import split_job_config
from eurollm_jax.hbo.hook import HBOHook


def build(config, workdir: str, *, devices=None, hooks=()):
    """``(Trainer, HBOHook)`` of an HBO job config (nothing written yet)."""
    from eurollm_jax.train import Trainer

    train_config, settings = split_job_config(config)
    hook = HBOHook(settings)
    trainer = Trainer(train_config, workdir, devices=devices, hooks=[hook, *hooks])
    return trainer, hook


def run(config, workdir: str, *, devices=None, hooks=()):
    """Train (or resume) with HBO; returns ``(TrainResult, Trainer, HBOHook)``."""
    trainer, hook = build(config, workdir, devices=devices, hooks=hooks)
    return trainer.run(), trainer, hook


def main(argv=None):
    from absl import app, flags
    from ml_collections import config_flags

    config_flag = config_flags.DEFINE_config_file("config", None,
                                                  "HBO job config (configs/hbo*.py)")
    workdir_flag = flags.DEFINE_string("workdir", None, "run directory")

    def _main(_):
        from eurollm_jax.parallel import initialize_distributed

        initialize_distributed()
        from eurollm_jax.schema import ConfigError

        if config_flag.value is None or not workdir_flag.value:
            print("error: --config and --workdir are required", file=sys.stderr)
            return 2
        try:
            result, _, _ = run(config_flag.value, workdir_flag.value)
        except (ConfigError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        status = "stopped early" if result.stopped_early else "done"
        print(f"{status} at step {result.step}; workdir {result.workdir}")
        return 0

    app.run(lambda a: sys.exit(_main(a)), argv=argv)


if __name__ == "__main__":
    main()
