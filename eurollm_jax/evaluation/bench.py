"""EuroGEST scoring benchmark: ``python -m launch.bench eurogest [flags]``.

Scores ``--rows`` EuroGEST rows (two texts each) on the "tiny" preset (random weights,
byte-level tokenizer, fp32 by default) in two ways: batched (all texts in one
``eurogest.score_texts`` call: length-sorted batches under a token budget) and one row at a
time (one call per row, its masculine and feminine text together), and prints rows/s of
both and the ratio. Rows are gendered pairs built from real German text (the UDHR passages
of ``gflanguages``). Each way runs once untimed first (compiling its shapes), then the
timed runs of the two ways alternate (``--repeats``, median reported) so both see the
same machine load.
"""

from __future__ import annotations

import argparse
import statistics
import time

from eurollm_jax.fileio import write_json


def _rows(n: int) -> list[tuple[str, str]]:
    from eurollm_jax.languages import gflanguages_key, load_gflanguages

    entry = load_gflanguages()[gflanguages_key("de")]
    text = " ".join(v for _, v in entry.sample_text.ListFields() if len(v) >= 200)  # passages
    lines = [s.strip() for s in text.replace("!", ".").replace("\n", " ").split(".")
             if len(s.split()) >= 4]
    if not lines:
        raise RuntimeError("no German sample text in gflanguages")
    out = []
    for i in range(n):
        s = lines[i % len(lines)]
        words = s.split()
        s = " ".join(words[: 4 + (i * 7) % max(len(words) - 3, 1)])  # varied lengths
        out.append((f"Er sagte: {s}.", f"Sie sagte: {s}."))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=(argv or ["launch.bench eurogest"])[0],
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=128)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--max_batch_tokens", type=int, default=8192)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args((argv or [""])[1:])

    from eurollm_jax.evaluation.eurogest import score_texts
    from eurollm_jax.inference import Engine
    from eurollm_jax.model import create_model, get_preset
    from eurollm_jax.tokenizer import ByteTokenizer

    tok = ByteTokenizer()
    cfg = get_preset(args.preset, compute_dtype=args.dtype, param_dtype=args.dtype)
    if cfg.vocab_size < tok.vocab_size:
        raise SystemExit(f"preset {args.preset} has a vocabulary of {cfg.vocab_size} < "
                         f"{tok.vocab_size} byte-level ids")
    engine = Engine(create_model(cfg, seed=0), tok)
    rows = _rows(args.rows)
    texts = [t for pair in rows for t in pair]
    n_tokens = sum(len(t.encode("utf-8")) for t in texts)

    def batched():
        return score_texts(engine, texts, max_batch_tokens=args.max_batch_tokens)

    def one_row_at_a_time():
        return score_texts(engine, texts, rows_per_call=2, max_batch_tokens=args.max_batch_tokens)

    ways = {"batched": batched, "one_row_at_a_time": one_row_at_a_time}
    first = {name: fn() for name, fn in ways.items()}  # compile every shape once
    worst = max(abs(a[0] - b[0]) for a, b in zip(first["batched"], first["one_row_at_a_time"]))
    times = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, fn in ways.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(v) for name, v in times.items()}
    rate = {name: args.rows / med[name] for name in ways}
    print(f"EuroGEST scoring, preset {args.preset} ({args.dtype}), {args.rows} rows "
          f"({2 * args.rows} texts, {n_tokens} tokens), median of {args.repeats}")
    for name in ways:
        print(f"  {name:<18} {rate[name]:10.1f} rows/s  ({med[name]:.3f} s)")
    print(f"  batched / one row at a time: {rate['batched'] / rate['one_row_at_a_time']:.1f}x"
          f"  (max |lp difference| between the two: {worst:.2e})")
    if args.json:
        write_json(args.json, {"rows": args.rows, "preset": args.preset, "dtype": args.dtype,
                               "seconds": med, "rows_per_s": rate,
                               "ratio": rate["batched"] / rate["one_row_at_a_time"],
                               "max_lp_difference": worst})
    return 0
