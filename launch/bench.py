"""Benchmarks: ``python -m launch.bench <name> [flags]``.

Each benchmark lives with the stage it measures and exposes ``main(argv)``; this file
only dispatches. Every benchmark prints a side-by-side ratio against a peer run in the
same process (transformers, datatrove, a plain Python loop).
"""

import importlib
import sys

BENCHMARKS = {
    "forward": "eurollm_jax.model.bench",
    "context": "eurollm_jax.model.bench_context",
    "train_step": "eurollm_jax.train.bench",
    "decode": "eurollm_jax.inference.bench",
    "data": "eurollm_jax.data.bench",
    "filter": "eurollm_jax.filtering.bench",
    "hf_load": "eurollm_jax.checkpoint.bench",
    "serve": "eurollm_jax.inference.bench_serve",
    "langid": "eurollm_jax.filtering.bench_langid",
    "eurogest": "eurollm_jax.evaluation.bench",
    "synthesis": "eurollm_jax.synthesis.bench",
    "rfm": "eurollm_jax.steering.bench",
    "prm": "eurollm_jax.prm.bench",
    "hbo": "eurollm_jax.hbo.bench",
    "rag": "eurollm_jax.rag.bench",
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in BENCHMARKS:
        print(f"usage: python -m launch.bench {{{','.join(BENCHMARKS)}}} [flags]", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[argv[0]])
    return module.main([f"launch.bench {argv[0]}"] + argv[1:])


if __name__ == "__main__":
    sys.exit(main())
