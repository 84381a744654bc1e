"""ChatML at the inference API: OpenAI-style messages in, prompt ids and stop ids out.

The format itself (layout, roles, marker ids, loss masks, the Hugging Face Jinja template)
is ``eurollm_jax.tokenizer.chat_template``; the functions here are thin calls into it that
first accept what the OpenAI API allows (content as a list of text parts, ``None``
content) and require a non-empty conversation. Prompts are rendered exactly as the SFT data
is (BOS, the turns, the generation prompt); generation for a chat prompt stops on the
end-of-turn marker (and EOS). The tokenizer must implement
``chat_template.ChatTokenizer`` (``eurollm_jax.tokenizer.Tokenizer``, ``ByteTokenizer``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from eurollm_jax.inference.engine import as_engine
from eurollm_jax.tokenizer import chat_template


def _content_text(message: Mapping[str, Any], index: int) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        texts = []
        for part in content:
            if (
                not isinstance(part, Mapping)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise ValueError(
                    f"message {index}: only text content parts are supported, got {part!r}"
                )
            texts.append(part["text"])
        return "".join(texts)
    raise ValueError(f"message {index}: content must be a string or a list of text parts")


def validate_messages(messages: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """[(role, text)] of an API conversation: content parts joined, ``None`` content as "",
    roles checked by ``chat_template``; raises ValueError naming the fault."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...}")
    flat = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise ValueError(f"message {i} must be an object with 'role' and 'content'")
        flat.append({"role": m.get("role"), "content": _content_text(m, i)})
    return chat_template.check_messages(flat)


def _conversation(messages, system: str | None) -> list[dict[str, str]]:
    turns = validate_messages(messages)
    if system is not None and turns[0][0] != "system":
        turns = [("system", system)] + turns
    return [{"role": r, "content": c} for r, c in turns]


def render_chatml(
    messages, *, add_generation_prompt: bool = True, system: str | None = None, bos: str = ""
) -> str:
    """The ChatML text of ``messages`` (``chat_template.render_text``).

    ``system`` adds a system message when the conversation has none.
    """
    return chat_template.render_text(
        _conversation(messages, system), add_generation_prompt, bos=bos
    )


def has_chat_markers(tokenizer) -> bool:
    """Whether the tokenizer has both ChatML markers (an instruct tokenizer)."""
    return chat_template.has_markers(tokenizer)


def special_token_ids(tokenizer) -> dict[str, int]:
    """{"<|im_start|>": id, "<|im_end|>": id} of the tokenizer; {} when it has no markers
    (their text is then plain text)."""
    return chat_template.marker_ids(tokenizer) if has_chat_markers(tokenizer) else {}


def encode_chat(
    tokenizer,
    messages,
    *,
    add_generation_prompt: bool = True,
    add_bos: bool = True,
    system: str | None = None,
) -> list[int]:
    """ChatML token ids for ``messages`` (BOS first when ``add_bos``):
    ``chat_template.render_ids``, the exact layout SFT trains on. A tokenizer without the
    ChatML markers raises ``ChatTemplateError`` (a ValueError); one that is not a
    ``ChatTokenizer`` raises TypeError."""
    ids, _ = chat_template.render_ids(
        tokenizer,
        _conversation(messages, system),
        add_bos=add_bos,
        add_generation_prompt=add_generation_prompt,
    )
    return ids


def chat_stop_ids(tokenizer) -> list[int]:
    """Ids that end an assistant turn: <|im_end|> and EOS (``chat_template.stop_ids``)."""
    return chat_template.stop_ids(tokenizer)


def generate_chat(
    model,
    conversations,
    *,
    tokenizer=None,
    max_new_tokens: int = 256,
    system: str | None = None,
    **kwargs,
):
    """Assistant replies for a batch of conversations (lists of messages); stops on
    <|im_end|>. Other keyword arguments as for ``generate``."""
    engine = as_engine(model, tokenizer)
    if engine.tokenizer is None:
        raise ValueError("chat generation needs a tokenizer")
    prompts = [encode_chat(engine.tokenizer, c, system=system) for c in conversations]
    stop_ids = list(kwargs.pop("stop_token_ids", None) or []) + chat_stop_ids(engine.tokenizer)
    return engine.generate(
        prompts, max_new_tokens=max_new_tokens, stop_token_ids=stop_ids, **kwargs
    )
