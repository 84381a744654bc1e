"""Benchmark: the LLM client's requests/s against a served tiny model, concurrency 1 vs 16, and
the cache-hit path.

``python -m launch.bench synthesis [--requests=64] [--max_tokens=16] [--repeats=3]
[--batching=continuous] [--json=out.json]``

A random tiny EuroLLM-shaped model (byte-level tokenizer) is served in this process by
``inference.server`` (uvicorn on a free port, ``launch.serve``'s code path; continuous
batching by default). ``LLMClient.from_endpoint`` (the ``openai`` package) sends ``--requests``
distinct chat requests (greedy, ``--max_tokens`` each) with concurrency 1 and then 16, after a
warm-up that compiles the shapes; each timing is the median of ``--repeats``. The ratio shows
what concurrency buys when the server batches concurrent requests into one decode. The cache
path: the same requests answered from a filled persistent cache (no request is sent), and the
time a fresh client takes to open that cache.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time


def _tiny_engine(max_seq_len: int):
    from eurollm_jax import create_model, get_preset
    from eurollm_jax.inference import Engine
    from eurollm_jax.tokenizer import ByteTokenizer

    tok = ByteTokenizer()
    cfg = get_preset("tiny", vocab_size=tok.vocab_size, d_model=64, num_layers=2, num_heads=4,
                     num_kv_heads=2, head_dim=16, ffn_dim=128, compute_dtype="float32",
                     max_seq_len=max_seq_len)
    return Engine(create_model(cfg, seed=0), tok)


def _conversations(n: int, offset: int = 0):
    return [[{"role": "user", "content": f"Request {offset + i}: write a short sentence about "
                                         f"the number {offset + i}."}] for i in range(n)]


def _rate(fn, n: int, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        results = fn()
        times.append(time.perf_counter() - t0)
        bad = [r.error for r in results if r.error]
        if bad:
            raise RuntimeError(f"{len(bad)} requests failed, e.g. {bad[0]}")
    return n / statistics.median(times), times


def run(requests: int = 64, max_tokens: int = 16, repeats: int = 3,
        batching: str = "continuous", concurrencies=(1, 16)) -> dict:
    from eurollm_jax.inference.server import ServerConfig, running_server
    from eurollm_jax.llm import LLMClient

    engine = _tiny_engine(max_seq_len=512)
    config = ServerConfig(model_name="tiny", max_batch_size=max(concurrencies),
                          batching=batching)
    convs = _conversations(requests)
    out: dict = {"requests": requests, "max_tokens": max_tokens, "repeats": repeats,
                 "batching": batching, "model": "tiny random (2 layers, d_model 64, bytes)"}
    with running_server(engine, config) as url:
        for c in concurrencies:
            client = LLMClient.from_endpoint(url, "tiny", concurrency=c, max_retries=0)
            client.chat(_conversations(max(c, 4), offset=10_000), max_tokens=max_tokens)  # warm-up
            rate, times = _rate(lambda: client.chat(convs, max_tokens=max_tokens), requests,
                                repeats)
            out[f"concurrency_{c}"] = {"requests_per_s": round(rate, 2),
                                       "seconds": [round(t, 3) for t in times]}
            client.close()
        lo, hi = min(concurrencies), max(concurrencies)
        out["ratio"] = round(out[f"concurrency_{hi}"]["requests_per_s"]
                             / out[f"concurrency_{lo}"]["requests_per_s"], 2)
        with tempfile.TemporaryDirectory() as cache_dir:
            filler = LLMClient.from_endpoint(url, "tiny", concurrency=hi, cache_dir=cache_dir)
            filler.chat(convs, max_tokens=max_tokens)
            filler.close()
            t0 = time.perf_counter()
            cached = LLMClient.from_endpoint(url, "tiny", cache_dir=cache_dir)
            open_s = time.perf_counter() - t0
            rate, times = _rate(lambda: cached.chat(convs, max_tokens=max_tokens), requests,
                                repeats)
            assert cached.usage["requests"] == 0, "the cache path sent requests"
            out["cache_hit"] = {"requests_per_s": round(rate, 1),
                                "seconds": [round(t, 5) for t in times],
                                "open_cache_s": round(open_s, 4), "sent": 0}
            cached.close()
    return out


def main(argv=None) -> int:
    """``argv[0]`` is the program name (``launch.bench`` passes "launch.bench synthesis")."""
    import sys

    argv = list(sys.argv if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m launch.bench synthesis",
                                description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=64)
    p.add_argument("--max_tokens", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batching", choices=("continuous", "static"), default="continuous")
    p.add_argument("--json", default="", help="also write the result here")
    args = p.parse_args(argv[1:])
    result = run(args.requests, args.max_tokens, args.repeats, args.batching)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        from eurollm_jax.fileio import write_text

        write_text(args.json, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
