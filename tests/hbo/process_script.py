"""One process of a multi-process HBO run (tests/hbo/test_processes.py): trains the small HBO
job and writes the rewards and mixtures this process saw to ``OUT/process_<id>.json``."""

import json
import os
import sys

from eurollm_jax.parallel import initialize_distributed


def main(sft_file, workdir, out_dir):
    initialize_distributed()
    import jax

    from eurollm_jax.hbo.run import run
    from tests.hbo.helpers import hbo_config

    seen = {}

    def record(info):
        seen[info.step] = {k: v for k, v in info.metrics.items()
                           if k.startswith("hbo/") and k != "hbo/reward_time_s"}

    config = hbo_config(sft_file, steps=4, mesh=(2, 2, 2))
    config.data.shards = 2
    from eurollm_jax.train.hooks import FunctionHook

    _, _, hook = run(config, workdir, hooks=[FunctionHook(record, 1, name="record")])
    path = os.path.join(out_dir, f"process_{jax.process_index()}.json")
    with open(path, "w") as f:
        json.dump({"metrics": seen, "state": hook.state_dict()}, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
