"""``python -m launch.train --config=configs/<preset>.py --workdir=DIR [--config.key=value ...]``

Trains (pre-training or SFT) and resumes from DIR's latest checkpoint on rerun; writes
DIR/metrics.jsonl. Multi-host: every process runs the same command; jax.distributed starts
from the environment (EUROLLM_COORDINATOR / EUROLLM_NUM_PROCESSES / EUROLLM_PROCESS_ID, or
a TPU pod's own). ``--export_params=OUT`` only writes the latest checkpoint's params to OUT.
"""

import logging
import sys

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "job config file (configs/*.py)")
_WORKDIR = flags.DEFINE_string("workdir", None, "run directory (checkpoints, metrics)")
_EXPORT = flags.DEFINE_string(
    "export_params", None, "export the latest checkpoint's params here and exit"
)


def main(argv):
    del argv
    from eurollm_jax.parallel import initialize_distributed

    initialize_distributed()
    from eurollm_jax.train import (
        CheckpointMismatchError,
        TrainConfigError,
        TrainingAborted,
        export_from_workdir,
        train,
    )

    if not any(a.startswith(("--verbosity", "-v")) for a in sys.argv[1:]):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.WARNING)  # Orbax/Grain chatter off by default
    logging.getLogger("eurollm_jax").setLevel(logging.INFO)
    config = _CONFIG.value
    if config is None:
        print("error: --config is required, e.g. --config=configs/tiny.py", file=sys.stderr)
        return 2
    try:
        if _EXPORT.value:
            print(export_from_workdir(config, _WORKDIR.value, _EXPORT.value))
            return 0
        result = train(config, _WORKDIR.value)
    except (TrainConfigError, CheckpointMismatchError, TrainingAborted) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    status = "stopped early" if result.stopped_early else "done"
    print(f"{status} at step {result.step}; workdir {result.workdir}")
    return 0


if __name__ == "__main__":
    flags.mark_flag_as_required("workdir")
    app.run(lambda argv: sys.exit(main(argv)))
