"""``python -m launch.bench train_step --config=configs/tiny.py [--peer=hf] [--steps=20]``

Times the full jitted train step (forward, backward, clipping, AdamW, donation) on the
config's shapes and reports median step time, tokens/s and MFU (on known accelerators).
``--peer=hf`` also trains transformers' ``LlamaForCausalLM`` with ``torch.optim.AdamW``
(same shapes, same clipping, fp32 on CPU, or bf16 autocast with ``--peer_bf16``) in the
same call and prints the ratio. Any config key can be overridden: ``--config.train.batch_size=8``.
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
        "peer", "none", ["none", "hf"], "also time a peer implementation", flag_values=fv
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
    peer = fv["peer"].value == "hf"
    if peer:
        hf_step, pr = make_hf_step(config, fv["peer_bf16"].value)
    for _ in range(fv["warmup"].value):
        jax_step()
        if peer:
            hf_step()
    # Interleaved: both implementations see the same machine load (shared CPUs are noisy).
    jt, ht = [], []
    for _ in range(fv["steps"].value):
        jt.append(_timed(jax_step))
        if peer:
            ht.append(_timed(hf_step))
    jmed = statistics.median(jt)
    line = (
        f"eurollm_jax: {jmed * 1e3:8.1f} ms/step  {tokens / jmed:10,.0f} tokens/s  "
        f"({jx['devices']} x {jx['device']}, compile {jx['compile_s']:.1f} s)"
    )
    u = jx["mfu"](tokens / jmed)
    if u is not None:
        line += f"  MFU {100 * u:.1f}%"
    print(line, flush=True)
    if peer:
        hmed = statistics.median(ht)
        print(
            f"transformers+torch AdamW{' (bf16 autocast)' if fv['peer_bf16'].value else ''}: "
            f"{hmed * 1e3:8.1f} ms/step  {tokens / hmed:10,.0f} tokens/s  "
            f"({pr['threads']} torch threads)",
            flush=True,
        )
        print(
            f"ratio eurollm_jax / transformers: {hmed / jmed:.2f}x (medians, interleaved steps)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
