"""ModelConfig: presets, parameter counts, HF config mapping, validation errors."""

import pytest

from eurollm_jax.model import ConfigError, ModelConfig, count_params, get_preset


@pytest.mark.parametrize("preset,expected", [("eurollm-1.7b", 1.657e9), ("eurollm-9b", 9.154e9)])
def test_preset_param_counts_match_published(preset, expected):
    cfg = get_preset(preset)
    abstract = count_params(cfg)  # from eval_shape: no allocation
    assert abstract == cfg.param_count()
    assert abs(abstract - expected) / expected < 1e-3


def test_22b_preset_shape_and_count():
    cfg = get_preset("eurollm-22b")
    assert (cfg.d_model, cfg.ffn_dim, cfg.num_heads, cfg.num_kv_heads) == (6144, 16384, 48, 8)
    assert cfg.rope_theta == 1e6 and cfg.max_seq_len == 32768
    assert count_params(cfg) == cfg.param_count()


def test_hf_config_round_trip():
    cfg = get_preset("eurollm-9b")
    back = ModelConfig.from_hf_config(cfg.to_hf_config())
    assert back.replace(param_dtype=cfg.param_dtype) == cfg


def test_from_hf_config_is_source_of_truth():
    hf = get_preset("eurollm-22b").to_hf_config()
    hf["num_hidden_layers"] = 54
    assert ModelConfig.from_hf_config(hf).num_layers == 54


def test_heads_not_divisible_by_kv_heads():
    with pytest.raises(ConfigError, match=r"num_heads \(6\) must be divisible by num_kv_heads \(4\)"):
        ModelConfig(d_model=48, num_heads=6, num_kv_heads=4, ffn_dim=64, vocab_size=10)


@pytest.mark.parametrize(
    "change,match",
    [
        ({"hidden_act": "gelu"}, "hidden_act"),
        ({"attention_bias": True}, "attention_bias"),
        ({"rope_scaling": {"rope_type": "yarn", "factor": 8.0}}, "yarn.*not implemented"),
        ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, "llama3 RoPE scaling lacks"),
    ],
)
def test_unsupported_hf_features_are_refused(change, match):
    hf = get_preset("tiny").to_hf_config()
    hf.update(change)
    with pytest.raises(ConfigError, match=match):
        ModelConfig.from_hf_config(hf)


def test_bad_fields():
    with pytest.raises(ConfigError, match="remat_policy"):
        get_preset("tiny", remat_policy="sometimes")
    with pytest.raises(ConfigError, match="unknown model preset"):
        get_preset("eurollm-3b")
    with pytest.raises(ConfigError, match="unknown model config fields"):
        ModelConfig.from_dict({"d_model": 64, "n_layers": 2})
