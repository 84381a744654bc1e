"""What every tokenizer of the project shares, given ``encode_plain``, ``decode`` and the
special ids: ``encode`` (BOS first by default, EOS only when asked), ``decode_batch`` and
``render_chat`` (the one ChatML template, ``chat_template.render_ids``). ``Tokenizer``
(SentencePiece) and ``ByteTokenizer`` (UTF-8 bytes) derive from it."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from eurollm_jax.tokenizer import chat_template


class TokenizerBase:
    bos_id: int
    eos_id: int

    def encode_plain(self, text: str) -> list[int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:  # pragma: no cover
        raise NotImplementedError

    def encode(self, text: str, add_bos: bool = True, add_eos: bool = False) -> list[int]:
        """Token ids of ``text``; BOS first by default (EuroLLM), EOS only when asked."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}; use encode_batch")
        ids = self.encode_plain(text)
        return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

    def decode_batch(
        self, batch: Iterable[Iterable[int]], skip_special_tokens: bool = True
    ) -> list[str]:
        return [self.decode(ids, skip_special_tokens) for ids in batch]

    def render_chat(
        self,
        messages: Sequence[Mapping[str, str]],
        add_bos: bool = True,
        add_generation_prompt: bool = False,
    ) -> tuple[list[int], list[int]]:
        """ChatML token ids and a loss mask (1 on the assistant contents and their
        ``<|im_end|>``): ``chat_template.render_ids``; TokenizerError when this vocabulary
        has no ``<|im_start|>``/``<|im_end|>`` pieces or a message is malformed."""
        return chat_template.render_ids(
            self, messages, add_bos=add_bos, add_generation_prompt=add_generation_prompt
        )
