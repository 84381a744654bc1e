"""ChatML rendering/encoding and stopping on <|im_end|>."""

import jax
import numpy as np
import pytest
from flax import nnx

from eurollm_jax.inference import chat_stop_ids, encode_chat, generate_chat, render_chatml

pytestmark = pytest.mark.torch  # the fixtures build a transformers model

MESSAGES = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Good morning"},
]


def test_render_chatml_layout():
    assert render_chatml(MESSAGES) == (
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nGood morning<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert render_chatml(MESSAGES[1:], add_generation_prompt=False, system="Be brief.") == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nGood morning<|im_end|>\n"
    )
    parts = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Good "}, {"type": "text", "text": "morning"}],
        }
    ]
    assert render_chatml(parts) == render_chatml(MESSAGES[1:])
    for bad in (
        [],
        "hi",
        [{"role": "robot", "content": "x"}],
        [{"role": "user", "content": [{"type": "image"}]}],
    ):
        with pytest.raises(ValueError):
            render_chatml(bad)


class _PlainTokenizer:
    """A duck-typed engine tokenizer (encode/decode/bos/eos) without the ChatML protocol."""

    def __init__(self, tok):
        self.tok, self.bos_id, self.eos_id = tok, tok.bos_id, tok.eos_id

    def encode(self, text):
        return self.tok.encode(text, add_bos=False)

    def decode(self, ids):
        return self.tok.decode(ids)


def test_encode_chat_uses_special_ids(tokenizer):
    from eurollm_jax.tokenizer import chat_template

    ids = encode_chat(tokenizer, MESSAGES)
    assert ids == tokenizer.render_chat(MESSAGES, add_generation_prompt=True)[0]
    assert ids == chat_template.render_ids(tokenizer, MESSAGES, add_generation_prompt=True)[0]
    assert ids[0] == 1 and ids.count(3) == 3 and ids.count(4) == 2
    enc = lambda t: tokenizer.encode(t, add_bos=False)  # noqa: E731
    assert ids == (
        [1, 3] + enc("system\n") + enc("You are helpful.") + [4] + enc("\n")
        + [3] + enc("user\n") + enc("Good morning") + [4] + enc("\n")
        + [3] + enc("assistant\n")
    )
    assert encode_chat(tokenizer, MESSAGES, add_bos=False, add_generation_prompt=False) == (
        tokenizer.render_chat(MESSAGES, add_bos=False)[0]
    )
    assert chat_stop_ids(tokenizer) == [4, 2]
    # No fallback: a tokenizer without the ChatML protocol is refused, naming what it lacks.
    with pytest.raises(TypeError, match="encode_plain"):
        encode_chat(_PlainTokenizer(tokenizer), MESSAGES)
    with pytest.raises(TypeError, match="im_end_id"):
        chat_stop_ids(_PlainTokenizer(tokenizer))


def test_encode_chat_with_the_byte_tokenizer():
    from eurollm_jax.inference.chat import has_chat_markers, special_token_ids
    from eurollm_jax.tokenizer import ByteTokenizer

    tok = ByteTokenizer()
    ids = encode_chat(tok, MESSAGES[1:], system="Be brief.")
    enc = tok.encode_plain
    assert ids == (
        [1, 3] + enc("system\nBe brief.") + [4] + enc("\n")
        + [3] + enc("user\nGood morning") + [4] + enc("\n")
        + [3] + enc("assistant\n")
    )
    assert tok.decode(ids, skip_special_tokens=False) == "<s>" + render_chatml(
        MESSAGES[1:], system="Be brief."
    )
    assert chat_stop_ids(tok) == [4, 2]
    assert has_chat_markers(tok) and special_token_ids(tok) == {"<|im_start|>": 3, "<|im_end|>": 4}
    assert not has_chat_markers(object()) and special_token_ids(object()) == {}
    with pytest.raises(ValueError, match="role .robot. is not one of"):
        encode_chat(tok, [{"role": "robot", "content": "x"}])


def test_generate_chat_stops_on_im_end(jax_model, tokenizer):
    free = generate_chat(
        jax_model, [MESSAGES], tokenizer=tokenizer, max_new_tokens=8, ignore_eos=True
    )[0]
    assert len(free) == 8 and 4 not in list(free)
    # make <|im_end|> win wherever the third reply token would: copy its output column, scaled
    graphdef, state = nnx.split(jax_model)
    state = jax.tree.map(lambda x: x, state)
    w = state["lm_head"].get_value()
    state["lm_head"] = state["lm_head"].replace(w.at[:, 4].set(3.0 * w[:, free[2]]))
    model = nnx.merge(graphdef, state)
    out = generate_chat(model, [MESSAGES], tokenizer=tokenizer, max_new_tokens=8)[0]
    assert out.finish_reason == "stop" and out.stop == 4
    assert len(out) <= 2 and list(out) == list(free)[: len(out)]
    assert np.isfinite(out.logprobs).all()
