"""The ExpertSteer experiment end to end.

Fast (default): two random byte-level checkpoints of different widths, a small labelled
set written here, direct MC scoring, short sweeps. Slow: the demo pair (two tiny models
trained for 300 steps each on the offline demo corpus), the lm-eval backend."""

import json
import os

import numpy as np
import pytest

from eurollm_jax.fileio import write_jsonl
from eurollm_jax.schema import ConfigError
from eurollm_jax.steering import SteerJobConfig, run_experiment
from eurollm_jax.steering.config import default_config_dict

CONCEPT = ["das ist gut und schon", "wir sind hier und dort", "ich habe einen hund",
           "die katze ist schwarz", "es regnet heute sehr", "der zug kommt bald an"]
OTHER = ["this is a good day out", "we are here and there", "i have a small dog too",
         "the cat is very black", "it rains a lot today", "the train comes soon now",
         "ceci est une belle vue", "nous sommes ici et la", "le chat est tout noir"]


def _records(seed):
    rng = np.random.default_rng(seed)
    rows = []
    for lang, pool in (("de", CONCEPT), ("xx", OTHER)):
        for k in range(10):
            words = " ".join(pool[i] for i in rng.permutation(len(pool))[:2])
            rows.append({"text": f"{words} {k}.", "lang": lang})
    return rows


def _params_dir(path, d_model, layers, seed):
    from eurollm_jax.checkpoint import save_params
    from eurollm_jax.model import ModelConfig, create_model

    cfg = ModelConfig(vocab_size=264, d_model=d_model, num_layers=layers, num_heads=4,
                      num_kv_heads=2, head_dim=d_model // 4, ffn_dim=2 * d_model, max_seq_len=128,
                      compute_dtype="float32", initializer_range=0.1)
    save_params(create_model(cfg, seed=seed), str(path))
    return str(path)


def _config(tmp_path, expert, target, **steer):
    config = default_config_dict()
    probe, heldout = tmp_path / "probe.jsonl", tmp_path / "eval.jsonl"
    write_jsonl(str(probe), _records(0))
    write_jsonl(str(heldout), _records(1))
    config["expert"] = {"path": expert, "tokenizer": "byte"}
    config["target"] = {"path": target, "tokenizer": "byte"}
    config["concept"].update(probe_file=str(probe), eval_file=str(heldout), positive="de",
                             prefix_chars=(16,), max_probe=32)
    config["align"]["steps"] = 60
    config["rfm"]["bandwidths"] = (10.0,)
    config["rfm"]["iters"] = 2
    config["steer"]["coefficients"] = (1.0,)
    config["evaluation"].update(mc_backend="direct", mc_items=6, mc_choices=2, mc_chars=12,
                                gen_prompts=2, gen_prompt_chars=6, gen_tokens=4)
    config["output_dir"] = str(tmp_path / "out")
    for key, value in steer.items():
        section, field = key.split("__")
        config[section][field] = value
    return config


def test_end_to_end_random_pair_produces_pairs_vectors_table(tmp_path):
    expert = _params_dir(tmp_path / "expert", 48, 3, seed=0)
    target = _params_dir(tmp_path / "target", 32, 2, seed=1)
    config = _config(tmp_path, expert, target)
    lines = []
    summary = run_experiment(config, progress=lines.append)
    out = config["output_dir"]
    assert len(summary["pairs"]) == 1
    (i, j), = summary["pairs"]
    mi = json.load(open(os.path.join(out, "mi.json")))
    matrix = np.array(mi["matrix"])
    assert matrix.shape == (3, 2) and matrix[i, j] == matrix.min()  # the lowest MI pair
    for name in ("mi.png", "results.png", "results.md", "vectors.npz", "summary.json"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    vecs = np.load(os.path.join(out, "vectors.npz"))
    assert sorted(vecs.files) == sorted(
        f"{m}_layer{j}" for m in ("caa", "rfm_target", "expertsteer", "expertsteer_paired"))
    for name in vecs.files:
        assert vecs[name].shape == (32,) and np.linalg.norm(vecs[name]) == pytest.approx(1, abs=1e-5)
    rows = [json.loads(x) for x in open(os.path.join(out, "results.jsonl"))]
    assert [(r["method"], r["eps"]) for r in rows] == [("none", 0.0)] + [
        (m, 1.0) for m in ("caa", "rfm_target", "expertsteer", "expertsteer_paired")]
    assert all(0.0 <= r["mc_acc"] <= 1.0 and "gen_concept_rate" in r for r in rows)
    table = open(os.path.join(out, "results.md")).read()
    assert table.count("\n") == 2 + len(rows) and "| expertsteer |" in table
    checks = summary["pair_info"][0]["checks"]
    assert set(checks) == {"caa", "rfm_target", "expertsteer", "expertsteer_paired"}
    assert all(0 <= c["projection_auc"] <= 1 for c in checks.values())
    # a rerun reuses the cache and the finished rows (no row is recomputed or duplicated)
    cache_files = sorted(os.listdir(os.path.join(out, "cache")))
    again = run_experiment(config, progress=lines.append)
    assert sorted(os.listdir(os.path.join(out, "cache"))) == cache_files
    assert again["results"] == summary["results"]
    assert len(open(os.path.join(out, "results.jsonl")).readlines()) == len(rows)


def test_config_errors_name_the_field(tmp_path):
    config = default_config_dict()
    config["output_dir"] = str(tmp_path)
    with pytest.raises(ConfigError, match="expert.path"):
        SteerJobConfig.from_mapping(config)
    config["expert"] = {"preset": "tiny"}
    config["target"] = {"preset": "tiny"}
    with pytest.raises(ConfigError, match="concept.probe_file"):
        SteerJobConfig.from_mapping(config)
    config["concept"].update(probe_file=str(tmp_path), eval_file=str(tmp_path), positive="de")
    config["steer"]["methods"] = ("expertsteer", "caa_plus")
    with pytest.raises(ConfigError, match="steer.methods.*caa_plus"):
        SteerJobConfig.from_mapping(config)
    config["steer"]["methods"] = ("caa",)
    config["pairing"]["estimator"] = "binning"
    with pytest.raises(ConfigError, match="pairing.estimator"):
        SteerJobConfig.from_mapping(config)


def test_concept_value_missing_is_a_clear_error(tmp_path):
    from eurollm_jax.steering.data import read_labelled

    path = tmp_path / "x.jsonl"
    write_jsonl(str(path), _records(0))
    with pytest.raises(ValueError, match="no record has lang == 'fr'.*'de', 'xx'"):
        read_labelled(str(path), positive="fr")


@pytest.mark.slow
def test_demo_pair_trained_end_to_end(tmp_path):
    pytest.importorskip("lm_eval")
    from configs.steer_expert_tiny import get_config as expert_config
    from configs.steer_target_tiny import get_config as target_config
    from configs.steer_tiny import get_config
    from eurollm_jax.steering.demo import prepare_demo

    pair = prepare_demo(str(tmp_path / "demo"), expert_config(), target_config())
    config = get_config()
    config.expert.path, config.target.path = pair.expert_params, pair.target_params
    config.concept.probe_file, config.concept.eval_file = pair.probe_file, pair.eval_file
    config.output_dir = str(tmp_path / "results")
    config.steer.coefficients = (0.5, 2.0)
    config.evaluation.mc_items = 32
    config.evaluation.gen_prompts = 8
    summary = run_experiment(config)
    assert summary["expert"]["d_model"] == 128 and summary["target"]["d_model"] == 96
    info = summary["pair_info"][0]
    # the models learned the concept: the expert's RFM direction and the target's probe see it
    # (measured on the 300-step pair: 0.85 and 0.91)
    assert info["expert_rfm"]["direction_auc_on_expert"] > 0.75
    assert info["probe_val_auc"] > 0.8
    rows = {(r["method"], r["eps"]): r for r in summary["results"]}
    assert len(rows) == 1 + 4 * 2
    # every method's vector acts on the target at 2x the residual norm
    base = rows[("none", 0.0)]
    for method in ("caa", "rfm_target", "expertsteer", "expertsteer_paired"):
        steered = rows[(method, 2.0)]
        assert steered["samples"] != base["samples"] or steered["mc_acc"] != base["mc_acc"]
