"""The end-to-end demo: raw multilingual text -> an evaluated, exported tiny EuroLLM + a report.

  bash launch/demo.sh [--workdir=DIR] [--small]      (or: python -m launch.demo ...)

Stages, each reading what the previous one wrote under --workdir:
  1. corpus     real text shipped in installed packages, 24 EU languages, train/held-out split
  2. filter     language ID, FineWeb heuristics, PII, exact + MinHash dedup; drop report
  3. tokenizer  SentencePiece BPE on the kept text (temperature over languages); fertility
  4. tokenize   kept train text and held-out text -> ArrayRecord shards + manifests
  5. train      tiny EuroLLM on a (2,2,2) data/fsdp/tensor mesh of 8 emulated devices, with
                checkpoints; the run stops halfway and a second call resumes from the checkpoint
  6. generate   greedy continuations of prompts in several languages through the engine
  7. evaluate   held-out loss (nats/token) and bits per byte, per language
  8. export     Hugging Face format, reloaded with transformers; logits compared
  9. release    DIR/release/: model card (README.md), DATASHEET.md, energy.json from the run's
                records (configs/release_demo.py declares licences, uses, contact)
 10. report     DIR/report/report.md with PNG charts (loss, fertility, filter, per language)
Every number in the report is computed by this run. ``--small`` runs a shorter version
(fewer steps, a smaller model) that the test suite executes.
"""

from __future__ import annotations

import os
import sys

# 8 emulated CPU devices for the (2,2,2) mesh; must happen before jax is imported.
if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import glob  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

from absl import app, flags  # noqa: E402

from eurollm_jax.fileio import JobMismatchError  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/eurollm_demo", "where every stage writes")
flags.DEFINE_bool("small", False, "the short version (about 2 minutes on 2 cores)")
flags.DEFINE_bool("fresh", False, "delete --workdir first instead of resuming finished stages")

PROMPTS = {
    "en": "All human beings are born free",
    "de": "Alle Menschen sind frei",
    "fr": "Tous les êtres humains naissent",
    "pt": "Todos os seres humanos nascem",
    "pl": "Wszyscy ludzie rodzą się wolni",
    "el": "Όλοι οι άνθρωποι γεννιούνται",
    "mt": "Il-bnedmin kollha jitwieldu",
    "ga": "Saolaítear na daoine uile",
}

SIZES = {
    # vocab, d_model, layers, heads, kv, ffn, steps, batch, seq, eval docs per language
    False: dict(vocab=2000, d_model=256, layers=4, heads=4, kv=2, ffn=688, steps=300, batch=8, seq=256,
                eval_docs=12, new_tokens=24),
    True: dict(vocab=1000, d_model=64, layers=2, heads=4, kv=2, ffn=172, steps=60, batch=8, seq=128,
               eval_docs=3, new_tokens=12),
}


class Stages:
    """Runs the stages in order, timing each and printing one line per stage."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.timings: dict[str, float] = {}

    def path(self, *parts) -> str:
        return os.path.join(self.workdir, *parts)

    def run(self, name: str, fn, *args, **kwargs):
        print(f"[demo] {name} ...", flush=True)
        start = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except JobMismatchError as e:
            # A stage refused to resume work made with other settings (another version of
            # the code or other flags): say how to start over instead of a bare traceback.
            raise SystemExit(
                f"[demo] {name} failed: {e}\n[demo] {self.workdir} holds results of an earlier "
                "demo run made with other settings: rerun with --fresh to start over, or pass "
                "--workdir=NEW_DIR") from None
        self.timings[name] = time.perf_counter() - start
        print(f"[demo] {name}: done in {self.timings[name]:.1f} s", flush=True)
        return result


def stage_corpus(out_dir: str) -> dict:
    from eurollm_jax.data import demo_corpus

    return demo_corpus.build(out_dir)


def stage_filter(corpus_dir: str, out_dir: str) -> dict:
    from eurollm_jax.filtering import run_local

    return run_local([os.path.join(corpus_dir, "train.jsonl")], out_dir, num_workers=2)


def stage_tokenizer(kept: list[str], heldout: str, out_dir: str, vocab: int) -> dict:
    from eurollm_jax.tokenizer.train import TokenizerTrainConfig, train_and_report

    config = TokenizerTrainConfig(vocab_size=vocab, temperature=3.0, char_budget=5_000_000, num_threads=2)
    return train_and_report(kept, os.path.join(out_dir, "tokenizer.model"), config,
                            heldout=[heldout], report_dir=out_dir, name="demo-bpe")


def stage_tokenize(inputs: list[str], tokenizer: str, out_dir: str) -> dict:
    from eurollm_jax.data import TokenizeConfig, tokenize

    return tokenize(TokenizeConfig(inputs=inputs, output_dir=out_dir, tokenizer=tokenizer,
                                   num_workers=1, progress_every_s=30.0))


def train_config(size: dict, vocab: int, train_manifest: str, eval_manifest: str):
    from configs.base import base_config

    config = base_config(
        "tiny", vocab_size=vocab, d_model=size["d_model"], num_layers=size["layers"],
        num_heads=size["heads"], num_kv_heads=size["kv"], head_dim=size["d_model"] // size["heads"],
        ffn_dim=size["ffn"], max_seq_len=size["seq"], compute_dtype="float32",
    )
    config.mesh.data, config.mesh.fsdp, config.mesh.tensor = 2, 2, 2
    t = config.train
    t.steps, t.batch_size, t.seq_len = size["steps"], size["batch"], size["seq"]
    t.log_every = max(1, size["steps"] // 40)
    config.optimizer.lr = 3e-3
    config.optimizer.warmup_steps = max(2, size["steps"] // 20)
    config.optimizer.decay_fraction = 0.2
    config.checkpoint.every = max(2, size["steps"] // 4)
    config.checkpoint.keep = 2
    config.data.source = "pipeline"
    config.data.manifest = train_manifest
    config.data.eval_manifest = eval_manifest
    config.data.weighting = "temperature"
    config.data.temperature = 3.0
    config.eval.every = max(2, size["steps"] // 4)
    config.eval.batches = 2
    return config


def stage_train(config, workdir: str) -> dict:
    """Train to half the steps (the run ends with a checkpoint), then resume to the end."""
    from eurollm_jax.release import RunRecorder
    from eurollm_jax.train import train

    half = int(config.train.steps) // 2
    config.train.stop_after = half
    first = train(config, workdir, hooks=[RunRecorder()])  # run_records.jsonl: devices, time
    config.train.stop_after = 0
    second = train(config, workdir, hooks=[RunRecorder()])
    return {"first_run_end": first.step, "first_stopped_early": first.stopped_early,
            "resumed_from": half, "final_step": second.step}


def stage_generate(model, tokenizer, new_tokens: int) -> list[dict]:
    from eurollm_jax.inference import generate

    prompts = list(PROMPTS.values())
    outs = generate(model, prompts, tokenizer=tokenizer, max_new_tokens=new_tokens, temperature=0.0)
    return [{"lang": lang, "prompt": p, "continuation": o.text, "tokens": len(o)}
            for (lang, p), o in zip(PROMPTS.items(), outs)]


def _heldout_docs(path: str, per_language: int) -> dict[str, list[str]]:
    by_lang: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            docs = by_lang.setdefault(doc["lang"], [])
            if len(docs) < per_language:
                docs.append(doc["text"])
    return dict(sorted(by_lang.items()))


def stage_evaluate(model, tokenizer, docs_by_lang: dict[str, list[str]]) -> dict[str, dict]:
    """Held-out loss per token and bits per UTF-8 byte, per language (rolling windows)."""
    from eurollm_jax.inference import loglikelihood_rolling

    results = {}
    for lang, texts in docs_by_lang.items():
        ids = [tokenizer.encode(t) for t in texts]  # BOS is the rolling windows' prefix token
        scores = loglikelihood_rolling(model, ids, prefix_token=tokenizer.bos_id)
        nll = -sum(float(s.logprob) for s in scores)
        tokens = sum(s.num_tokens for s in scores)
        nbytes = sum(len(t.encode("utf-8")) for t in texts)
        results[lang] = {"docs": len(texts), "tokens": tokens, "bytes": nbytes,
                         "loss": nll / max(tokens, 1), "bits_per_byte": nll / math.log(2) / max(nbytes, 1)}
    return results


def stage_export(model, tokenizer, out_dir: str, sample_ids: list[int],
                 docs_by_lang: dict[str, list[str]]) -> dict:
    """Weights and tokenizer as a Hugging Face repository, checked with transformers: logits,
    token ids on the held-out text of every language, the chat template."""
    import numpy as np

    import eurollm_jax
    from eurollm_jax.tokenizer.chat_template import render_ids

    eurollm_jax.save_hf_checkpoint(model, out_dir, tokenizer=tokenizer)
    try:
        import torch
        import transformers
    except ImportError as e:
        raise SystemExit(f"the export check needs transformers and torch (pip install -e '.[demo]'): {e}")
    hf = transformers.LlamaForCausalLM.from_pretrained(out_dir).eval()
    ids = np.asarray([sample_ids])
    with torch.no_grad():
        ref = hf(torch.tensor(ids)).logits.numpy()
    ours = np.asarray(model(ids))
    hf_tok = transformers.AutoTokenizer.from_pretrained(out_dir)
    texts = [t for docs in docs_by_lang.values() for t in docs]
    mismatches = [t[:80] for t in texts if hf_tok(t)["input_ids"] != tokenizer.encode(t)]
    chat = [{"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": next(iter(docs_by_lang.values()))[0][:100]},
            {"role": "assistant", "content": "OK."}, {"role": "user", "content": "Thanks!"}]
    chat_ids = hf_tok.apply_chat_template(chat, tokenize=True, add_generation_prompt=True)
    chat_ids = chat_ids["input_ids"] if not isinstance(chat_ids, list) else chat_ids
    return {"path": out_dir, "max_abs_logit_diff": float(np.abs(ref - ours).max()),
            "hf_params": int(sum(p.numel() for p in hf.parameters())),
            "tokenizer_texts": len(texts), "tokenizer_languages": len(docs_by_lang),
            "tokenizer_mismatches": mismatches,
            "chat_template_equal": chat_ids == render_ids(tokenizer, chat, add_generation_prompt=True)[0]}


def write_report(stages: Stages, info: dict) -> str:
    from eurollm_jax.release import RunReport, plot_bars, plot_loss_curve, read_metrics
    from eurollm_jax.release.report import markdown_table

    report = RunReport(stages.path("report"), "eurollm_jax end-to-end demo")
    size, mesh = info["size"], info["mesh"]
    report.add("Run", "\n".join([
        f"- version: {'small' if info['small'] else 'full'}; devices: {info['devices']}; mesh {mesh}",
        f"- model: {info['params'] / 1e6:.2f}M parameters (d_model {size['d_model']}, {size['layers']} layers, "
        f"{size['heads']} heads / {size['kv']} kv heads, vocabulary {info['vocab']})",
        f"- training: {size['steps']} steps of {size['batch']} x {size['seq']} tokens; "
        f"stopped at step {info['train']['first_run_end']} with a checkpoint, resumed to {info['train']['final_step']}",
        f"- total time: {sum(stages.timings.values()):.0f} s",
    ]))
    report.add_table("Stage timings", ["stage", "seconds"], [(k, round(v, 1)) for k, v in stages.timings.items()])

    corpus = info["corpus"]
    filt = info["filter"]
    fig = filt.get("png") or stages.path("filtered", "report.png")
    body = (f"{filt['total']:,} training documents from {', '.join(corpus['sources_found'])}: "
            f"{filt['kept']:,} kept, {filt['dropped']:,} dropped.\n\n")
    rows = [(lang, v["documents"], v["kept"], ", ".join(f"{r} {n}" for r, n in sorted(v["dropped"].items()) if n))
            for lang, v in sorted(filt["languages"].items())]
    body += markdown_table(["language", "documents", "kept", "dropped by step"], rows)
    if os.path.exists(fig):
        body += "\n\n" + report.image(fig, "filter report")
    report.add("Filtering", body)

    tok_dir = stages.path("tokenizer")
    fert_md = os.path.join(tok_dir, "fertility.md")
    body = f"SentencePiece BPE, vocabulary {info['vocab']}, byte fallback, digits split, temperature 3 over languages.\n\n"
    if os.path.exists(fert_md):
        with open(fert_md, encoding="utf-8") as f:
            body += f.read()
    if os.path.exists(os.path.join(tok_dir, "fertility.png")):
        body += "\n\n" + report.image(os.path.join(tok_dir, "fertility.png"), "fertility")
    report.add("Tokenizer fertility (held-out text)", body)

    manifest = info["tokens"]
    report.add("Tokenized data", f"{manifest['totals'].get('tokens', 0):,} training tokens in ArrayRecord shards "
               f"({len(manifest['sources'])} language/source pairs).")

    rows = read_metrics(stages.path("train", "metrics.jsonl"))
    loss_png = plot_loss_curve(rows, stages.path("report", "loss.png"), marker_step=info["train"]["resumed_from"],
                               marker_label="resumed from checkpoint")
    last = rows[-1] if rows else {}
    report.add("Training", f"Final train loss {last.get('loss', float('nan')):.3f} at step {last.get('step')}; "
               f"{last.get('tokens_per_s', 0):,.0f} tokens/s on the emulated mesh.\n\n" + report.image(loss_png, "loss"))

    ev = info["evaluate"]
    report.add_table("Held-out loss and bits per byte by language",
                     ["language", "docs", "tokens", "loss (nats/token)", "bits/byte"],
                     [(k, v["docs"], v["tokens"], round(v["loss"], 3), round(v["bits_per_byte"], 3)) for k, v in ev.items()])
    bpb_png = plot_bars({k: v["bits_per_byte"] for k, v in ev.items()}, stages.path("report", "bits_per_byte.png"),
                        title="held-out bits per byte", ylabel="bits/byte")
    report.sections[-1] += "\n" + report.image(bpb_png, "bits per byte") + "\n"

    report.add_table("Samples (greedy)", ["language", "prompt", "continuation"],
                     [(s["lang"], s["prompt"], s["continuation"].replace("\n", " ").replace("|", "/")) for s in info["samples"]])
    ex = info["export"]
    report.add("Hugging Face export", f"Written to `{ex['path']}`; transformers' LlamaForCausalLM loads it "
               f"({ex['hf_params']:,} parameters); max |logit difference| on a held-out text: {ex['max_abs_logit_diff']:.2e}. "
               f"With the tokenizer files (tokenizer.json, ChatML chat template), `AutoTokenizer` gives our ids on "
               f"{ex['tokenizer_texts'] - len(ex['tokenizer_mismatches'])} of {ex['tokenizer_texts']} held-out texts in "
               f"{ex['tokenizer_languages']} languages; `apply_chat_template` "
               f"{'equals' if ex['chat_template_equal'] else 'DIFFERS from'} our ChatML rendering.")
    rel = info["release"]
    report.add("Release", f"Model card `{rel['card']}` (Hugging Face metadata with {rel['eval_results']} "
               f"model-index results; parsed back with huggingface_hub), datasheet `{rel['datasheet']}`, "
               f"energy `{rel['energy']}`: {rel['co2_g']:.3g} g CO2e ({rel['energy_method']}, "
               f"{rel['device_hours']:.3g} device-hours). {len(rel['warnings'])} warnings for a real release "
               f"to resolve:\n\n" + "\n".join(f"- {w}" for w in rel["warnings"]))
    return report.write()


def stage_release(workdir: str, export_dir: str, out_dir: str) -> dict:
    """Model card, datasheet and energy report of the exported model (``launch.release``)."""
    from configs.release_demo import get_config
    from eurollm_jax.fileio import read_json
    from eurollm_jax.release import ReleaseConfig, build_release

    result = build_release(workdir, export_dir, out_dir, ReleaseConfig.from_mapping(get_config()))
    energy = read_json(result.energy)
    return {"card": result.card, "datasheet": result.datasheet, "energy": result.energy,
            "eval_results": result.eval_results, "co2_g": result.co2_g, "energy_method": energy["method"],
            "device_hours": energy["device_hours"], "warnings": result.warnings}


def _summarise_filter(report: dict, out_dir: str) -> dict:
    """The per-language counts of the filter's report.json, dropped counts folded by step."""
    from eurollm_jax.filtering.report import by_step

    langs = {row["language"]: {"documents": row["documents"], "kept": row["kept"],
                               "dropped": dict(by_step(row["dropped"]))}
             for row in report["languages"]}
    return {"total": report["documents"], "kept": report["kept"], "dropped": report["dropped"],
            "languages": langs, "png": os.path.join(out_dir, "report.png")}


def main(argv):
    del argv
    import shutil

    import jax

    workdir = os.path.abspath(FLAGS.workdir)
    if FLAGS.fresh and os.path.exists(workdir):
        shutil.rmtree(workdir)
    os.makedirs(workdir, exist_ok=True)
    size = SIZES[FLAGS.small]
    stages = Stages(workdir)
    info: dict = {"small": FLAGS.small, "size": size, "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}"}

    info["corpus"] = stages.run("corpus", stage_corpus, stages.path("corpus"))
    filter_report = stages.run("filter", stage_filter, stages.path("corpus"), stages.path("filtered"))
    info["filter"] = _summarise_filter(filter_report, stages.path("filtered"))
    kept = sorted(glob.glob(stages.path("filtered", "kept", "*")))
    heldout = stages.path("corpus", "heldout.jsonl")
    stages.run("tokenizer", stage_tokenizer, kept, heldout, stages.path("tokenizer"), size["vocab"])
    tok_path = stages.path("tokenizer", "tokenizer.model")
    info["tokens"] = stages.run("tokenize", stage_tokenize, kept, tok_path, stages.path("tokens"))
    stages.run("tokenize held-out", stage_tokenize, [heldout], tok_path, stages.path("tokens_heldout"))

    from eurollm_jax.tokenizer import Tokenizer

    tokenizer = Tokenizer.load(tok_path)
    vocab = tokenizer.vocab_size
    info["vocab"] = vocab
    config = train_config(size, vocab, stages.path("tokens"), stages.path("tokens_heldout"))
    info["mesh"] = "(data 2, fsdp 2, tensor 2)"
    info["train"] = stages.run("train", stage_train, config, stages.path("train"))

    import eurollm_jax

    model = stages.run("load", eurollm_jax.load_params, stages.path("train", "params"))
    info["params"] = model.cfg.param_count()
    info["samples"] = stages.run("generate", stage_generate, model, tokenizer, size["new_tokens"])
    for s in info["samples"]:
        print(f"  [{s['lang']}] {s['prompt']!r} -> {s['continuation']!r}")
    heldout_docs = _heldout_docs(heldout, size["eval_docs"])
    info["evaluate"] = stages.run("evaluate", stage_evaluate, model, tokenizer, heldout_docs)
    sample_text = next(iter(heldout_docs.values()))[0]
    sample_ids = tokenizer.encode(sample_text)[: size["seq"]]  # encode adds the BOS
    info["export"] = stages.run("export", stage_export, model, tokenizer, stages.path("hf_export"),
                                sample_ids, heldout_docs)
    info["release"] = stages.run("release", stage_release, stages.path("train"), stages.path("hf_export"),
                                 stages.path("release"))
    path = stages.run("report", write_report, stages, info)
    print(f"[demo] report: {path}")
    with open(stages.path("summary.json"), "w") as f:
        json.dump({k: v for k, v in info.items() if k != "corpus"} | {"timings": stages.timings}, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
