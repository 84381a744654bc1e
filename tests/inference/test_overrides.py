"""Model overrides at load time (load_for_inference, the lm-eval backend, launch.serve):
applied when valid, a clear error naming the key and the valid ones otherwise; dtype
arguments in any spelling JAX users pass."""

import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eurollm_jax.inference.loading import (
    LOAD_TIME_FIELDS,
    check_model_overrides,
    load_for_inference,
)
from eurollm_jax.model import ModelConfig, create_model
from tests.inference.conftest import VOCAB

CFG = ModelConfig(
    vocab_size=VOCAB, d_model=64, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16,
    ffn_dim=96, max_seq_len=256, compute_dtype="float32", param_dtype="float32",
    attention_impl="xla",
)


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory, tokenizer_path):
    """An HF checkpoint written by eurollm_jax itself (no torch), with its tokenizer."""
    from eurollm_jax.checkpoint import save_hf_checkpoint

    d = str(tmp_path_factory.mktemp("hf_own"))
    save_hf_checkpoint(create_model(CFG, seed=4), d, dtype="float32")
    shutil.copy(tokenizer_path, os.path.join(d, "tokenizer.model"))
    return d


def _param_dtypes(model):
    return {x.dtype for x in jax.tree.leaves(nnx.state(model, nnx.Param))}


# ----------------------------------------------------------------------------- validation
def test_check_model_overrides_converts_strings_and_names_bad_keys():
    got = check_model_overrides(
        {"attention_impl": "xla", "scan_layers": "false", "max_seq_len": "64"}
    )
    assert got == {"attention_impl": "xla", "scan_layers": False, "max_seq_len": 64}
    assert check_model_overrides({"pad_token_id": "none", "d_model": "32"}, shapes_fixed=False) == {
        "pad_token_id": None, "d_model": 32}
    with pytest.raises(ValueError, match=r"unknown model override\(s\) \['attn_impl'\]; valid "
                                         r"overrides: \[.*'attention_impl'.*'max_seq_len'"):
        check_model_overrides({"attn_impl": "xla"})
    with pytest.raises(ValueError, match=r"\['d_model'\] are fixed by the checkpoint"):
        check_model_overrides({"d_model": 32})
    with pytest.raises(ValueError, match="scan_layers='maybe': expected true or false"):
        check_model_overrides({"scan_layers": "maybe"})
    with pytest.raises(ValueError, match="max_seq_len='long': expected int"):
        check_model_overrides({"max_seq_len": "long"})
    assert set(LOAD_TIME_FIELDS) <= {f for f in ModelConfig.__dataclass_fields__}


def test_load_for_inference_applies_overrides_and_dtype_objects(ckpt_dir):
    model, tok = load_for_inference(
        ckpt_dir, compute_dtype=np.dtype("float32"), param_dtype=jnp.bfloat16,
        attention_impl="xla", scan_layers="false", max_seq_len="64",
    )
    cfg = model.cfg
    # np.dtype objects are falsy: a `if compute_dtype:` check would have dropped it and
    # left the HF default (bfloat16).
    assert cfg.compute_dtype == "float32" and cfg.param_dtype == "bfloat16"
    assert (cfg.attention_impl, cfg.scan_layers, cfg.max_seq_len) == ("xla", False, 64)
    assert _param_dtypes(model) == {jnp.dtype("bfloat16")} and tok is not None


def test_load_for_inference_rejects_unknown_and_fixed_keys(ckpt_dir):
    with pytest.raises(ValueError, match=r"unknown model override\(s\) \['bogus'\]"):
        load_for_inference(ckpt_dir, bogus=1)
    with pytest.raises(ValueError, match=r"\['num_layers'\] are fixed by the checkpoint"):
        load_for_inference(ckpt_dir, num_layers=1)
    with pytest.raises(ValueError, match="compute_dtype: unsupported dtype 'float64'"):
        load_for_inference(ckpt_dir, compute_dtype="float64")


def test_params_dir_takes_param_dtype(tmp_path, tokenizer_path):
    from eurollm_jax.checkpoint import save_params

    save_params(create_model(CFG, seed=4), str(tmp_path / "params"))
    model, _ = load_for_inference(str(tmp_path / "params"), param_dtype="bf16",
                                  tokenizer=tokenizer_path, attention_impl="xla")
    assert model.cfg.param_dtype == "bfloat16"
    assert _param_dtypes(model) == {jnp.dtype("bfloat16")}


# ----------------------------------------------------------------------------- lm-eval
def test_lm_eval_backend_applies_and_rejects_overrides(ckpt_dir, jax_free_model):
    pytest.importorskip("lm_eval")
    from eurollm_jax.inference.lm_eval_backend import EuroLLMJaxLM

    lm = EuroLLMJaxLM.create_from_arg_string(
        f"pretrained={ckpt_dir},attention_impl=xla,compute_dtype=float32,param_dtype=bfloat16,"
        f"max_seq_len=64,scan_layers=false,max_length=48",
        {"batch_size": 4, "max_batch_size": None, "device": None},
    )
    cfg = lm.engine.cfg
    assert cfg.attention_impl == "xla"
    assert (cfg.compute_dtype, cfg.param_dtype) == ("float32", "bfloat16")
    assert (cfg.max_seq_len, cfg.scan_layers, lm.max_length, lm.batch_size) == (64, False, 48, 4)
    with pytest.raises(ValueError, match=r"\['attn_impl'\].*'attention_impl'.*backend's own "
                                         r"arguments \[.*'max_length'"):
        EuroLLMJaxLM.create_from_arg_string(f"pretrained={ckpt_dir},attn_impl=xla")
    with pytest.raises(ValueError, match=r"\['vocab_size'\] are fixed by the checkpoint"):
        EuroLLMJaxLM(pretrained=ckpt_dir, vocab_size=1000)
    with pytest.raises(ValueError, match=r"\['attention_impl', 'compute_dtype'\] apply when "
                                         r"loading"):
        EuroLLMJaxLM(model=jax_free_model, tokenizer=lm.tokenizer, attention_impl="xla",
                     compute_dtype="float32")


@pytest.fixture(scope="module")
def jax_free_model():
    """A model already in memory (the backend's model= path)."""
    return create_model(CFG, seed=4)


# ----------------------------------------------------------------------------- launch.serve
def test_serve_flags_become_validated_overrides(ckpt_dir, capsys):
    from launch.serve import parse_args

    args = parse_args(["--checkpoint", ckpt_dir, "--attention_impl", "xla", "--max_length", "64",
                       "--override", "scan_layers=false"])
    assert args.overrides == {"scan_layers": False, "attention_impl": "xla", "max_seq_len": 64}
    for flags, message in (
        (["--override", "bogus=1"], r"unknown model override(s) ['bogus']; valid overrides:"),
        (["--override", "d_model=8"], "['d_model'] are fixed by the checkpoint"),
        (["--override", "scan_layers"], "expected KEY=VALUE"),
        (["--override", "compute_dtype=float32"], "use the --compute_dtype flag"),
        (["--attention_impl", "flash"], "attention_impl must be one of"),
    ):
        with pytest.raises(SystemExit) as e:
            parse_args(["--checkpoint", ckpt_dir, *flags])
        assert e.value.code == 2
        assert message in capsys.readouterr().err
    # a preset's random weights may take any field
    assert parse_args(["--preset", "tiny", "--override", "num_layers=1"]).overrides == {
        "num_layers": 1}


def test_serve_main_loads_the_overridden_model(ckpt_dir, monkeypatch):
    import launch.serve
    from eurollm_jax.inference import server

    served = {}
    monkeypatch.setattr(server, "serve", lambda engine, **kw: served.update(engine=engine, **kw))
    assert launch.serve.main([
        "--checkpoint", ckpt_dir, "--compute_dtype", "float32", "--param_dtype", "bfloat16",
        "--attention_impl", "xla", "--max_length", "80", "--override", "scan_layers=false",
        "--log_level", "warning",
    ]) == 0
    cfg = served["engine"].cfg
    assert cfg.attention_impl == "xla"
    assert (cfg.compute_dtype, cfg.param_dtype) == ("float32", "bfloat16")
    assert (cfg.max_seq_len, cfg.scan_layers) == (80, False)
    assert served["host"] == "127.0.0.1"
