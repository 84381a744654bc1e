"""A small fake run on disk, laid out the way the framework writes one: filter report, token
manifest, tokenizer fertility, trainer config + metrics + run records, a Hugging Face export
(a real config.json, stand-in weights bytes) and an evaluation registry."""

import json
import os

import numpy as np

from eurollm_jax.evaluation.registry import checkpoint_identity, make_record, write_record
from eurollm_jax.fileio import write_json, write_jsonl
from eurollm_jax.model import ModelConfig

MODEL = ModelConfig(vocab_size=384, d_model=64, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16,
                    ffn_dim=128, max_seq_len=256, tie_embeddings=False)

FILTER_REPORT = {
    "documents": 30, "kept": 17, "dropped": 13,
    "dropped_by_step": {"language_id": 5, "gopher_quality": 8},
    "dropped_by_reason": {"language_id:below_threshold": 5, "gopher_quality:gopher_short_doc": 8},
    "languages": [
        {"language": "de", "documents": 10, "kept": 8, "kept_fraction": 0.8, "kept_chars": 800,
         "dropped": {"gopher_quality:gopher_short_doc": 2}},
        {"language": "en", "documents": 12, "kept": 8, "kept_fraction": 0.6667, "kept_chars": 900,
         "dropped": {"gopher_quality:gopher_short_doc": 3, "language_id:below_threshold": 1}},
        {"language": "mt", "documents": 8, "kept": 1, "kept_fraction": 0.125, "kept_chars": 50,
         "dropped": {"gopher_quality:gopher_short_doc": 3, "language_id:below_threshold": 4}},
    ],
    "reasons": [], "stats": {},
    "config": {"language_id": {"enabled": True, "backend": "auto", "threshold": 0.65, "languages": ["de", "en", "mt"]},
               "heuristics": {"enabled": True, "default_language": "en", "per_language": {}},
               "pii": {"enabled": True, "emails": True, "ip_addresses": True, "phone_numbers": False},
               "dedup": {"exact": True, "near": False}, "quality": {"enabled": False},
               "url_blocklist": {"enabled": False}},
}

SOURCES = {
    "de/web": {"language": "de", "source": "web", "records": 8, "tokens": 4000, "shards": [], "shard_records": [8]},
    "en/web": {"language": "en", "source": "web", "records": 6, "tokens": 3000, "shards": [], "shard_records": [6]},
    "en/books": {"language": "en", "source": "books", "records": 2, "tokens": 2500, "shards": [], "shard_records": [2]},
    "mt/web": {"language": "mt", "source": "web", "records": 1, "tokens": 500, "shards": [], "shard_records": [1]},
}

# Two trainer starts (stopped at step 10, resumed to 20) on 8 H100s, as RunRecorder writes them.
RUNS = [
    {"start": 1000.0, "end": 4600.0, "seconds": 3600.0, "first_step": 0, "last_step": 10, "completed": True,
     "device_kind": "NVIDIA H100 80GB HBM3", "platform": "gpu", "device_count": 8, "process_count": 1,
     "hostname": "h", "energy_j": None, "energy_source": None},
    {"start": 5000.0, "end": 6800.0, "seconds": 1800.0, "first_step": 10, "last_step": 20, "completed": True,
     "device_kind": "NVIDIA H100 80GB HBM3", "platform": "gpu", "device_count": 8, "process_count": 1,
     "hostname": "h", "energy_j": None, "energy_source": None},
]


def metrics_rows():
    rows = []
    for step in range(2, 21, 2):
        row = {"step": step, "loss": 6.0 - 0.1 * step, "tokens": step * 4 * 16, "phase": 0,
               "step_time_s": 0.5, "grad_norm": 1.0, "lr": 1e-3}
        if step % 10 == 0:
            row.update(eval_loss=5.9 - 0.1 * step, eval_ppl=float(np.exp(5.9 - 0.1 * step)))
        rows.append(row)
    return rows


def make_run(root, *, runs=True, registry=True):
    """Write the fake run under ``root``; returns a dict of its paths."""
    root = str(root)
    p = {k: os.path.join(root, k) for k in ("filtered", "tokenizer", "tokens", "train", "export", "registry")}
    os.makedirs(os.path.join(p["filtered"], "kept"), exist_ok=True)
    kept = os.path.join(p["filtered"], "kept", "00000-train.jsonl.gz")
    open(kept, "wb").close()
    write_json(os.path.join(p["filtered"], "report.json"), FILTER_REPORT)
    os.makedirs(p["tokenizer"], exist_ok=True)
    write_json(os.path.join(p["tokenizer"], "fertility.json"), [
        {"lang": "de", "bpe": {"tokens_per_word": 2.5, "tokens_per_char": 0.4}},
        {"lang": "en", "bpe": {"tokens_per_word": 1.5, "tokens_per_char": 0.3}}])
    by_lang = {}
    for s in SOURCES.values():
        by_lang[s["language"]] = by_lang.get(s["language"], 0) + s["tokens"]
    write_json(os.path.join(p["tokens"], "manifest.json"), {
        "version": 1, "kind": "pretrain", "inputs": [kept],
        "tokenizer": {"sha256": "ab" * 32, "path": os.path.join(p["tokenizer"], "tokenizer.model"), "vocab_size": 384},
        "sources": SOURCES, "tokens_by_language": by_lang, "tokens_by_source": {},
        "totals": {"inputs": 1, "docs": 17, "tokens": sum(by_lang.values()), "bytes": 40000},
        "bad_input": {"files": {}, "total": 0}, "failed_inputs": {}})
    write_json(os.path.join(p["train"], "config.json"), {
        "data": {"source": "pipeline", "manifest": p["tokens"]}, "mesh": {"data": 2, "fsdp": 2, "tensor": 2},
        "train": {"steps": 20, "batch_size": 4, "seq_len": 16, "phases": []}})
    write_jsonl(os.path.join(p["train"], "metrics.jsonl"), metrics_rows())
    if runs:
        write_jsonl(os.path.join(p["train"], "run_records.jsonl"), RUNS)
    os.makedirs(p["export"], exist_ok=True)
    write_json(os.path.join(p["export"], "config.json"), MODEL.to_hf_config(torch_dtype="float32"))
    with open(os.path.join(p["export"], "model.safetensors"), "wb") as f:
        f.write(np.random.default_rng(0).bytes(4096))
    if registry:
        ident = checkpoint_identity(p["export"])
        write_record(p["registry"], make_record(
            task="eurogest", languages=["de", "en"], config={"data_dir": "/x"}, checkpoint=ident, seconds=3.0,
            scores={"de": {"g": 1.07, "masculine_rate": 0.53}, "en": {"g": 1.12, "masculine_rate": None}},
            details={"eurogest": {"de": {"R": {"7": 0.31, "8": 0.6, "13": 0.72, "16": 0.69},
                                           "ranks": {"13": 1, "16": 2, "8": 3, "7": 4}}}}))
        write_record(p["registry"], make_record(
            task="lm_eval", languages=["de"], config={"tasks": ["arc_de"]}, checkpoint=ident, seconds=5.0,
            scores={"de": {"arc_de/acc": 0.31}}))
    return p


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)
