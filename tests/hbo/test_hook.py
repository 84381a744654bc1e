"""The HBO hook in the trainer: exact resume, pure rewards (state, optimizer and data stream
untouched; the same losses as a run whose actors never move), rewards against independent
computations, and the direction of the actors on a random-token vs a learnable subset."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eurollm_jax.fileio import read_jsonl
from eurollm_jax.hbo.run import run
from eurollm_jax.inference import loglikelihood
from eurollm_jax.train.state import init_params, params_to_model
from tests.hbo.helpers import hbo_config, two_subset_records, write_records


@pytest.fixture(scope="module")
def sft_file(tmp_path_factory):
    return write_records(tmp_path_factory.mktemp("hbo") / "sft.jsonl", two_subset_records())


def _records(workdir):
    return {r["step"]: r for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))}


def test_resume_mid_way_is_exact(sft_file, tmp_path):
    straight, trainer, hook = run(hbo_config(sft_file, steps=6), str(tmp_path / "straight"))
    assert hook.updates == 3
    config = hbo_config(sft_file, steps=6)
    config.train.stop_after = 3
    first, _, half = run(config, str(tmp_path / "resumed"))
    assert first.step == 3 and half.updates == 1
    second, trainer2, resumed = run(hbo_config(sft_file, steps=6), str(tmp_path / "resumed"))
    assert second.step == 6 and resumed.updates == 3  # 1 restored + 2 after the resume
    a, b = _records(straight.workdir), _records(second.workdir)
    assert [a[s]["loss"] for s in range(1, 7)] == [b[s]["loss"] for s in range(1, 7)]  # bitwise
    assert json.dumps(hook.state_dict()) == json.dumps(resumed.state_dict())  # actors + Adam
    assert trainer.iterator.mixture_weights == trainer2.iterator.mixture_weights
    assert trainer.iterator.get_state() == trainer2.iterator.get_state()
    for s in range(1, 7):
        hbo_keys = {k for k in a[s] if k.startswith("hbo/") and k != "hbo/reward_time_s"}
        assert {k: a[s][k] for k in hbo_keys} == {k: b[s][k] for k in hbo_keys}
    # p_G and p_L with every record, rewards with the update steps
    assert "hbo/p_G/noise" in b[1] and "hbo/R_G/noise" not in b[1]
    assert {"hbo/R_G/learn", "hbo/R_L/learn/b1", "hbo/p_L/noise/b0"} <= set(b[4])
    # the mixture moved: the iterator holds p_G x p_L (in token weights), not the prior
    assert trainer2.iterator.mixture_weights == pytest.approx(resumed.pipeline_weights())
    assert b[6]["hbo/p_G/learn"] != b[1]["hbo/p_G/learn"]


def test_rewards_are_pure_and_actors_that_never_move_train_like_a_static_mixture(
        sft_file, tmp_path):
    frozen, t_frozen, h_frozen = run(hbo_config(sft_file, steps=4, actor_lr=0.0),
                                     str(tmp_path / "frozen"))
    static, _, _ = run(hbo_config(sft_file, steps=4, mode="static"), str(tmp_path / "static"))
    a, b = _records(frozen.workdir), _records(static.workdir)
    assert "hbo/R_G/noise" in a[2] and "hbo/R_G/noise" not in b[2]  # rewards were computed
    assert [a[s]["loss"] for s in range(1, 5)] == [b[s]["loss"] for s in range(1, 5)]
    # computing rewards again leaves state, optimizer state and the data stream bitwise as is
    before = jax.device_get(t_frozen.state)
    data_before = json.dumps(t_frozen.iterator.get_state())
    h_frozen.compute_rewards(t_frozen.state["params"], 4)
    after = jax.device_get(t_frozen.state)
    assert jax.tree.all(jax.tree.map(lambda x, y: np.array_equal(x, y), before, after))
    assert json.dumps(t_frozen.iterator.get_state()) == data_before


def _reference_grad_norm(graphdef, params, batch):
    """Gradient norm with another loss implementation (log_softmax + gather, host float64
    norm over the gathered, unsharded gradient)."""
    host = jax.device_get(params)

    def loss(p):
        model = params_to_model(graphdef, p)
        tokens = jnp.asarray(batch["tokens"])
        logits = model.forward(tokens, segment_ids=jnp.asarray(batch["segment_ids"]),
                               positions=jnp.asarray(batch["positions"])).logits
        logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
        tgt = jnp.take_along_axis(logp[:, :-1], tokens[:, 1:, None], axis=-1)[..., 0]
        seg, mask = batch["segment_ids"], batch["loss_mask"]
        w = (mask[:, 1:] > 0) & (seg[:, 1:] == seg[:, :-1]) & (seg[:, :-1] != 0)
        return -jnp.sum(tgt * w) / max(w.sum(), 1)

    grads = jax.device_get(jax.grad(loss)(jax.device_put(host, params_sharding(params))))
    return float(np.sqrt(sum(np.sum(np.asarray(g, np.float64) ** 2)
                             for g in jax.tree.leaves(grads))))


def params_sharding(params):
    return jax.tree.map(lambda x: x.sharding, params)


def _mean_nll_by_engine(model, examples):
    """Mean NLL of each example's targets scored by the inference engine."""
    requests, masks = [], []
    for tokens, mask in examples:
        first = int(np.flatnonzero(mask)[0])
        requests.append((list(tokens[:first]), list(tokens[first:])))
        masks.append(np.asarray(mask[first:], bool))
    out = loglikelihood(model, requests)
    return np.array([-np.asarray(r.token_logprobs)[m].mean() for r, m in zip(out, masks)])


def _sources_of(hook, subset, batch):
    """(bucket, example) of each example of ``batch`` (found by identity in the buckets)."""
    out = []
    for ex in batch:
        for name in hook.layout.buckets(subset):
            if any(ex is e for e in hook.examples.examples[name]):
                out.append((name, ex))
                break
        else:
            raise AssertionError("a reward example is not from its subset")
    return out


@pytest.mark.slow
def test_random_vs_learnable_subset_rewards_and_directions(sft_file, tmp_path):
    # subset "noise": random answers; subset "learn": b0 one fixed sentence, b1 random text
    result, trainer, hook = run(hbo_config(sft_file, steps=8, every=4, actor_steps=200,
                                           actor_lr=1e-4), str(tmp_path / "run"))
    rec = _records(result.workdir)
    subsets = hook.layout.subsets
    assert subsets == ["learn", "noise"]
    for step in (4, 8):
        r_g = np.array([rec[step][f"hbo/R_G/{s}"] for s in subsets])
        p_before = np.array([rec[step - 1][f"hbo/p_G/{s}"] for s in subsets])
        p_after = np.array([rec[step][f"hbo/p_G/{s}"] for s in subsets])
        # the global actor's mass moves as the gradient-norm reward says
        np.testing.assert_array_equal(np.sign(p_after - p_before),
                                      np.sign(r_g / r_g.sum() - p_before))
        for s in subsets:
            r_l = np.array([rec[step][f"hbo/R_L/{s}/b{j}"] for j in range(2)])
            assert r_l.mean() == pytest.approx(1.0)
            before = np.array([rec[step - 1][f"hbo/p_L/{s}/b{j}"] for j in range(2)])
            after = np.array([rec[step][f"hbo/p_L/{s}/b{j}"] for j in range(2)])
            np.testing.assert_array_equal(np.sign(after - before),
                                          np.sign(r_l / r_l.sum() - before))
        # the fixed sentence is learned faster than random text: its PPL ratio is lower, so
        # the learnable subset's local actor moves towards the random bucket
        assert rec[step]["hbo/R_L/learn/b0"] < rec[step]["hbo/R_L/learn/b1"]
        assert rec[step]["hbo/p_L/learn/b1"] > rec[step - 1]["hbo/p_L/learn/b1"]

    # the rewards against independent computations on the final params
    params = trainer.state["params"]
    graphdef = trainer.job.spec.graphdef
    rewards = hook.compute_rewards(params, 8)
    assert rewards["global"].tolist() == [rec[8][f"hbo/R_G/{s}"] for s in subsets]
    # R_G: the same batches, another loss implementation, the norm on the host
    from eurollm_jax.hbo.buckets import rows_batch

    for i, s in enumerate(subsets):
        batches = hook.global_batches(i, 8)
        assert len(batches) == hook.settings.global_batches
        assert all(len(b) == hook.reward_model.rows for b in batches)
        assert {hook.layout.buckets(s)[0], hook.layout.buckets(s)[1]} >= {
            name for b in batches for name, _ in _sources_of(hook, s, b)}
        ref = np.mean([_reference_grad_norm(graphdef, params,
                                            rows_batch(b, hook.reward_model.rows, hook.seq_len))
                       for b in batches])
        assert rewards["global"][i] == pytest.approx(ref, rel=2e-4)
    # R_L: PPL ratios from the inference engine's scoring, initial params rebuilt from the seed
    init = init_params(trainer.job.model_cfg, trainer.job.mesh, seed=trainer.settings.seed)
    now_model = params_to_model(graphdef, params)
    init_model = params_to_model(graphdef, init)
    for s in subsets:
        raw = []
        for name in hook.layout.buckets(s):
            probes = hook.probe_examples(name)
            np.testing.assert_allclose(hook.reference[name],
                                       _mean_nll_by_engine(init_model, probes), rtol=1e-5)
            ratio = np.exp(_mean_nll_by_engine(now_model, probes) - hook.reference[name])
            raw.append(ratio.mean())
        np.testing.assert_allclose(rewards["local"][s], np.array(raw) / np.mean(raw), rtol=1e-5)



@pytest.mark.slow
def test_pretraining_text_sources_are_one_bucket_subsets(tmp_path):
    # data.source=text: one plain source per language; HBO balances the languages globally
    # (and each language's single bucket locally, trivially)
    config = hbo_config("", steps=4, every=2)
    config.data.source = "text"
    config.data.languages = ("en", "de", "fr")
    config.data.sft_file = ""
    result, trainer, hook = run(config, str(tmp_path / "text"))
    assert hook.layout.subsets == ["de", "en", "fr"] and hook.updates == 2
    rec = _records(result.workdir)
    sizes = np.array([hook.examples.count(s) for s in hook.layout.subsets], float)
    np.testing.assert_allclose([rec[1][f"hbo/p_G/{s}"] for s in hook.layout.subsets],
                               sizes / sizes.sum(), rtol=1e-12)  # q_1 ∝ documents
    assert all(rec[4][f"hbo/p_L/{s}/b0"] == 1.0 for s in hook.layout.subsets)
    assert trainer.iterator.mixture_weights == pytest.approx(hook.pipeline_weights())
