"""``python -m launch.steer --config=configs/steer_tiny.py [--config.key=value ...]``

Runs the ExpertSteer experiment (``eurollm_jax.steering.run_experiment``): activations,
alignment, MI layer pairing, RFM vectors, the steered-vs-unsteered sweep; results under
``--config.output_dir``. ``--prepare_demo=DIR`` first builds the demo pair
(``eurollm_jax.steering.demo``: corpus, two tiny byte-level checkpoints of different widths
from ``configs/steer_expert_tiny.py`` / ``configs/steer_target_tiny.py``) and points the
config at it (output in DIR/results unless given).
"""

import logging
import sys

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "job config file (configs/steer_*.py)")
_DEMO = flags.DEFINE_string("prepare_demo", None, "build and train the demo pair in this dir")
_DEMO_STEPS = flags.DEFINE_integer("demo_steps", None, "training steps of each demo model")


def main(argv):
    del argv
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("eurollm_jax").setLevel(logging.INFO)
    from eurollm_jax.schema import ConfigError
    from eurollm_jax.steering import run_experiment

    config = _CONFIG.value
    if config is None:
        print("error: --config is required, e.g. --config=configs/steer_tiny.py", file=sys.stderr)
        return 2
    if _DEMO.value:
        import os

        from configs.steer_expert_tiny import get_config as expert_config
        from configs.steer_target_tiny import get_config as target_config
        from eurollm_jax.steering.demo import prepare_demo

        pair = prepare_demo(_DEMO.value, expert_config(), target_config(), steps=_DEMO_STEPS.value)
        config.expert.path, config.target.path = pair.expert_params, pair.target_params
        config.concept.probe_file, config.concept.eval_file = pair.probe_file, pair.eval_file
        if not config.output_dir:
            config.output_dir = os.path.join(_DEMO.value, "results")
    try:
        summary = run_experiment(config)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"pairs {summary['pairs']}; results in {summary['config']['output_dir']}")
    return 0


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
