"""Fixtures for the inference tests: a tiny SentencePiece tokenizer trained here, and a
random tiny HF LlamaForCausalLM saved next to it and loaded through the converter (fp32)."""

import os

import numpy as np
import pytest

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A European language model reads text in many languages.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Le renard brun rapide saute par-dessus le chien paresseux.",
    "El rápido zorro marrón salta sobre el perro perezoso.",
    "La volpe marrone veloce salta sopra il cane pigro.",
    "O rápido raposo castanho salta sobre o cão preguiçoso.",
    "De snelle bruine vos springt over de luie hond.",
    "Szybki brązowy lis przeskakuje nad leniwym psem.",
    "All human beings are born free and equal in dignity and rights.",
    "They are endowed with reason and conscience.",
    "Question: what is two plus two? Answer: four.",
    "Question: what colour is the sky? Answer: blue.",
    "The cat sat on the mat and looked at the door.",
    "Numbers: one two three four five six seven eight nine ten.",
    "Good morning, how are you today? I am fine, thank you.",
]


VOCAB = 192  # the tokenizer's and the model's vocabulary


def random_prompts(lengths, seed=0):
    """BOS + random ids (>= 5, so no special tokens), one prompt per length."""
    rng = np.random.default_rng(seed)
    return [[1] + rng.integers(5, VOCAB, size=n - 1).tolist() for n in lengths]


def _corpus():
    rng = np.random.default_rng(0)
    words = " ".join(SENTENCES).split()
    lines = list(SENTENCES) * 4
    for _ in range(400):
        lines.append(" ".join(rng.choice(words, size=rng.integers(4, 14))))
    return lines


@pytest.fixture(scope="session")
def tokenizer_path(tmp_path_factory):
    import sentencepiece as spm

    d = tmp_path_factory.mktemp("spm")
    prefix = str(d / "tokenizer")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_corpus()),
        model_prefix=prefix,
        vocab_size=VOCAB,
        model_type="unigram",
        character_coverage=1.0,
        user_defined_symbols=["<|im_start|>", "<|im_end|>"],
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        byte_fallback=False,
        hard_vocab_limit=True,
        minloglevel=2,
        num_threads=1,
    )
    return prefix + ".model"


@pytest.fixture(scope="session")
def tokenizer(tokenizer_path):
    from eurollm_jax.tokenizer import Tokenizer

    tok = Tokenizer.load(tokenizer_path)
    assert tok.piece_to_id("<|im_start|>") == 3 and tok.piece_to_id("<|im_end|>") == 4
    assert tok.vocab_size == VOCAB
    return tok


def make_hf_model(
    seed=0,
    *,
    vocab=VOCAB,
    hidden=64,
    layers=2,
    heads=4,
    kv_heads=2,
    ffn=128,
    init=0.15,
    max_pos=256,
    tie=False,
):
    import torch
    import transformers

    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_pos,
        initializer_range=init,
        rms_norm_eps=1e-5,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=tie,
        attn_implementation="eager",
    )
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # non-trivial norm scales so that a wrong norm shows up
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    return model


@pytest.fixture(scope="session")
def hf_dir(tmp_path_factory, tokenizer_path):
    """(checkpoint dir with tokenizer.model, the torch model)."""
    import shutil

    d = tmp_path_factory.mktemp("hf_tiny")
    model = make_hf_model()
    model.save_pretrained(str(d), safe_serialization=True)
    shutil.copy(tokenizer_path, os.path.join(str(d), "tokenizer.model"))
    return str(d), model


@pytest.fixture(scope="session")
def hf_model(hf_dir):
    return hf_dir[1]


@pytest.fixture(scope="session")
def jax_model(hf_dir):
    from eurollm_jax import load_hf_checkpoint

    return load_hf_checkpoint(hf_dir[0], compute_dtype="float32")


@pytest.fixture(scope="session")
def engine(jax_model, tokenizer):
    from eurollm_jax.inference import Engine

    return Engine(jax_model, tokenizer)


def hf_greedy(hf_model, prompts, max_new_tokens):
    """transformers' greedy generate on left-padded prompts -> generated ids per row,
    cut after the first EOS (inclusive)."""
    import torch

    length = max(len(p) for p in prompts)
    ids = torch.zeros((len(prompts), length), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, length - len(p) :] = torch.tensor(p)
        mask[i, length - len(p) :] = 1
    with torch.no_grad():
        out = hf_model.generate(
            ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=0,
            eos_token_id=2,
        )
    rows = []
    for r in out[:, length:].tolist():
        rows.append(r[: r.index(2) + 1] if 2 in r else r)
    return rows


def hf_token_logprobs(hf_model, ids):
    """log p(ids[t] | ids[<t]) for t >= 1 under the torch model (float64 sums)."""
    import torch

    with torch.no_grad():
        logits = hf_model(torch.tensor([ids])).logits[0].double()
    logp = torch.log_softmax(logits, -1)
    return [float(logp[t - 1, ids[t]]) for t in range(1, len(ids))]


def full_logits(model, seqs, length=64):
    """Logits of each whole sequence without a KV cache (one jitted, right-padded batch)."""
    import jax
    from flax import nnx

    graphdef, state = nnx.split(model)

    @jax.jit
    def fwd(state, ids, seg):
        return nnx.merge(graphdef, state)(ids, segment_ids=seg)

    ids = np.zeros((len(seqs), length), np.int32)
    seg = np.zeros((len(seqs), length), np.int32)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
        seg[i, : len(s)] = 1
    out = np.asarray(fwd(state, ids, seg))
    return [out[i, : len(s)] for i, s in enumerate(seqs)]
