"""ChatML for EuroLLM instruct checkpoints: rendering, encoding, stop ids.

Format (EuroLLM-Instruct's chat template)::

    <s><|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{content}<|im_end|>\n
    <|im_start|>assistant\n

``<|im_start|>`` and ``<|im_end|>`` are single special tokens (ids 3 and 4 in EuroLLM's
vocabulary); they are inserted as ids, never left to the tokenizer to split. Generation
for a chat prompt stops on ``<|im_end|>`` (and EOS).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from eurollm_jax.inference import tokenization as tok_lib
from eurollm_jax.inference.engine import as_engine
from eurollm_jax.tokenizer.tokenizer import CHAT_ROLES as ROLES
from eurollm_jax.tokenizer.tokenizer import IM_END, IM_END_ID, IM_START, IM_START_ID


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
    """[(role, text)] after checking roles and content; raises ValueError naming the fault."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...}")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise ValueError(f"message {i} must be an object with 'role' and 'content'")
        role = m.get("role")
        if role not in ROLES:
            raise ValueError(f"message {i}: role must be one of {ROLES}, got {role!r}")
        out.append((role, _content_text(m, i)))
    return out


def render_chatml(
    messages, *, add_generation_prompt: bool = True, system: str | None = None, bos: str = ""
) -> str:
    """The ChatML text of ``messages`` (content as given, as the SFT data is rendered).

    ``system`` adds a system message when the conversation has none.
    """
    turns = validate_messages(messages)
    if system is not None and turns[0][0] != "system":
        turns = [("system", system)] + turns
    text = bos + "".join(f"{IM_START}{role}\n{content}{IM_END}\n" for role, content in turns)
    if add_generation_prompt:
        text += f"{IM_START}assistant\n"
    return text


def _known_marker_ids(tokenizer) -> dict[str, int]:
    """The ChatML marker ids the tokenizer itself knows (attribute or vocabulary piece)."""
    ids = {}
    for marker, attr in ((IM_START, "im_start_id"), (IM_END, "im_end_id")):
        value = tok_lib.int_attribute(tokenizer, attr)
        if value is None and hasattr(tokenizer, "piece_to_id"):
            try:
                candidate = int(tokenizer.piece_to_id(marker))
            except Exception:  # noqa: BLE001 - tokenizer without that piece
                candidate = -1
            if candidate >= 0 and candidate != tok_lib.int_attribute(tokenizer, "unk_id"):
                value = candidate
        if value is not None:
            ids[marker] = value
    return ids


def has_chat_markers(tokenizer) -> bool:
    """Whether the tokenizer has both ChatML markers (an instruct tokenizer)."""
    return len(_known_marker_ids(tokenizer)) == 2


def special_token_ids(tokenizer) -> dict[str, int]:
    """{"<|im_start|>": id, "<|im_end|>": id}: the tokenizer's own, else EuroLLM's 3 and 4."""
    return {IM_START: IM_START_ID, IM_END: IM_END_ID, **_known_marker_ids(tokenizer)}


def encode_chat(
    tokenizer,
    messages,
    *,
    add_generation_prompt: bool = True,
    add_bos: bool = True,
    system: str | None = None,
) -> list[int]:
    """ChatML token ids for ``messages`` (BOS first when ``add_bos``).

    Uses the tokenizer's own ``render_chat`` when it has one (``eurollm_jax.tokenizer``:
    the exact layout SFT trains on), else renders the text and maps the markers to ids.
    """
    turns = validate_messages(messages)
    if system is not None and turns[0][0] != "system":
        turns = [("system", system)] + turns
    if hasattr(tokenizer, "render_chat"):
        ids, _ = tokenizer.render_chat(
            [{"role": r, "content": c} for r, c in turns],
            add_bos=add_bos,
            add_generation_prompt=add_generation_prompt,
        )
        return [int(i) for i in ids]
    text = render_chatml(
        [{"role": r, "content": c} for r, c in turns], add_generation_prompt=add_generation_prompt
    )
    return tok_lib.encode_with_special_tokens(
        tokenizer, text, special_token_ids(tokenizer), add_bos=add_bos
    )


def chat_stop_ids(tokenizer) -> list[int]:
    """Ids that end an assistant turn: <|im_end|> and EOS."""
    ids = [special_token_ids(tokenizer)[IM_END]]
    eos = tok_lib.eos_id(tokenizer)
    if eos is not None and eos not in ids:
        ids.append(eos)
    return ids


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
