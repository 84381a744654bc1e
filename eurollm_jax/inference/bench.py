"""Decode benchmark: ``python -m launch.bench decode [flags]``.

Greedy generation of ``--new_tokens`` tokens for ``--batch`` prompts of ``--prompt_len``
tokens (EOS ignored, so every row makes every token), timed end to end (prefill +
decode + host work) after one warm-up call that compiles; the timed runs of the two
implementations alternate so that both see the same machine load. New tokens/s = batch x
new_tokens / seconds; the median over ``--repeats`` runs is reported next to the
same measurement for transformers' ``generate`` on a ``LlamaForCausalLM`` of the same
shape and dtype (random weights; ``--no_peer`` skips it), with the ratio.

Shapes: ``--shape cpu`` (the CPU anchor of docs/performance.md: the "tiny" preset, d_model
256, 4 layers, vocab 8000, bf16, batch 8, prompt 64, 64 new tokens) and ``--shape 1.7b`` (EuroLLM-1.7B,
prompt 512, 256 new tokens, batch 64: the GPU goal). Flags override any field.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from eurollm_jax.fileio import write_json

SHAPES = {
    "cpu": dict(preset="tiny", batch=8, prompt_len=64, new_tokens=64),
    "1.7b": dict(preset="eurollm-1.7b", batch=64, prompt_len=512, new_tokens=256),
}


def _rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"


def _parse(argv):
    p = argparse.ArgumentParser(
        prog=argv[0] if argv else "launch.bench decode",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--shape", choices=sorted(SHAPES), default="cpu")
    p.add_argument("--batch", type=int)
    p.add_argument("--prompt_len", type=int)
    p.add_argument("--new_tokens", type=int)
    p.add_argument(
        "--dtype",
        default="bfloat16",
        choices=("bfloat16", "float32"),
        help="weights and compute dtype for both implementations",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no_peer", action="store_true", help="skip transformers")
    p.add_argument("--peer_only", action="store_true", help="only run transformers")
    p.add_argument(
        "--mesh", default=None, help='mesh shape "data,fsdp,tensor" (default one device)'
    )
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--torch_threads", type=int, default=None, help="torch CPU threads (default: torch's)"
    )
    args = p.parse_args(argv[1:])
    for k, v in SHAPES[args.shape].items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    return args


def setup_jax(args, cfg, prompts):
    """(name, run) for eurollm_jax's Engine."""
    import jax

    from eurollm_jax.inference import Engine, SamplingParams
    from eurollm_jax.inference.loading import parse_mesh
    from eurollm_jax.model import create_model

    mesh = parse_mesh(args.mesh)
    model = create_model(cfg, mesh=mesh, seed=args.seed)
    engine = Engine(model)
    sampling = [SamplingParams(max_new_tokens=args.new_tokens, ignore_eos=True)] * len(prompts)

    def run():
        outs = engine.generate_ids(prompts, sampling)
        assert all(len(o) == args.new_tokens for o in outs), [len(o) for o in outs]

    return f"eurollm_jax (jax {jax.__version__}, {jax.devices()[0].platform})", run


def setup_transformers(args, cfg, prompts):
    """(name, run) for transformers' generate on a LlamaForCausalLM of the same shape."""
    import torch
    import transformers

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    hf_cfg = transformers.LlamaConfig(
        **{
            k: v
            for k, v in cfg.to_hf_config().items()
            if k not in ("architectures", "torch_dtype", "model_type")
        }
    )
    torch.manual_seed(args.seed)
    with torch.device(device):
        model = transformers.LlamaForCausalLM(hf_cfg).to(dtype).eval()
    ids = torch.tensor(prompts, device=device)
    mask = torch.ones_like(ids)

    def run():
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=mask,
                max_new_tokens=args.new_tokens,
                min_new_tokens=args.new_tokens,
                do_sample=False,
                pad_token_id=0,
            )
        if device == "cuda":
            torch.cuda.synchronize()
        assert out.shape[1] == ids.shape[1] + args.new_tokens

    name = (
        f"transformers {transformers.__version__} generate (torch {torch.__version__}, "
        f"{device}, {torch.get_num_threads()} threads)"
    )
    return name, run


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    args = _parse(argv)
    # both frameworks share one GPU: keep JAX from preallocating most of its memory
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.45")
    import numpy as np

    from eurollm_jax.model import get_preset

    cfg = get_preset(SHAPES[args.shape]["preset"], compute_dtype=args.dtype, param_dtype=args.dtype)
    if cfg.max_seq_len < args.prompt_len + args.new_tokens:
        cfg = cfg.replace(max_seq_len=args.prompt_len + args.new_tokens)
    rng = np.random.default_rng(args.seed)
    prompts = [
        [cfg.bos_token_id] + rng.integers(5, cfg.vocab_size, size=args.prompt_len - 1).tolist()
        for _ in range(args.batch)
    ]
    new_tokens = args.batch * args.new_tokens
    print(
        f"decode benchmark: {args.shape} shape ({cfg.param_count() / 1e6:.1f}M params, "
        f"d_model {cfg.d_model}, {cfg.num_layers} layers), {args.dtype}, batch {args.batch}, "
        f"prompt {args.prompt_len}, {args.new_tokens} new tokens, median of {args.repeats}",
        flush=True,
    )
    setups = []
    if not args.peer_only:
        setups.append(setup_jax(args, cfg, prompts))
    if not args.no_peer:
        setups.append(setup_transformers(args, cfg, prompts))
    results = []
    for name, run in setups:  # warm-up (compilation) first, then interleaved timed runs
        t0 = time.perf_counter()
        run()
        results.append(
            {"impl": name, "compile_and_first_run_s": time.perf_counter() - t0, "runs_s": []}
        )
    for _ in range(args.repeats):
        for (name, run), r in zip(setups, results):
            t0 = time.perf_counter()
            run()
            r["runs_s"].append(time.perf_counter() - t0)
    for r in results:
        r["median_s"] = statistics.median(r["runs_s"])
        r["new_tokens_per_s"] = new_tokens / r["median_s"]
        runs = ", ".join(f"{x:.3f}" for x in r["runs_s"])
        print(
            f"  {r['impl']}: {_rate(r['new_tokens_per_s'])} new tokens/s "
            f"(median {r['median_s']:.3f} s, runs {runs}; "
            f"first call {r['compile_and_first_run_s']:.1f} s)"
        )
    summary = {
        "shape": args.shape,
        "batch": args.batch,
        "prompt_len": args.prompt_len,
        "new_tokens": args.new_tokens,
        "dtype": args.dtype,
        "results": results,
    }
    if len(results) == 2:
        ratio = results[0]["new_tokens_per_s"] / results[1]["new_tokens_per_s"]
        summary["ratio_jax_over_transformers"] = ratio
        print(f"  ratio eurollm_jax / transformers: {ratio:.2f}x")
    if args.json:
        write_json(args.json, summary, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
