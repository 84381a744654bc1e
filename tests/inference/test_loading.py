"""load_for_inference: HF dirs, Orbax params dirs, presets, and the errors."""

import pytest

from eurollm_jax.inference import generate, load_for_inference

pytestmark = pytest.mark.torch  # the fixtures build a transformers model


def test_params_dir_and_hf_dir_give_the_same_model(tmp_path, hf_dir, jax_model, tokenizer_path):
    from eurollm_jax.checkpoint import save_params

    save_params(jax_model, str(tmp_path / "params"))
    model, tok = load_for_inference(str(tmp_path / "params"), tokenizer=tokenizer_path)
    hf_model, hf_tok = load_for_inference(hf_dir[0], compute_dtype="float32")
    assert tok is not None and hf_tok is not None  # the HF dir's own tokenizer.model
    prompts = [[1, 5, 9], [1, 7], [1, 8, 8, 8]]
    a = generate(model, prompts, max_new_tokens=6, ignore_eos=True)
    b = generate(hf_model, prompts, max_new_tokens=6, ignore_eos=True)
    assert [list(x) for x in a] == [list(x) for x in b]


def test_loading_errors(tmp_path, tokenizer_path):
    with pytest.raises(ValueError, match="exactly one"):
        load_for_inference()
    with pytest.raises(FileNotFoundError, match="neither"):
        load_for_inference(str(tmp_path))
    with pytest.raises(ValueError, match="do not belong together"):
        load_for_inference(
            preset="tiny",
            tokenizer=tokenizer_path,
            vocab_size=64,
            d_model=64,
            num_layers=1,
            num_heads=2,
            num_kv_heads=1,
            head_dim=32,
            ffn_dim=64,
        )
