"""Serving benchmark: ``python -m launch.bench serve [flags]``.

Two measurements on one random-weight model in one process (no HTTP: the engine side of
the server, so that the numbers are those of the batching and not of the JSON layer):

1. Mixed-length load: ``--requests`` requests (prompt lengths uniform in
   [``--min_prompt``, ``--max_prompt``], token budgets uniform in [``--min_new``,
   ``--max_new``], EOS ignored) submitted at once, served by continuous batching
   (``continuous.Scheduler`` with ``--slots`` decode slots) and by today's static batching
   (``server.Batcher``: requests that arrive together run as one ``generate_ids`` call of
   at most ``--slots`` rows, to its longest member). Reported: new tokens/s, time to first
   token (TTFT) and per-output-token latency percentiles (static batching returns a
   request's tokens when its batch ends: TTFT = latency), and the throughput ratio.
2. Client load (``--clients``; 0 skips it): the shape of an LLM serving load test
   (llmperf's ``--num-concurrent-requests``, vLLM's ``--max-concurrency``): ``--clients``
   concurrent clients, each sending ``--client_requests`` requests one after another (the
   next when the last answer is back), with long-tailed lengths as in chat traffic:
   prompt lengths and token budgets log-normal (medians ``--client_prompt_median`` and
   ``--client_new_median``, sigma ``--client_sigma``) clipped to the ranges above. Served
   by both, same process; reported as in 1. Static batching runs every batch to its
   longest member, so the long tail costs it most; the burst load (1) bounds continuous
   batching by its longest request instead (all requests start together), so its ratio
   stays below ``max_new / mean(new)``.
3. Prefix cache: ``--prefix_requests`` requests sharing a ``--prefix_len``-token prefix
   with their own short suffixes, served with and without the prefix cache: wall time,
   mean TTFT and the speed-up.

``--slots`` (default 64, the requests' and the clients' concurrency) bounds both batchers
alike: at most that many rows in a static batch, that many decode slots.

Each configuration first runs two other random workloads of the same distribution
(compilation of the shapes they meet), then ``--repeats`` timed runs; medians are reported. ``--shape cpu`` is
the "tiny" preset (d_model 256, 4 layers, vocab 8000).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from eurollm_jax.fileio import write_json


def _parse(argv):
    p = argparse.ArgumentParser(
        prog=argv[0] if argv else "launch.bench serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--preset", default="tiny")
    p.add_argument("--dtype", default="float32", choices=("bfloat16", "float32"))
    p.add_argument("--requests", type=int, default=64)
    # Both batchers may hold every concurrent request (the server sized to the load's
    # concurrency, as vLLM's max_num_seqs would be); --slots 32 halves their capacity.
    p.add_argument("--slots", type=int, default=64)
    p.add_argument("--min_prompt", type=int, default=8)
    p.add_argument("--max_prompt", type=int, default=256)
    p.add_argument("--min_new", type=int, default=4)
    p.add_argument("--max_new", type=int, default=128)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--client_requests", type=int, default=4)
    p.add_argument("--client_prompt_median", type=int, default=48)
    p.add_argument("--client_new_median", type=int, default=24)
    p.add_argument("--client_sigma", type=float, default=1.0)
    p.add_argument("--decode_steps", type=int, default=16)
    p.add_argument("--prefix_len", type=int, default=512)
    p.add_argument("--prefix_requests", type=int, default=16)
    p.add_argument("--prefix_new", type=int, default=8)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--skip_prefix", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    return p.parse_args(argv[1:])


def _pct(xs, q):
    return float(np.percentile(np.asarray(xs, np.float64), q)) if xs else float("nan")


def _workload(args, cfg, rng):
    lens = rng.integers(args.min_prompt, args.max_prompt + 1, size=args.requests)
    news = rng.integers(args.min_new, args.max_new + 1, size=args.requests)
    prompts = [[cfg.bos_token_id] + rng.integers(5, cfg.vocab_size, size=n - 1).tolist() for n in lens]
    return prompts, [int(n) for n in news]


def _client_workload(args, cfg, rng):
    """``clients`` lists of (prompt, budget): log-normal lengths, clipped to the ranges."""
    def lognormal(median, low, high, size):
        x = rng.lognormal(np.log(median), args.client_sigma, size=size)
        return np.clip(np.rint(x), low, high).astype(int)

    total = args.clients * args.client_requests
    lens = lognormal(args.client_prompt_median, args.min_prompt, args.max_prompt, total)
    news = lognormal(args.client_new_median, args.min_new, args.max_new, total)
    prompts = [[cfg.bos_token_id] + rng.integers(5, cfg.vocab_size, size=n - 1).tolist()
               for n in lens]
    pairs = list(zip(prompts, (int(n) for n in news)))
    k = args.client_requests
    return [pairs[i * k:(i + 1) * k] for i in range(args.clients)]


def _serve_one_continuous(scheduler, prompt, n):
    from eurollm_jax.inference import SamplingParams
    from eurollm_jax.inference.continuous import Request

    r = scheduler.submit(Request(prompt, SamplingParams(max_new_tokens=n, ignore_eos=True)))
    r.wait()
    assert len(r.result) == n
    return r.first_token_at - r.submitted_at, (r.finished_at - r.first_token_at) / max(n - 1, 1)


def _serve_one_static(batcher, prompt, n):
    from eurollm_jax.inference import SamplingParams

    t0 = time.perf_counter()
    out = batcher.submit([prompt], [SamplingParams(max_new_tokens=n, ignore_eos=True)]).result()[0]
    latency = time.perf_counter() - t0
    assert len(out) == n
    return latency, latency / n  # static batching answers when its batch ends: TTFT = latency


def run_clients(serve_one, target, client_lists):
    """Closed loop: one thread per client, each request sent when the last came back."""
    import concurrent.futures

    def client(pairs):
        return [serve_one(target, p, n) for p, n in pairs]

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(len(client_lists)) as pool:
        per_client = list(pool.map(client, client_lists))
    wall = time.perf_counter() - t0
    rows = [x for c in per_client for x in c]
    return wall, [t for t, _ in rows], [p for _, p in rows]


def run_continuous(scheduler, prompts, news):
    from eurollm_jax.inference import SamplingParams
    from eurollm_jax.inference.continuous import Request

    t0 = time.perf_counter()
    reqs = [
        scheduler.submit(Request(p, SamplingParams(max_new_tokens=n, ignore_eos=True)))
        for p, n in zip(prompts, news)
    ]
    for r in reqs:
        r.wait()
    wall = time.perf_counter() - t0
    ttft = [r.first_token_at - r.submitted_at for r in reqs]
    per_tok = [
        (r.finished_at - r.first_token_at) / max(len(r.result) - 1, 1) for r in reqs
    ]
    assert all(len(r.result) == n for r, n in zip(reqs, news))
    return wall, ttft, per_tok


def run_static(batcher, prompts, news):
    from eurollm_jax.inference import SamplingParams

    t0 = time.perf_counter()
    jobs = []
    for p, n in zip(prompts, news):
        f = batcher.submit([p], [SamplingParams(max_new_tokens=n, ignore_eos=True)])
        jobs.append(f)
        f.add_done_callback(lambda f: setattr(f, "done_at", time.perf_counter()))
    outs = [f.result()[0] for f in jobs]
    wall = time.perf_counter() - t0
    assert all(len(o) == n for o, n in zip(outs, news))
    lat = [f.done_at - t0 for f in jobs]
    per_tok = [latency / n for latency, n in zip(lat, news)]
    return wall, lat, per_tok


def _summary(name, walls, ttfts, per_toks, new_tokens):
    wall = statistics.median(walls)
    out = {
        "impl": name,
        "wall_s": wall,
        "new_tokens_per_s": new_tokens / wall,
        "ttft_p50_s": _pct(ttfts, 50),
        "ttft_p90_s": _pct(ttfts, 90),
        "ttft_p99_s": _pct(ttfts, 99),
        "per_token_p50_ms": 1e3 * _pct(per_toks, 50),
        "per_token_p90_ms": 1e3 * _pct(per_toks, 90),
        "per_token_p99_ms": 1e3 * _pct(per_toks, 99),
    }
    print(
        f"  {name}: {out['new_tokens_per_s']:,.0f} new tokens/s (wall {wall:.2f} s); TTFT p50/p90/p99 "
        f"{out['ttft_p50_s']:.2f}/{out['ttft_p90_s']:.2f}/{out['ttft_p99_s']:.2f} s; per output token "
        f"p50/p90/p99 {out['per_token_p50_ms']:.1f}/{out['per_token_p90_ms']:.1f}/"
        f"{out['per_token_p99_ms']:.1f} ms",
        flush=True,
    )
    return out


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    args = _parse(argv)
    from eurollm_jax.inference import Engine, SamplingParams
    from eurollm_jax.inference.continuous import Request, Scheduler
    from eurollm_jax.model import create_model, get_preset

    cfg = get_preset(args.preset, compute_dtype=args.dtype, param_dtype=args.dtype)
    # Each part runs a server configured for its own context (the cache a scheduler
    # allocates, and so what a decode step copies, follows max_seq_len); same weights.
    cfg = cfg.replace(max_seq_len=args.max_prompt + args.max_new)
    engine = Engine(create_model(cfg, seed=args.seed))
    rng = np.random.default_rng(args.seed)
    warm = [_workload(args, cfg, rng) for _ in range(2)]
    timed = [_workload(args, cfg, rng) for _ in range(args.repeats)]
    print(
        f"serve benchmark: {args.preset} ({cfg.param_count() / 1e6:.1f}M params), {args.dtype}, "
        f"{args.requests} concurrent requests, prompts {args.min_prompt}-{args.max_prompt}, new "
        f"tokens {args.min_new}-{args.max_new}, {args.slots} slots",
        flush=True,
    )
    print("burst load (all requests at once, uniform lengths):", flush=True)
    results, ratio = _compare(
        args, engine, warm, timed,
        continuous=lambda target, w: run_continuous(target, *w),
        static=lambda target, w: run_static(target, *w),
        new_tokens=lambda w: sum(w[1]),
    )
    summary = {"load": results, "ratio_continuous_over_static": ratio, "args": vars(args)}
    if args.clients:
        summary.update(_client_load(args, cfg, engine, rng))

    if not args.skip_prefix:
        print(
            f"prefix cache: {args.prefix_requests} requests sharing a {args.prefix_len}-token "
            f"prefix, suffixes 8-64 tokens, {args.prefix_new} new tokens",
            flush=True,
        )

        def prefix_workload():
            head = [cfg.bos_token_id] + rng.integers(5, cfg.vocab_size, size=args.prefix_len - 1).tolist()
            return [
                head + rng.integers(5, cfg.vocab_size, size=int(n)).tolist()
                for n in rng.integers(8, 65, size=args.prefix_requests)
            ]

        prefix_cfg = cfg.replace(max_seq_len=args.prefix_len + 64 + args.prefix_new)
        prefix_engine = Engine(create_model(prefix_cfg, seed=args.seed))
        prefix = {}
        for name, tokens in (("without prefix cache", 0), ("with prefix cache", 8 * args.prefix_len)):
            sch = Scheduler(
                prefix_engine, num_slots=args.slots, decode_steps=args.decode_steps,
                prefix_cache_tokens=tokens, prefix_block=64,
            )
            sch.warmup(args.prefix_len + 64)
            try:
                samp = SamplingParams(max_new_tokens=args.prefix_new, ignore_eos=True)
                for _ in range(2):  # compile: a first prefix (misses), then hits on it
                    ps = prefix_workload()
                    for r in [sch.submit(Request(p, samp)) for p in ps]:
                        r.wait()
                walls, ttfts = [], []
                for _ in range(args.repeats):
                    ps = prefix_workload()
                    t0 = time.perf_counter()
                    reqs = [sch.submit(Request(p, samp)) for p in ps]
                    for r in reqs:
                        r.wait()
                    walls.append(time.perf_counter() - t0)
                    ttfts += [r.first_token_at - r.submitted_at for r in reqs]
                prefix[name] = {
                    "wall_s": statistics.median(walls),
                    "ttft_mean_s": float(np.mean(ttfts)),
                    "prefill_tokens": sch.stats["prefill_tokens"],
                    "prefix_cache": sch.metrics().get("prefix_cache"),
                }
                print(
                    f"  {name}: wall {prefix[name]['wall_s']:.2f} s, mean TTFT "
                    f"{prefix[name]['ttft_mean_s']:.3f} s",
                    flush=True,
                )
            finally:
                sch.close()
        speedup = prefix["without prefix cache"]["wall_s"] / prefix["with prefix cache"]["wall_s"]
        print(f"  prefix-cache speed-up (wall): {speedup:.2f}x", flush=True)
        summary["prefix"] = prefix
        summary["prefix_speedup"] = speedup
    if args.json:
        write_json(args.json, summary, sort_keys=False)
    return 0


def _compare(args, engine, warm, timed, *, continuous, static, new_tokens):
    """Both batchers on the same workloads: ``warm`` ones (compilation), then ``timed``;
    ``continuous(scheduler, w)`` / ``static(batcher, w)`` return (wall, ttfts, per-token)."""
    from eurollm_jax.inference.continuous import Scheduler
    from eurollm_jax.inference.server import Batcher

    results = {}
    scheduler = Scheduler(engine, num_slots=args.slots, decode_steps=args.decode_steps)
    t0 = time.perf_counter()
    scheduler.warmup(args.max_prompt)
    print(f"  (continuous batching warm-up compile: {time.perf_counter() - t0:.1f} s)", flush=True)
    batcher = Batcher(engine, max_batch_size=args.slots, batch_wait_s=0.01)
    try:
        for name, runner, target in (
            ("continuous", continuous, scheduler),
            ("static", static, batcher),
        ):
            t0 = time.perf_counter()
            for w in warm:
                runner(target, w)
            compile_s = time.perf_counter() - t0
            walls, ttfts, per = [], [], []
            for w in timed:
                wall, t, p = runner(target, w)
                walls.append(wall)
                ttfts += t
                per += p
            results[name] = _summary(name, walls, ttfts, per,
                                     statistics.median([new_tokens(w) for w in timed]))
            results[name]["warmup_s"] = compile_s
    finally:
        scheduler.close()
        batcher.close()
    ratio = results["continuous"]["new_tokens_per_s"] / results["static"]["new_tokens_per_s"]
    print(f"  ratio continuous / static: {ratio:.2f}x", flush=True)
    return results, ratio


def _client_load(args, cfg, engine, rng):
    warm = [_client_workload(args, cfg, rng) for _ in range(2)]
    timed = [_client_workload(args, cfg, rng) for _ in range(args.repeats)]
    news = [n for c in timed[0] for _, n in c]
    print(
        f"client load: {args.clients} clients x {args.client_requests} requests in a closed "
        f"loop, log-normal lengths (prompt median {args.client_prompt_median}, new median "
        f"{args.client_new_median}, sigma {args.client_sigma}; first run: mean new "
        f"{np.mean(news):.0f}, max {max(news)})",
        flush=True,
    )
    results, ratio = _compare(
        args, engine, warm, timed,
        continuous=lambda target, w: run_clients(_serve_one_continuous, target, w),
        static=lambda target, w: run_clients(_serve_one_static, target, w),
        new_tokens=lambda w: sum(n for c in w for _, n in c),
    )
    return {"client_load": results, "client_ratio_continuous_over_static": ratio}


if __name__ == "__main__":
    sys.exit(main())
