"""``python -m launch.bench forward``: forward+backward throughput of the model.

Times ``value_and_grad`` of the next-token loss on random tokens on the present devices
(data/fsdp/tensor mesh from the config), reports tokens/s and MFU (where the device has
a known peak), and with ``--peer=hf`` times transformers' LlamaForCausalLM (torch, CPU)
on the same shapes in the same process and prints the ratio. ``--peer=plain`` times the
plain JAX yardstick (``plain_reference``: the same model as a bare function, same weights
and tokens, interleaved with ours), the measure of what the model's generality costs on
top of XLA; ``--peer=all`` runs both. Medians over ``--iters``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from eurollm_jax.model.config import ModelConfig, get_preset
from eurollm_jax.model.factory import create_model
from eurollm_jax.parallel.hardware import peak_flops
from eurollm_jax.parallel.mesh import create_mesh
from eurollm_jax.parallel.rules import batch_sharding


def model_config_from_args(config_path: str | None, preset: str | None, overrides: list[str]) -> ModelConfig:
    """ModelConfig from an ml_collections config file's ``model`` section or a preset name,
    with ``key=value`` overrides (values parsed as Python literals when possible)."""
    import ast

    if config_path:
        import importlib.util

        spec = importlib.util.spec_from_file_location("bench_config", config_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        values = dict(module.get_config().model.to_dict())
    else:
        values = get_preset(preset or "tiny").to_dict()
    for item in overrides:
        key, _, raw = item.partition("=")
        key = key.removeprefix("model.")
        try:
            values[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            values[key] = raw
    return ModelConfig.from_dict(values)


def _interleaved_times(fns, iters: int, warmup: int = 2) -> list[list[float]]:
    """Seconds of each call of each of ``fns``, called in turn (so that all see the same
    machine load), after ``warmup`` untimed rounds."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(iters):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return times


def _median_time(fn, iters: int, warmup: int = 2) -> float:
    return statistics.median(_interleaved_times([fn], iters, warmup)[0])


def time_jax(cfg: ModelConfig, batch: int, seq: int, iters: int, mesh_shape=(1, -1, 1),
             plain: bool = False) -> dict:
    """Ours (and with ``plain`` the plain JAX yardstick on the same params and tokens, the
    two interleaved call by call so that both see the same machine load)."""
    from eurollm_jax.model.plain_reference import plain_loss

    mesh = create_mesh(mesh_shape)
    model = create_model(cfg, mesh=mesh)
    graphdef, params = nnx.split(model, nnx.Param)
    rng = np.random.RandomState(0)
    tokens = jax.device_put(
        jnp.asarray(rng.randint(0, cfg.vocab_size, (batch, seq + 1)), jnp.int32), batch_sharding(mesh, 2)
    )

    def loss_fn(params, tokens):
        logits = nnx.merge(graphdef, params)(tokens[:, :-1])
        target = jnp.take_along_axis(logits, tokens[:, 1:, None], axis=-1)[..., 0]
        return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - target)  # cross-entropy, as torch's

    with jax.set_mesh(mesh):
        step = jax.jit(jax.value_and_grad(loss_fn))
        t0 = time.perf_counter()
        jax.block_until_ready(step(params, tokens))
        compile_s = time.perf_counter() - t0
        fns = [lambda: jax.block_until_ready(step(params, tokens))]
        if plain:
            pure = nnx.to_pure_dict(params)
            plain_step = jax.jit(jax.value_and_grad(lambda p, t: plain_loss(p, t, cfg)))
            jax.block_until_ready(plain_step(pure, tokens))
            fns.append(lambda: jax.block_until_ready(plain_step(pure, tokens)))
        times = _interleaved_times(fns, iters)
        seconds = statistics.median(times[0])
    tokens_per_s = batch * seq / seconds
    peak = peak_flops(jax.devices()[0].device_kind)
    flops = cfg.train_flops_per_token(seq) * tokens_per_s
    out = {
        "tokens_per_s": tokens_per_s,
        "step_s": seconds,
        "compile_s": compile_s,
        "mfu": flops / (peak * jax.device_count()) if peak else None,
    }
    if plain:
        out["plain_step_s"] = statistics.median(times[1])
        out["plain_tokens_per_s"] = batch * seq / out["plain_step_s"]
    return out


def time_hf(cfg: ModelConfig, batch: int, seq: int, iters: int) -> dict:
    import torch
    import transformers

    hf_config = transformers.LlamaConfig(**{
        k: v for k, v in cfg.to_hf_config().items() if k not in ("architectures", "model_type", "torch_dtype")
    })
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(hf_config)
    model.train()
    tokens = torch.randint(0, cfg.vocab_size, (batch, seq + 1))
    autocast = cfg.compute_dtype == "bfloat16"

    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = model(tokens[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, cfg.vocab_size), tokens[:, 1:].reshape(-1))
        loss.backward()

    seconds = _median_time(step, iters)
    return {"tokens_per_s": batch * seq / seconds, "step_s": seconds, "threads": torch.get_num_threads()}


def main(argv):
    parser = argparse.ArgumentParser(prog=argv[0], description=__doc__)
    parser.add_argument("--config", default=None, help="ml_collections config file (its model section)")
    parser.add_argument("--preset", default="tiny", help="model preset when --config is not given")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--mesh", default="1,-1,1", help="data,fsdp,tensor")
    parser.add_argument("--peer", choices=["none", "hf", "plain", "all"], default="none")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="model field override, e.g. --set compute_dtype=float32")
    args = parser.parse_args(argv[1:])
    cfg = model_config_from_args(args.config, args.preset, args.set)
    mesh_shape = tuple(int(x) for x in args.mesh.split(","))
    print(f"model: {cfg.param_count() / 1e6:.2f}M params, d_model={cfg.d_model}, layers={cfg.num_layers}, "
          f"compute={cfg.compute_dtype}, params={cfg.param_dtype}, remat={cfg.remat_policy}; "
          f"batch {args.batch} x {args.seq}; devices: {jax.device_count()} x {jax.devices()[0].device_kind}")
    ours = time_jax(cfg, args.batch, args.seq, args.iters, mesh_shape,
                    plain=args.peer in ("plain", "all"))
    mfu = f", MFU {100 * ours['mfu']:.1f}%" if ours["mfu"] is not None else ""
    print(f"eurollm_jax forward+backward: {ours['tokens_per_s']:,.0f} tokens/s "
          f"(median step {1e3 * ours['step_s']:.1f} ms, compile {ours['compile_s']:.1f} s{mfu})")
    if "plain_step_s" in ours:
        print(f"plain JAX yardstick forward+backward: {ours['plain_tokens_per_s']:,.0f} tokens/s "
              f"(median step {1e3 * ours['plain_step_s']:.1f} ms, interleaved with ours)")
        print(f"ratio eurollm_jax / plain JAX: {ours['tokens_per_s'] / ours['plain_tokens_per_s']:.2f}x")
    if args.peer in ("hf", "all"):
        peer = time_hf(cfg, args.batch, args.seq, args.iters)
        print(f"transformers LlamaForCausalLM (torch {peer['threads']} threads): "
              f"{peer['tokens_per_s']:,.0f} tokens/s (median step {1e3 * peer['step_s']:.1f} ms)")
        print(f"ratio eurollm_jax / transformers: {ours['tokens_per_s'] / peer['tokens_per_s']:.2f}x")
    return 0
