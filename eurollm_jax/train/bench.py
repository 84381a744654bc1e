"""``python -m launch.bench train_step --config=configs/tiny.py [--peer=hf] [--steps=20]``

Times the full jitted train step (forward, backward, clipping, AdamW, donation) on the
config's shapes and reports median step time, tokens/s and MFU (on known accelerators).
``--peer=hf`` also trains transformers' ``LlamaForCausalLM`` with ``torch.optim.AdamW``
(same shapes, same clipping, fp32 on CPU, or bf16 autocast with ``--peer_bf16``) in the
same call and prints the ratio; ``--peer=plain`` trains the plain JAX yardstick
(``eurollm_jax.model.plain_reference``: the same model as a bare function, with optax
clipping + AdamW, donated), which says what our step's generality costs over XLA's own
speed; ``--peer=all`` runs both. Steps of every implementation are interleaved. Any config
key can be overridden: ``--config.train.batch_size=8``.
"""

from __future__ import annotations

import statistics
import sys
import time

from absl import flags
from ml_collections import config_flags


def _flags(argv):
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config", "configs/tiny.py", "job config", flag_values=fv, sys_argv=list(argv)
    )
    flags.DEFINE_enum(
        "peer", "none", ["none", "hf", "plain", "all"], "also time peer implementations",
        flag_values=fv,
    )
    flags.DEFINE_integer("steps", 20, "timed steps", flag_values=fv)
    flags.DEFINE_integer("warmup", 3, "untimed steps (after compilation)", flag_values=fv)
    flags.DEFINE_bool("peer_bf16", False, "torch peer under bf16 autocast", flag_values=fv)
    flags.DEFINE_bool(
        "fast_compile", False, "XLA's cheapest pipeline (smoke tests; slower steps)", flag_values=fv
    )
    return fv


def make_jax_step(config):
    """(run one step and wait for it, info) for the jitted train step of ``config``."""
    import jax

    from eurollm_jax.parallel import batch_sharding
    from eurollm_jax.parallel.hardware import mfu
    from eurollm_jax.train.data import make_iterator
    from eurollm_jax.train.loop import build_job
    from eurollm_jax.train.state import init_state

    job = build_job(config)
    state = init_state(job.model_cfg, job.tx, job.mesh, job.spec, seed=0)
    fn = job.jitted_train_step()
    sh = batch_sharding(job.mesh, 2)
    it = make_iterator(config)
    batches = [{k: jax.device_put(v, sh) for k, v in next(it).items()} for _ in range(4)]
    box = {"state": state, "i": 0}

    def step():
        with jax.set_mesh(job.mesh):
            box["state"], m = fn(box["state"], batches[box["i"] % 4])
            box["i"] += 1
            return float(jax.block_until_ready(m)["loss"])

    t0 = time.perf_counter()
    step()
    compile_s = time.perf_counter() - t0
    flops = job.model_cfg.train_flops_per_token(int(config.train.seq_len))

    def mfu_of(tokens_per_s):
        return mfu(flops, tokens_per_s, jax.devices()[0].device_kind, len(job.mesh.devices.flat))

    return step, {
        "compile_s": compile_s,
        "device": jax.devices()[0].device_kind,
        "devices": len(job.mesh.devices.flat),
        "params": job.model_cfg.param_count(),
        "mfu": mfu_of,
    }


def make_hf_step(config, bf16: bool = False):
    """(run one step, info): transformers LlamaForCausalLM + torch AdamW, same shapes and batch."""
    import contextlib

    import numpy as np
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from eurollm_jax.train.data import make_iterator
    from eurollm_jax.train.validate import model_config

    mcfg = model_config(config)
    hf = mcfg.to_hf_config()
    hf.pop("torch_dtype", None)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**hf, attn_implementation="sdpa")).train()
    o = config.optimizer
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=float(o.lr),
        betas=(float(o.b1), float(o.b2)),
        eps=float(o.eps),
        weight_decay=float(o.weight_decay),
    )
    it = make_iterator(config)
    batches = [torch.from_numpy(np.asarray(next(it)["tokens"], np.int64)) for _ in range(4)]
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    box = {"i": 0}

    def step():
        ids = batches[box["i"] % 4]
        box["i"] += 1
        with autocast:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(o.clip_norm))
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step, {"threads": torch.get_num_threads()}


def make_plain_step(config):
    """(run one step, info): the plain JAX yardstick (``plain_reference.plain_loss``) with
    optax global-norm clipping + AdamW on the same batches, params and state donated."""
    import jax
    import optax
    from flax import nnx

    from eurollm_jax.model import create_model
    from eurollm_jax.model.plain_reference import plain_loss
    from eurollm_jax.train.data import make_iterator
    from eurollm_jax.train.validate import model_config

    mcfg = model_config(config)
    params = nnx.to_pure_dict(nnx.state(create_model(mcfg, seed=0), nnx.Param))
    o = config.optimizer
    tx = optax.chain(
        optax.clip_by_global_norm(float(o.clip_norm)),
        optax.adamw(float(o.lr), b1=float(o.b1), b2=float(o.b2), eps=float(o.eps),
                    weight_decay=float(o.weight_decay)),
    )

    def update(params, opt_state, tokens):
        loss, grads = jax.value_and_grad(plain_loss)(params, tokens, mcfg)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    update = jax.jit(update, donate_argnums=(0, 1))
    it = make_iterator(config)
    batches = [jax.numpy.asarray(next(it)["tokens"]) for _ in range(4)]
    box = {"params": params, "opt": tx.init(params), "i": 0}

    def step():
        box["params"], box["opt"], loss = update(box["params"], box["opt"], batches[box["i"] % 4])
        box["i"] += 1
        return float(jax.block_until_ready(loss))

    return step, {}


def _timed(step) -> float:
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def main(argv) -> int:
    fv = _flags(argv)
    fv(list(argv))
    config = fv["config"].value
    if fv["fast_compile"].value:
        config.train.compiler_options = {
            "xla_backend_optimization_level": 0,
            "xla_llvm_disable_expensive_passes": True,
        }
    t = config.train
    print(
        f"train_step: model d_model={config.model.d_model} layers={config.model.num_layers} "
        f"heads={config.model.num_heads}/{config.model.num_kv_heads} ffn={config.model.ffn_dim} "
        f"vocab={config.model.vocab_size} compute={config.model.compute_dtype}; "
        f"batch {t.batch_size} x "
        f"{t.seq_len}, {t.micro_batches} micro-batch(es); median of {fv['steps'].value} steps",
        flush=True,
    )
    tokens = int(t.batch_size) * int(t.seq_len)
    jax_step, jx = make_jax_step(config)
    which = fv["peer"].value
    peers = {}  # label -> (step, short name for the ratio, detail)
    if which in ("hf", "all"):
        hf_step, pr = make_hf_step(config, fv["peer_bf16"].value)
        bf16 = " (bf16 autocast)" if fv["peer_bf16"].value else ""
        peers[f"transformers+torch AdamW{bf16}"] = (
            hf_step, "transformers", f"  ({pr['threads']} torch threads)")
    if which in ("plain", "all"):
        plain_step, _ = make_plain_step(config)
        peers["plain JAX step"] = (plain_step, "plain JAX step", "  (optax clipping + AdamW)")
    for _ in range(fv["warmup"].value):
        jax_step()
        for peer_step, _, _ in peers.values():
            peer_step()
    # Interleaved: every implementation sees the same machine load (shared CPUs are noisy).
    times = {"eurollm_jax": [], **{name: [] for name in peers}}
    for _ in range(fv["steps"].value):
        times["eurollm_jax"].append(_timed(jax_step))
        for name, (peer_step, _, _) in peers.items():
            times[name].append(_timed(peer_step))
    jmed = statistics.median(times["eurollm_jax"])
    line = (
        f"eurollm_jax: {jmed * 1e3:8.1f} ms/step  {tokens / jmed:10,.0f} tokens/s  "
        f"({jx['devices']} x {jx['device']}, compile {jx['compile_s']:.1f} s)"
    )
    u = jx["mfu"](tokens / jmed)
    if u is not None:
        line += f"  MFU {100 * u:.1f}%"
    print(line, flush=True)
    for name, (_, short, detail) in peers.items():
        pmed = statistics.median(times[name])
        print(f"{name}: {pmed * 1e3:8.1f} ms/step  {tokens / pmed:10,.0f} tokens/s{detail}",
              flush=True)
        print(f"ratio eurollm_jax / {short}: {pmed / jmed:.2f}x (medians, interleaved steps)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
