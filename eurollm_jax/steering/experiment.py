"""The ExpertSteer experiment end to end: ``run_experiment(config)``.

1. Load the expert and the target (``inference.load_for_inference``: our params dirs or
   Hugging Face Llama-family dirs) and the concept data (``steering.data``).
2. Collect pooled residual states of both models on the same probe prompts, every layer
   (``steering.collect``, cached under ``<output_dir>/cache``), and the target's typical
   residual norm per layer.
3. Align: one affine auto-encoder per expert layer (d_expert -> d_target).
4. Pair: the MI matrix between aligned expert states and target states; the
   ``num_pairs`` lowest-MI pairs (``mi.npy``, ``mi.json``, ``mi.png``).
5. Vectors per pair: RFM on the expert side (bandwidth and ridge by validation AUC), mapped
   with W; the baselines' vectors on the target side (CAA, RFM on the target); each checked
   against a linear probe on the target's activations (``vectors.npz``, ``summary.json``).
6. Evaluate every method at every coefficient: multiple-choice accuracy (lm-eval backend or
   direct scoring) and generation (concept rate judged by a probe on the unsteered expert,
   fluency as the unsteered target's log-probability): ``results.jsonl``, ``results.md``
   (the steered-vs-unsteered table) and ``results.png``.

Rows are appended to ``results.jsonl`` as they finish; a rerun with the same vectors
(``summary.json``'s ``run_key``) skips the rows already there, so an interrupted sweep
loses no finished work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time

import numpy as np

from eurollm_jax.fileio import atomic_open, read_jsonl, write_json, write_text
from eurollm_jax.inference import Engine, load_for_inference
from eurollm_jax.steering import alignment, collect, data as data_lib, evaluation, mi, vectors
from eurollm_jax.steering.config import BYTE_TOKENIZER, SteerJobConfig
from eurollm_jax.steering.rfm import roc_auc, select_rfm

logger = logging.getLogger(__name__)


def load_engine(source) -> Engine:
    """An ``Engine`` for one ``ModelSource``."""
    tok_path = source.tokenizer if source.tokenizer not in ("", BYTE_TOKENIZER) else None
    model, tok = load_for_inference(
        source.path or None, preset=source.preset or None, tokenizer=tok_path,
        compute_dtype=source.compute_dtype,
    )
    if source.tokenizer == BYTE_TOKENIZER:
        from eurollm_jax.tokenizer import ByteTokenizer

        tok = ByteTokenizer()
    if tok is None:
        raise ValueError(
            f"no tokenizer for {source.path or source.preset}: put tokenizer.model next to the "
            f"weights, give tokenizer=<path>, or tokenizer=byte for byte-level checkpoints"
        )
    return Engine(model, tok)


def _layers(wanted, num_layers, name):
    layers = list(range(num_layers)) if not wanted else [int(x) % num_layers for x in wanted]
    bad = [x for x in (wanted or []) if not -num_layers <= int(x) < num_layers]
    if bad:
        raise ValueError(f"pairing.{name} {bad} out of range for a {num_layers}-layer model")
    return sorted(set(layers))


def _split(n, val_fraction, seed):
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(2, int(round(val_fraction * n)))
    return order[n_val:], order[:n_val]


def _fit_rfm(H, y, train_idx, val_idx, cfg):
    # both classes in each split (the probe set is balanced and shuffled)
    model, scores = select_rfm(
        H[train_idx], y[train_idx], H[val_idx], y[val_idx],
        bandwidths=cfg.bandwidths, regs=cfg.regs, iters=cfg.iters, center_grads=cfg.center_grads,
    )
    return model, scores


def _markdown_table(rows) -> str:
    cols = ["method", "eps", "mc_acc", "gen_concept_rate", "gen_concept_prob",
            "gen_logprob_per_token"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append(f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_results(path, rows) -> str:
    """Accuracy and concept rate against the coefficient, one line per method (the
    unsteered value drawn as a horizontal line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("mc_acc", "multiple-choice accuracy"), ("gen_concept_rate", "generation concept rate")]
    metrics = [m for m in metrics if any(r.get(m[0]) is not None for r in rows)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    base = next((r for r in rows if r["method"] == "none"), None)
    for ax, (key, label) in zip(axes[0], metrics):
        for method in dict.fromkeys(r["method"] for r in rows):
            if method == "none":
                continue
            pts = sorted((r["eps"], r[key]) for r in rows if r["method"] == method)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
        if base is not None and base.get(key) is not None:
            ax.axhline(base[key], color="gray", ls="--", label="none")
        ax.set_xlabel("eps (x typical residual norm)")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_open(path, "wb", encoding=None) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path


def run_experiment(config, *, progress=print) -> dict:
    """Run the whole experiment (module docstring); returns the summary (also written)."""
    job = config if isinstance(config, SteerJobConfig) else SteerJobConfig.from_mapping(config)
    out = os.path.abspath(job.output_dir)
    os.makedirs(out, exist_ok=True)
    cache = os.path.join(out, "cache") if job.collect.cache else None
    t0 = time.perf_counter()

    c = job.concept
    probe_data = data_lib.read_labelled(c.probe_file, label_field=c.label_field,
                                        positive=c.positive, text_field=c.text_field)
    eval_data = data_lib.read_labelled(c.eval_file, label_field=c.label_field,
                                       positive=c.positive, text_field=c.text_field)
    prompts, y = data_lib.probe_set(probe_data, prefix_chars=c.prefix_chars,
                                    max_per_class=c.max_probe, seed=job.seed)
    e = job.evaluation
    items = data_lib.mc_items(eval_data, num_items=e.mc_items, num_choices=e.mc_choices,
                              chars=e.mc_chars, seed=job.seed)
    gen_prompts = (data_lib.generation_prompts(eval_data, num_prompts=e.gen_prompts,
                                               chars=e.gen_prompt_chars, seed=job.seed)
                   if e.gen_prompts else [])
    progress(f"[steer] {len(prompts)} probe prompts ({int(y.sum())} concept), "
             f"{len(items)} MC items, {len(gen_prompts)} generation prompts")

    expert, target = load_engine(job.expert), load_engine(job.target)
    e_layers = _layers(job.pairing.expert_layers, expert.cfg.num_layers, "expert_layers")
    t_layers = _layers(job.pairing.target_layers, target.cfg.num_layers, "target_layers")
    col = job.collect
    H_e = collect.collect_states(expert, prompts, pooling=col.pooling, cache_dir=cache,
                                 max_batch_tokens=col.max_batch_tokens)
    H_t = collect.collect_states(target, prompts, pooling=col.pooling, cache_dir=cache,
                                 max_batch_tokens=col.max_batch_tokens)
    norms = collect.collect_residual_norms(target, prompts, cache_dir=cache)
    progress(f"[steer] states: expert {H_e.shape}, target {H_t.shape} "
             f"({time.perf_counter() - t0:.1f}s)")

    # 3. alignment, one auto-encoder per expert layer
    d_t = target.cfg.d_model
    aes = {i: alignment.fit_autoencoder(H_e[:, i], d_t, steps=job.align.steps,
                                        learning_rate=job.align.learning_rate, seed=job.seed)
           for i in e_layers}
    # 4. pairing by MI
    kwargs = {"dims": job.pairing.dims}
    if job.pairing.estimator == "knn":
        kwargs["k"] = job.pairing.knn_k
    matrix, _, _ = mi.mi_matrix({i: aes[i].encode(H_e[:, i]) for i in e_layers},
                                {j: H_t[:, j] for j in t_layers},
                                estimator=job.pairing.estimator, **kwargs)
    pairs = mi.lowest_mi_pairs(matrix, e_layers, t_layers, min(job.pairing.num_pairs, len(t_layers)))
    np.save(os.path.join(out, "mi.npy"), matrix)
    write_json(os.path.join(out, "mi.json"), {
        "estimator": job.pairing.estimator, "expert_layers": e_layers, "target_layers": t_layers,
        "matrix": matrix.tolist(), "pairs": pairs})
    mi.plot_mi_matrix(os.path.join(out, "mi.png"), matrix, e_layers, t_layers, pairs,
                      title=f"MI ({job.pairing.estimator}), lowest = chosen")
    progress(f"[steer] pairs (expert, target) by lowest MI: {pairs}")

    # 5. vectors per pair, checked with a probe on the target's activations
    train_idx, val_idx = _split(len(prompts), c.val_fraction, job.seed)
    methods = job.steer.methods
    per_method: dict[str, dict[int, np.ndarray]] = {m: {} for m in methods if m != "none"}
    pair_info = []
    for i, j in pairs:
        Ht_j, He_i = H_t[:, j], H_e[:, i]
        probe = alignment.fit_linear_probe(Ht_j[train_idx], y[train_idx])
        info = {"expert_layer": i, "target_layer": j, "mi": float(matrix[e_layers.index(i),
                t_layers.index(j)]), "target_norm": float(norms[j]),
                "ae_relative_error": aes[i].relative_error,
                "probe_val_auc": roc_auc(probe.logits(Ht_j[val_idx]), y[val_idx]), "checks": {}}
        rfm_e, scores_e = _fit_rfm(He_i, y, train_idx, val_idx, job.rfm)
        info["expert_rfm"] = {"bandwidth": rfm_e.bandwidth, "selection": scores_e,
                              "direction_auc_on_expert": roc_auc(He_i @ rfm_e.direction, y)}
        candidates = {}
        if "expertsteer" in per_method:
            candidates["expertsteer"] = vectors.expert_vector(rfm_e, aes[i])
        if "expertsteer_paired" in per_method:
            ae_p = alignment.fit_autoencoder(
                He_i[train_idx], d_t, steps=job.align.steps, learning_rate=job.align.learning_rate,
                seed=job.seed, paired_target=Ht_j[train_idx], paired_weight=job.align.paired_weight)
            candidates["expertsteer_paired"] = vectors.expert_vector(rfm_e, ae_p)
            info["paired_ae_relative_error"] = ae_p.relative_error
        if "caa" in per_method:
            candidates["caa"] = vectors.caa_vector(Ht_j[train_idx], y[train_idx])
        if "rfm_target" in per_method:
            rfm_t, scores_t = _fit_rfm(Ht_j, y, train_idx, val_idx, job.rfm)
            candidates["rfm_target"] = rfm_t.direction
            info["target_rfm"] = {"bandwidth": rfm_t.bandwidth, "selection": scores_t}
        for name, v in candidates.items():
            per_method[name][j] = v
            check = alignment.probe_check(Ht_j[val_idx], y[val_idx], v, probe)
            check.pop("probe_train_auc")
            info["checks"][name] = check
        pair_info.append(info)
    np.savez(os.path.join(out, "vectors.npz"),
             **{f"{m}_layer{j}": v for m, by_layer in per_method.items() for j, v in by_layer.items()})
    run_key = hashlib.sha256(json.dumps(
        [job.to_dict()["steer"], job.to_dict()["evaluation"],
         {m: {str(j): np.round(v, 5).tolist() for j, v in d.items()} for m, d in per_method.items()}],
        sort_keys=True).encode()).hexdigest()[:16]

    # 6. evaluation sweep
    judge_layer = e.judge_layer % expert.cfg.num_layers
    judge_probe = alignment.fit_linear_probe(H_e[:, judge_layer], y)
    judge = evaluation.ExpertJudge(expert, judge_layer, judge_probe, pooling=col.pooling)
    task_dir = os.path.join(out, "lm_eval_tasks")
    if e.mc_backend == "lm_eval":
        evaluation.write_mc_task(task_dir, items)
    results_path = os.path.join(out, "results.jsonl")
    old_summary = os.path.join(out, "summary.json")
    done = {}
    if os.path.exists(results_path) and os.path.exists(old_summary):
        with open(old_summary, encoding="utf-8") as f:
            if json.load(f).get("run_key") == run_key:
                done = {(r["method"], r["eps"]): r for r in read_jsonl(results_path)}
    summary = {
        "run_key": run_key, "pairs": pairs, "pair_info": pair_info,
        "num_probe": len(prompts), "num_mc_items": len(items), "num_gen_prompts": len(gen_prompts),
        "expert": {"d_model": expert.cfg.d_model, "num_layers": expert.cfg.num_layers},
        "target": {"d_model": target.cfg.d_model, "num_layers": target.cfg.num_layers},
        "residual_norms": norms.tolist(), "judge_layer": judge_layer,
        "judge_train_auc": judge_probe.train_auc, "config": job.to_dict(),
    }
    write_json(old_summary, summary)
    sweep = [("none", 0.0)] + [(m, float(eps)) for m in per_method for eps in job.steer.coefficients]
    rows = []
    with open(results_path, "a" if done else "w", encoding="utf-8") as log:
        for method, eps in sweep:
            if (method, eps) in done:
                rows.append(done[(method, eps)])
                continue
            iv = (None if method == "none"
                  else vectors.steering_inputs(target.cfg, per_method[method], eps, dict(enumerate(norms))))
            row = {"method": method, "eps": eps}
            if e.mc_backend == "lm_eval":
                row["mc_acc"] = evaluation.mc_accuracy_lm_eval(target, task_dir, iv)
            else:
                row["mc_acc"] = evaluation.mc_accuracy_direct(target, items, iv)
            if gen_prompts:
                row.update(evaluation.generation_eval(target, gen_prompts, judge,
                                                      max_new_tokens=e.gen_tokens, interventions=iv))
            rows.append(row)
            log.write(json.dumps(row, ensure_ascii=False) + "\n")
            log.flush()
            progress(f"[steer] {method:>18} eps={eps:<5} mc_acc={row['mc_acc']:.3f}"
                     + (f" concept={row['gen_concept_rate']:.3f} "
                        f"logprob/tok={row['gen_logprob_per_token']:.3f}" if gen_prompts else ""))
    table = _markdown_table(rows)
    write_text(os.path.join(out, "results.md"), table)
    plot_results(os.path.join(out, "results.png"), rows)
    summary["results"] = rows
    summary["seconds"] = time.perf_counter() - t0
    write_json(old_summary, summary)
    progress(table)
    return summary
