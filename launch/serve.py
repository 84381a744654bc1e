"""OpenAI-compatible server: ``python -m launch.serve --checkpoint DIR [flags]``.

Serves /v1/completions, /v1/chat/completions (streaming or not), /v1/models, /health and
/metrics on 127.0.0.1:8000 by default, with continuous batching (docs/serving.md).
DIR is a Hugging Face checkpoint directory (config.json + safetensors, tokenizer.model) or
an Orbax params directory (then pass --tokenizer). All logic lives in
``eurollm_jax.inference.server``; this file only parses flags.

Model overrides: --compute_dtype, --param_dtype, --attention_impl, --max_length (the
model's max_seq_len: the longest prompt + completion served) and --override KEY=VALUE for
any other load-time ModelConfig field (``loading.LOAD_TIME_FIELDS``; with --preset any
field). Unknown or checkpoint-fixed keys stop the server before it loads anything.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m launch.serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="HF checkpoint dir or Orbax params dir")
    src.add_argument("--preset", help="random weights of a model preset (smoke tests only)")
    p.add_argument("--tokenizer", help="tokenizer.model (default: the one in --checkpoint)")
    p.add_argument(
        "--host", default="127.0.0.1", help="bind address (default 127.0.0.1: local only)"
    )
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--model_name", default="eurollm", help="the model id clients send and /v1/models lists"
    )
    p.add_argument("--mesh", default=None, help='mesh shape "data,fsdp,tensor", e.g. "1,1,-1"')
    p.add_argument(
        "--compute_dtype", default=None, help="bfloat16 or float32 (default: the checkpoint's)"
    )
    p.add_argument("--param_dtype", default="bfloat16")
    p.add_argument(
        "--attention_impl", default=None, help="auto, xla, cudnn or splash (default: auto)"
    )
    p.add_argument(
        "--max_length", type=int, default=None,
        help="context window: prompt + completion tokens (default: the checkpoint's)",
    )
    p.add_argument(
        "--override", action="append", default=[], metavar="KEY=VALUE",
        help="another ModelConfig field to set at load time (repeatable), e.g. scan_layers=false",
    )
    p.add_argument(
        "--max_batch_size", type=int, default=32,
        help="decode slots: sequences (prompts x n) generated at once",
    )
    p.add_argument(
        "--batching", default="continuous", choices=("continuous", "static"),
        help="continuous batching (default) or the older static batcher",
    )
    p.add_argument(
        "--batch_wait_ms", type=float, default=10.0,
        help="static batching: how long to gather concurrent requests",
    )
    p.add_argument("--decode_steps", type=int, default=4, help="decode steps per dispatch")
    p.add_argument(
        "--prefill_chunk", type=int, default=512, help="longer prompts prefill in chunks"
    )
    p.add_argument(
        "--prefix_cache_tokens", type=int, default=0,
        help="token budget of the prefix cache (0 = off), e.g. 65536",
    )
    p.add_argument("--prefix_block", type=int, default=64, help="prefix cache granularity")
    p.add_argument(
        "--api_key", default=None,
        help="require 'Authorization: Bearer KEY' on /v1/* (default: $EUROLLM_API_KEY if set)",
    )
    p.add_argument(
        "--warmup", action="store_true", help="compile every serving shape before listening"
    )
    p.add_argument("--max_body_bytes", type=int, default=1 << 20)
    p.add_argument("--max_tokens_limit", type=int, default=2048)
    p.add_argument("--max_queue", type=int, default=1024)
    p.add_argument(
        "--lenient_model_name", action="store_true", help="accept any model name in requests"
    )
    p.add_argument("--log_level", default="info")
    args = p.parse_args(argv)
    try:
        args.overrides = model_overrides(args)
    except ValueError as e:
        p.error(str(e))
    return args


def model_overrides(args) -> dict:
    """The ModelConfig overrides the flags ask for, validated (ValueError names the bad key)."""
    from eurollm_jax.inference.loading import check_model_overrides

    overrides = {}
    for item in args.override:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--override {item!r}: expected KEY=VALUE, e.g. scan_layers=false")
        overrides[key.strip()] = value
    for key, value in (("attention_impl", args.attention_impl), ("max_seq_len", args.max_length)):
        if value is not None:
            overrides[key] = value
    for key in ("compute_dtype", "param_dtype"):
        if key in overrides:
            raise ValueError(f"--override {key}=...: use the --{key} flag")
    return check_model_overrides(overrides, shapes_fixed=args.preset is None)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper())
    from eurollm_jax.inference import Engine, load_for_inference
    from eurollm_jax.inference.server import ServerConfig, serve

    model, tokenizer = load_for_inference(
        args.checkpoint,
        preset=args.preset,
        tokenizer=args.tokenizer,
        mesh=args.mesh,
        compute_dtype=args.compute_dtype,
        param_dtype=args.param_dtype,
        **args.overrides,
    )
    if tokenizer is None:
        raise SystemExit("no tokenizer: pass --tokenizer PATH/tokenizer.model")
    config = ServerConfig(
        model_name=args.model_name,
        max_batch_size=args.max_batch_size,
        batch_wait_s=args.batch_wait_ms / 1000.0,
        max_queue=args.max_queue,
        max_body_bytes=args.max_body_bytes,
        max_tokens_limit=args.max_tokens_limit,
        strict_model_name=not args.lenient_model_name,
        batching=args.batching,
        decode_steps=args.decode_steps,
        prefill_chunk=args.prefill_chunk,
        prefix_cache_tokens=args.prefix_cache_tokens,
        prefix_block=args.prefix_block,
        api_key=args.api_key or os.environ.get("EUROLLM_API_KEY") or None,
        warmup=args.warmup,
    )
    serve(
        Engine(model, tokenizer),
        host=args.host,
        port=args.port,
        config=config,
        log_level=args.log_level,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
