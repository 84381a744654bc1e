"""Parity with transformers' LlamaForCausalLM, export/import round trips, bad checkpoints."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import eurollm_jax
from eurollm_jax.checkpoint import CheckpointMismatchError
from eurollm_jax.checkpoint import safetensors_io

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.torch

CASES = [
    # hidden, layers, heads, kv heads, vocab, tied, theta, scan
    dict(hidden=64, layers=2, heads=4, kv=1, vocab=257, tied=False, theta=1e4, scan=True),
    dict(hidden=96, layers=3, heads=6, kv=2, vocab=311, tied=True, theta=1e6, scan=False),
    dict(hidden=128, layers=2, heads=4, kv=4, vocab=263, tied=False, theta=1e6, scan=True),
    dict(hidden=64, layers=3, heads=8, kv=2, vocab=255, tied=True, theta=1e4, scan=True),
]


def _hf_model(case, seed=0):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=case["vocab"], hidden_size=case["hidden"], intermediate_size=case["hidden"] * 3 // 2,
        num_hidden_layers=case["layers"], num_attention_heads=case["heads"],
        num_key_value_heads=case["kv"], rope_theta=case["theta"], tie_word_embeddings=case["tied"],
        max_position_embeddings=512, rms_norm_eps=1e-5,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # non-trivial norm scales so that a mis-mapped norm shows
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    return model


def _hf_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor(np.asarray(ids))).logits.float().numpy()


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"h{c['hidden']}-kv{c['kv']}-tied{c['tied']}-scan{c['scan']}")
def test_import_export_parity(case, tmp_path):
    hf = _hf_model(case)
    src = tmp_path / "hf"
    hf.save_pretrained(src)
    model = eurollm_jax.load_hf_checkpoint(
        str(src), compute_dtype="float32", attention_impl="xla", scan_layers=case["scan"]
    )
    ids = np.random.RandomState(0).randint(0, case["vocab"], (3, 67))
    ref = _hf_logits(hf, ids)
    ours = np.asarray(model(jnp.asarray(ids)))
    assert np.abs(ours - ref).max() <= 1e-4

    out = tmp_path / "export"
    eurollm_jax.save_hf_checkpoint(model, str(out))
    reloaded = transformers.LlamaForCausalLM.from_pretrained(str(out)).eval()
    assert np.abs(_hf_logits(reloaded, ids) - ours).max() <= 1e-5

    again = eurollm_jax.load_hf_checkpoint(str(out), compute_dtype="float32", scan_layers=case["scan"])
    for a, b in zip(jax.tree.leaves(nnx.state(model)), jax.tree.leaves(nnx.state(again))):
        np.testing.assert_array_equal(a, b)


def test_bf16_sharded_export_has_index_and_loads(tmp_path):
    case = CASES[0]
    hf = _hf_model(case)
    hf.save_pretrained(tmp_path / "hf")
    model = eurollm_jax.load_hf_checkpoint(str(tmp_path / "hf"), compute_dtype="float32")
    names = eurollm_jax.save_hf_checkpoint(model, str(tmp_path / "out"), dtype="bfloat16", max_shard_bytes=40_000)
    assert len(names) > 1
    index = json.loads((tmp_path / "out" / safetensors_io.INDEX_FILE).read_text())
    assert set(index["weight_map"].values()) == set(names)
    reloaded = transformers.LlamaForCausalLM.from_pretrained(str(tmp_path / "out"), torch_dtype=torch.bfloat16)
    assert reloaded.model.embed_tokens.weight.dtype == torch.bfloat16
    ours = eurollm_jax.load_hf_checkpoint(str(tmp_path / "out"), compute_dtype="float32")
    np.testing.assert_allclose(
        np.asarray(ours.embed_tokens[...]), reloaded.model.embed_tokens.weight.detach().float().numpy(), atol=0
    )


def _write_checkpoint(directory, tensors, config):
    os.makedirs(directory, exist_ok=True)
    safetensors_io.save_file(tensors, os.path.join(directory, "model.safetensors"))
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)


def test_bad_checkpoints_name_each_tensor(tmp_path):
    hf = _hf_model(CASES[0])
    hf.save_pretrained(tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    index = safetensors_io.TensorIndex(str(tmp_path / "hf"))
    tensors = {k: np.array(index.get(k)) for k in index.keys()}

    broken = dict(tensors)
    del broken["model.layers.1.mlp.up_proj.weight"]
    broken["model.layers.0.self_attn.q_proj.weight"] = np.zeros((10, 64), np.float32)
    broken["model.layers.0.self_attn.q_proj.bias"] = np.zeros((64,), np.float32)
    _write_checkpoint(tmp_path / "bad", broken, config)
    with pytest.raises(CheckpointMismatchError) as err:
        eurollm_jax.load_hf_checkpoint(str(tmp_path / "bad"))
    message = str(err.value)
    assert "missing tensors: model.layers.1.mlp.up_proj.weight" in message
    assert "unexpected tensors: model.layers.0.self_attn.q_proj.bias" in message
    assert "model.layers.0.self_attn.q_proj.weight (file (10, 64), config expects (64, 64))" in message

    with pytest.raises(FileNotFoundError, match="Nothing is downloaded"):
        eurollm_jax.load_hf_checkpoint("utter-project/EuroLLM-9B", cache_dir=str(tmp_path / "empty"))


def test_hf_cache_layout_resolves_offline(tmp_path):
    hf = _hf_model(CASES[0])
    snapshot = tmp_path / "hub" / "models--org--tiny" / "snapshots" / "abc123"
    hf.save_pretrained(snapshot)
    (tmp_path / "hub" / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--tiny" / "refs" / "main").write_text("abc123")
    model = eurollm_jax.load_hf_checkpoint("org/tiny", cache_dir=str(tmp_path / "hub"), compute_dtype="float32")
    assert model.cfg.vocab_size == CASES[0]["vocab"]
