"""ChatML, EuroLLM-Instruct's chat template: the one implementation in the project.

This module owns the chat format; the SFT data, the tokenizers (``Tokenizer.render_chat``,
``ByteTokenizer.render_chat``), inference (``eurollm_jax.inference.chat``), the server and
the Hugging Face export all render through it. Layout, per message::

    <|im_start|>{role}\\n{content}<|im_end|>\\n

optionally preceded by BOS (ids only; as in Hugging Face, the tokenizer adds it, not the
template) and followed, with ``add_generation_prompt``, by ``<|im_start|>assistant\\n``.
Roles are ``CHAT_ROLES``; content is used as given (no stripping).

- ``render_text(messages, add_generation_prompt)``: the text, exactly what the Jinja
  template ``CHAT_TEMPLATE_JINJA`` renders (``tokenizer_config.json``'s ``chat_template``).
- ``render_ids(tokenizer, messages)`` -> ``(ids, loss_mask)`` for any ``ChatTokenizer``:
  ``<|im_start|>``/``<|im_end|>`` are inserted as ids (never parsed out of text, so content
  cannot inject them), every other piece is encoded on its own with ``encode_plain``. The
  mask is 1 on exactly the assistant contents and their closing ``<|im_end|>`` (loss on
  assistant turns, end-of-turn trained) and 0 elsewhere (BOS, headers, the newline after
  ``<|im_end|>``, the generation prompt).
- ``stop_ids(tokenizer)``: the ids that end an assistant turn (``<|im_end|>``, then EOS).

It depends on nothing else in the project (the lowest module of ``eurollm_jax.tokenizer``),
which is why the package's ``TokenizerError`` is defined here.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Protocol, Sequence, runtime_checkable

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
CHAT_ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
ASSISTANT = "assistant"  # the role whose turns are training targets and that is prompted for
ROLE_SEPARATOR = "\n"  # between a turn's role and its content
TURN_END = "\n"  # after a turn's <|im_end|>


class TokenizerError(ValueError):
    """A tokenizer file or a chat conversation is not usable as given."""


class ChatTemplateError(TokenizerError):
    """A conversation or a tokenizer that ChatML cannot be rendered for."""


@runtime_checkable
class ChatTokenizer(Protocol):
    """What ``render_ids`` and ``stop_ids`` need of a tokenizer.

    ``encode_plain`` encodes text without BOS/EOS and never yields the marker ids;
    ``im_start_id``/``im_end_id`` are None when the vocabulary lacks the markers.
    ``eurollm_jax.tokenizer.Tokenizer`` and ``ByteTokenizer`` implement it.
    """

    @property
    def bos_id(self) -> int: ...

    @property
    def eos_id(self) -> int: ...

    @property
    def im_start_id(self) -> int | None: ...

    @property
    def im_end_id(self) -> int | None: ...

    def encode_plain(self, text: str) -> list[int]: ...


class _Piece(NamedTuple):
    text: str  # a marker (IM_START / IM_END) when ``marker``, else text to encode
    marker: bool
    target: bool  # trained on (loss mask 1)


# --------------------------------------------------------------------------- layout
def check_messages(messages: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """[(role, content)] of ``messages`` after checking them; ChatTemplateError names the
    faulty message. An empty conversation is allowed (it renders as nothing)."""
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Sequence):
        raise ChatTemplateError(
            f"messages must be a list of {{'role': ..., 'content': ...}}, got "
            f"{type(messages).__name__}"
        )
    turns = []
    for n, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ChatTemplateError(
                f"message {n} must be a mapping with 'role' and 'content', got {message!r}"
            )
        role, content = message.get("role"), message.get("content")
        if role not in CHAT_ROLES:
            raise ChatTemplateError(f"message {n}: role {role!r} is not one of {CHAT_ROLES}")
        if not isinstance(content, str):
            raise ChatTemplateError(f"message {n}: content must be a string, got {content!r}")
        turns.append((role, content))
    return turns


def _pieces(messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool) -> list[_Piece]:
    """The layout: the one place that says what follows what."""
    pieces: list[_Piece] = []
    for role, content in check_messages(messages):
        target = role == ASSISTANT
        pieces += [
            _Piece(IM_START, True, False),
            _Piece(role + ROLE_SEPARATOR, False, False),
            _Piece(content, False, target),
            _Piece(IM_END, True, target),
            _Piece(TURN_END, False, False),
        ]
    if add_generation_prompt:
        pieces += [_Piece(IM_START, True, False), _Piece(ASSISTANT + ROLE_SEPARATOR, False, False)]
    return pieces


def render_text(
    messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = False, *, bos: str = ""
) -> str:
    """The ChatML text of ``messages`` (``bos`` prepended; "" by default, as the Jinja
    template renders it)."""
    return bos + "".join(p.text for p in _pieces(messages, add_generation_prompt))


# --------------------------------------------------------------------------- ids
_PROTOCOL = ("encode_plain", "bos_id", "eos_id", "im_start_id", "im_end_id")


def _check_protocol(tokenizer) -> None:
    if not isinstance(tokenizer, ChatTokenizer):
        missing = [a for a in _PROTOCOL if not hasattr(tokenizer, a)]
        raise TypeError(
            f"tokenizer {type(tokenizer).__name__} lacks {missing}: ChatML needs a "
            f"ChatTokenizer ({', '.join(_PROTOCOL)}), e.g. eurollm_jax.tokenizer.Tokenizer "
            "or ByteTokenizer"
        )


def has_markers(tokenizer) -> bool:
    """Whether ``tokenizer`` implements ``ChatTokenizer`` and has both ChatML markers."""
    return (
        isinstance(tokenizer, ChatTokenizer)
        and tokenizer.im_start_id is not None
        and tokenizer.im_end_id is not None
    )


def marker_ids(tokenizer: ChatTokenizer) -> dict[str, int]:
    """{"<|im_start|>": id, "<|im_end|>": id}; ChatTemplateError when the vocabulary lacks
    them, TypeError when ``tokenizer`` is not a ``ChatTokenizer``."""
    _check_protocol(tokenizer)
    start, end = tokenizer.im_start_id, tokenizer.im_end_id
    if start is None or end is None:
        raise ChatTemplateError(
            f"this tokenizer has no {IM_START}/{IM_END} pieces, so it cannot render ChatML; "
            "train one with `python -m launch.train_tokenizer` (it adds them as ids 3 and 4)"
        )
    return {IM_START: int(start), IM_END: int(end)}


def render_ids(
    tokenizer: ChatTokenizer,
    messages: Sequence[Mapping[str, Any]],
    *,
    add_bos: bool = True,
    add_generation_prompt: bool = False,
) -> tuple[list[int], list[int]]:
    """ChatML token ids of ``messages`` and their loss mask (1 = a training target).

    BOS first when ``add_bos``. Markers become their ids, each other piece (``role\\n``,
    the content, the trailing ``\\n``, ``assistant\\n``) is ``encode_plain``-ed on its
    own, so the mask lines up exactly with the ids.
    """
    markers = marker_ids(tokenizer)
    pieces = _pieces(messages, add_generation_prompt)
    ids: list[int] = []
    if add_bos:
        bos = tokenizer.bos_id
        if bos is None or int(bos) < 0:
            raise ChatTemplateError("add_bos=True but this tokenizer has no BOS id")
        ids.append(int(bos))
    mask = [0] * len(ids)
    for piece in pieces:
        part = [markers[piece.text]] if piece.marker else tokenizer.encode_plain(piece.text)
        ids += [int(i) for i in part]
        mask += [int(piece.target)] * len(part)
    return ids, mask


def stop_ids(tokenizer: ChatTokenizer) -> list[int]:
    """Ids that end an assistant turn: ``<|im_end|>``, then EOS (when it has one)."""
    ids = [marker_ids(tokenizer)[IM_END]]
    eos = tokenizer.eos_id
    if eos is not None and int(eos) >= 0 and int(eos) not in ids:
        ids.append(int(eos))
    return ids


# --------------------------------------------------------------------------- Jinja
def _jinja_literal(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


# Hugging Face's ``chat_template`` (tokenizer_config.json): renders exactly ``render_text``
# (tests/tokenizer/test_chat_template.py checks it with jinja2 and with transformers). Built
# from the constants above; whitespace control on every tag, so HF's trim_blocks /
# lstrip_blocks settings change nothing.
CHAT_TEMPLATE_JINJA = (
    "{%- for message in messages -%}"
    "{%- if message['role'] not in [" + ", ".join(map(_jinja_literal, CHAT_ROLES)) + "] -%}"
    "{{- raise_exception("
    + _jinja_literal("ChatML roles are " + ", ".join(CHAT_ROLES) + "; got ")
    + " + message['role'] | string) -}}"
    "{%- endif -%}"
    "{{- " + _jinja_literal(IM_START) + " + message['role'] + " + _jinja_literal(ROLE_SEPARATOR)
    + " + message['content'] + " + _jinja_literal(IM_END + TURN_END) + " -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- " + _jinja_literal(IM_START + ASSISTANT + ROLE_SEPARATOR) + " -}}"
    "{%- endif -%}"
)
