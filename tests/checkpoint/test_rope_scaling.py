"""RoPE scaling of long-context checkpoints (linear, dynamic NTK, Llama 3): the frequencies
equal transformers' ROPE_INIT_FUNCTIONS, logits equal LlamaForCausalLM's on import and
export, and a scaling type we do not implement is refused by name."""

import jax.numpy as jnp
import numpy as np
import pytest

import eurollm_jax
from eurollm_jax.model import ModelConfig
from eurollm_jax.model.config import ConfigError
from eurollm_jax.model.transformer import rope_inv_freq

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.torch

SCALINGS = {
    "linear": {"rope_type": "linear", "factor": 2.0},
    "dynamic": {"rope_type": "dynamic", "factor": 3.0},
    "llama3": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
}
MAX_POSITIONS = 32  # shorter than the 67-token inputs: dynamic NTK rescales


def _hf_config(scaling, theta=1e4):
    return transformers.LlamaConfig(
        vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rope_theta=theta,
        rope_scaling=dict(scaling), max_position_embeddings=MAX_POSITIONS, rms_norm_eps=1e-5)


@pytest.mark.parametrize("name", sorted(SCALINGS))
def test_inverse_frequencies_equal_transformers(name):
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    hf = _hf_config(SCALINGS[name], theta=5e5)
    cfg = ModelConfig.from_hf_config(hf.to_dict())
    assert cfg.rope_scaling == name
    seq_len = 200  # beyond every original length
    ref, _ = ROPE_INIT_FUNCTIONS[name](hf, "cpu", seq_len=seq_len) if name == "dynamic" else \
        ROPE_INIT_FUNCTIONS[name](hf, "cpu")
    positions = jnp.arange(seq_len)[None]
    ours = np.asarray(rope_inv_freq(cfg, positions))
    np.testing.assert_allclose(ours, ref.numpy(), rtol=2e-6)
    # the scaling changes the frequencies (the test would pass on plain RoPE otherwise)
    plain = 1.0 / (5e5 ** (np.arange(0, 16, 2) / 16))
    assert np.abs(ours / plain - 1).max() > 0.1


@pytest.mark.parametrize("name", sorted(SCALINGS))
def test_logits_equal_transformers_on_import_and_export(name, tmp_path):
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(_hf_config(SCALINGS[name])).eval()
    hf.save_pretrained(tmp_path / "hf")
    model = eurollm_jax.load_hf_checkpoint(str(tmp_path / "hf"), compute_dtype="float32",
                                           attention_impl="xla", max_seq_len=128)
    ids = np.random.RandomState(1).randint(0, 97, (2, 67))
    with torch.no_grad():
        ref = hf(torch.tensor(ids)).logits.numpy()
    ours = np.asarray(model(jnp.asarray(ids)))
    assert np.abs(ours - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())

    eurollm_jax.save_hf_checkpoint(model, str(tmp_path / "out"))
    again = transformers.LlamaForCausalLM.from_pretrained(str(tmp_path / "out")).eval()
    with torch.no_grad():
        back = again(torch.tensor(ids)).logits.numpy()
    assert np.abs(back - ours).max() <= 1e-5 * max(1.0, np.abs(ref).max())
    reread = ModelConfig.from_hf_config(again.config.to_dict())
    for field in ("rope_scaling", "rope_scaling_factor", "rope_original_max_seq_len",
                  "rope_low_freq_factor", "rope_high_freq_factor", "rope_theta"):
        assert getattr(reread, field) == getattr(model.cfg, field), field


def test_unimplemented_scaling_types_are_refused_by_name():
    config = {"vocab_size": 97, "hidden_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "intermediate_size": 96}
    with pytest.raises(ConfigError, match="'yarn'.*not implemented; supported: linear, dynamic, llama3"):
        ModelConfig.from_hf_config({**config, "rope_scaling": {"rope_type": "yarn", "factor": 4.0}})
    with pytest.raises(ConfigError, match="lacks"):
        ModelConfig.from_hf_config({**config, "rope_parameters": {
            "rope_type": "llama3", "factor": 8.0, "rope_theta": 1e4}})
    with pytest.raises(ConfigError, match="rope_original_max_seq_len"):
        ModelConfig(d_model=64, num_heads=4, num_kv_heads=2, rope_scaling="llama3",
                    rope_scaling_factor=8.0)
