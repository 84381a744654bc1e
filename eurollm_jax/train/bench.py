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
    config_flags.DEFINE_config_file("config", "configs/tiny.py", "job config", flag_values=fv,
                                    sys_argv=list(argv))
    flags.DEFINE_enum("peer", "none", ["none", "hf"], "also time a peer implementation", flag_values=fv)
    flags.DEFINE_integer("steps", 20, "timed steps", flag_values=fv)
    flags.DEFINE_integer("warmup", 3, "untimed steps (after compilation)", flag_values=fv)
    flags.DEFINE_bool("peer_bf16", False, "torch peer under bf16 autocast", flag_values=fv)
    flags.DEFINE_bool("fast_compile", False, "XLA's cheapest pipeline (smoke tests; slower steps)",
                      flag_values=fv)
    return fv


def time_jax(config, steps: int, warmup: int) -> dict:
    import jax

    from eurollm_jax.parallel import batch_sharding
    from eurollm_jax.train.data import make_iterator
    from eurollm_jax.train.loop import build_job
    from eurollm_jax.train.metrics import mfu
    from eurollm_jax.train.state import init_state
    from eurollm_jax.train.step import jit_train_step, make_train_step

    job = build_job(config)
    state = init_state(job.model_cfg, job.tx, job.mesh, job.spec, seed=0, compiler_options=job.compiler_options)
    fn = jit_train_step(make_train_step(job.spec.graphdef, job.model_cfg, job.tx, job.schedule, job.step_opts),
                        job.spec, job.mesh, compiler_options=job.compiler_options)
    sh = batch_sharding(job.mesh, 2)
    it = make_iterator(config)
    batches = [{k: jax.device_put(v, sh) for k, v in next(it).items()} for _ in range(4)]
    with jax.set_mesh(job.mesh):
        t0 = time.perf_counter()
        state, m = fn(state, batches[0])
        jax.block_until_ready(m)
        compile_s = time.perf_counter() - t0
        for i in range(warmup):
            state, m = fn(state, batches[i % 4])
        jax.block_until_ready(m)
        times = []
        for i in range(steps):
            t0 = time.perf_counter()
            state, m = fn(state, batches[i % 4])
            jax.block_until_ready(m)
            times.append(time.perf_counter() - t0)
    tokens = int(config.train.batch_size) * int(config.train.seq_len)
    med = statistics.median(times)
    tps = tokens / med
    u = mfu(job.model_cfg.train_flops_per_token(int(config.train.seq_len)), tps,
            jax.devices()[0].device_kind, len(job.mesh.devices.flat))
    return {"step_s": med, "tokens_per_s": tps, "mfu": u, "compile_s": compile_s,
            "loss": float(m["loss"]), "device": jax.devices()[0].device_kind,
            "devices": len(job.mesh.devices.flat), "params": job.model_cfg.param_count()}


def time_hf(config, steps: int, warmup: int, bf16: bool = False) -> dict:
    """transformers LlamaForCausalLM + torch AdamW on the same shapes and batch."""
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
    opt = torch.optim.AdamW(model.parameters(), lr=float(o.lr), betas=(float(o.b1), float(o.b2)),
                            eps=float(o.eps), weight_decay=float(o.weight_decay))
    it = make_iterator(config)
    batches = [torch.from_numpy(np.asarray(next(it)["tokens"], np.int64)) for _ in range(4)]
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step(ids):
        with autocast:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(o.clip_norm))
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss)

    for i in range(warmup):
        step(batches[i % 4])
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        loss = step(batches[i % 4])
        times.append(time.perf_counter() - t0)
    tokens = int(config.train.batch_size) * int(config.train.seq_len)
    med = statistics.median(times)
    return {"step_s": med, "tokens_per_s": tokens / med, "loss": loss, "threads": torch.get_num_threads()}


def main(argv) -> int:
    fv = _flags(argv)
    fv(list(argv))
    config = fv["config"].value
    if fv["fast_compile"].value:
        config.train.compiler_options = {"xla_backend_optimization_level": 0,
                                         "xla_llvm_disable_expensive_passes": True}
    t = config.train
    print(f"train_step: model d_model={config.model.d_model} layers={config.model.num_layers} "
          f"heads={config.model.num_heads}/{config.model.num_kv_heads} ffn={config.model.ffn_dim} "
          f"vocab={config.model.vocab_size} compute={config.model.compute_dtype}; batch {t.batch_size} x "
          f"{t.seq_len}, {t.micro_batches} micro-batch(es); median of {fv['steps'].value} steps", flush=True)
    jx = time_jax(config, fv["steps"].value, fv["warmup"].value)
    line = (f"eurollm_jax: {jx['step_s'] * 1e3:8.1f} ms/step  {jx['tokens_per_s']:10,.0f} tokens/s  "
            f"({jx['devices']} x {jx['device']}, compile {jx['compile_s']:.1f} s)")
    if jx["mfu"] is not None:
        line += f"  MFU {100 * jx['mfu']:.1f}%"
    print(line, flush=True)
    if fv["peer"].value == "hf":
        pr = time_hf(config, fv["steps"].value, fv["warmup"].value, fv["peer_bf16"].value)
        print(f"transformers+torch AdamW{' (bf16 autocast)' if fv['peer_bf16'].value else ''}: "
              f"{pr['step_s'] * 1e3:8.1f} ms/step  {pr['tokens_per_s']:10,.0f} tokens/s  "
              f"({pr['threads']} torch threads)", flush=True)
        print(f"ratio eurollm_jax / transformers: {jx['tokens_per_s'] / pr['tokens_per_s']:.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
