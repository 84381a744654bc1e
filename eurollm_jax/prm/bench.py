"""PRM scoring throughput: solutions/s scored in batches vs one at a time (the ratio).

``python -m launch.bench prm [--solutions=256] [--steps=4] [--preset=tiny | --params=DIR]``
scores synthetic multi-step solutions (``prm.synthetic``) with ``PRMScorer`` twice: batched
(rows packed under ``--batch_tokens``) and with ``max_rows=1``; each after one warm-up pass,
so compilation is not timed. Prints solutions/s of both and the ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=(argv or ["launch.bench prm"])[0])
    parser.add_argument("--solutions", type=int, default=256)
    parser.add_argument("--preset", default="tiny", help="model preset with random weights")
    parser.add_argument("--params", default="", help="a params directory instead of --preset")
    parser.add_argument("--batch_tokens", type=int, default=4096)
    parser.add_argument("--languages", default="en,de,fr,es,sw")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args((argv or [""])[1:])

    from eurollm_jax.prm.render import StepFormat
    from eurollm_jax.prm.scoring import PRMScorer
    from eurollm_jax.prm.synthetic import labelled_solutions, problems
    from eurollm_jax.tokenizer import ByteTokenizer

    tok = ByteTokenizer()
    if args.params:
        from eurollm_jax.checkpoint import load_params

        model = load_params(args.params)
    else:
        from eurollm_jax.model import create_model, get_preset

        cfg = get_preset(args.preset, vocab_size=max(261, get_preset(args.preset).vocab_size),
                         compute_dtype="float32")
        model = create_model(cfg, seed=args.seed)
    langs = tuple(args.languages.split(","))
    per = -(-args.solutions // len(langs))
    sols = labelled_solutions(problems(per, langs, args.seed), 0.3, args.seed)[: args.solutions]
    items = [(s.question, list(s.steps)) for s in sols]
    results = {}
    for name, rows in (("batched", 1 << 30), ("one_at_a_time", 1)):
        scorer = PRMScorer(model, tok, StepFormat(), max_batch_tokens=args.batch_tokens,
                           max_rows=rows)
        scorer.score(items[: min(len(items), 64 if rows > 1 else 8)])  # compile the shapes
        scorer.score(items)  # warm-up over every shape bucket
        start = time.perf_counter()
        probs = scorer.step_probabilities(items)
        elapsed = time.perf_counter() - start
        results[name] = (len(items) / elapsed, probs)
    agree = max(float(np.max(np.abs(a - b))) for a, b in zip(results["batched"][1],
                                                                results["one_at_a_time"][1]))
    b, o = results["batched"][0], results["one_at_a_time"][0]
    tokens = sum(len(scorer.render(*it).ids) for it in items) / len(items)
    print(f"PRM scoring, {len(items)} solutions (mean {tokens:.0f} tokens), model "
          f"{args.params or args.preset}")
    print(f"  batched:        {b:10.1f} solutions/s")
    print(f"  one at a time:  {o:10.1f} solutions/s")
    print(f"  ratio batched / one at a time: {b / o:.1f}x  (max |p| difference {agree:.2e})")
    return 0
