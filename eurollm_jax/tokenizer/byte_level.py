"""The byte-level tokenizer: EuroLLM's special ids 0-4, then one id per UTF-8 byte.

Vocabulary (261 ids): 0 ``<unk>`` (also the pad id), 1 ``<s>``, 2 ``</s>``,
3 ``<|im_start|>``, 4 ``<|im_end|>``, then byte ``b`` -> ``b + 5``. It needs no model file,
so tests, demos and the trainer's in-memory text/SFT sources use it where a trained
SentencePiece model would be overkill. ``ByteTokenizer`` has the surface of
``eurollm_jax.tokenizer.Tokenizer`` (``encode``/``decode`` and their ``_batch`` forms,
``bos_id``/``eos_id``/``pad_id``/``unk_id``, ``vocab_size``, the marker ids, ``special_ids``,
``piece_to_id``/``id_to_piece``/``is_special``, ``render_chat``) and implements
``chat_template.ChatTokenizer``, so it can stand in for it (inference engine, ChatML).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from eurollm_jax.tokenizer.base import TokenizerBase
from eurollm_jax.tokenizer.tokenizer import (
    BOS,
    BOS_ID,
    EOS,
    EOS_ID,
    IM_END,
    IM_END_ID,
    IM_START,
    IM_START_ID,
    SPECIAL_TOKENS,
    UNK,
    UNK_ID,
    TokenizerError,
)

BYTE_OFFSET = len(SPECIAL_TOKENS)  # byte b has id b + 5
BYTE_VOCAB = 256 + BYTE_OFFSET  # 261


class ByteTokenizer(TokenizerBase):
    """UTF-8 bytes as tokens, with EuroLLM's special ids and BOS/EOS rules (BOS added by
    default, EOS only when asked). Lossless: ``decode(encode(x)) == x``."""

    path = None  # no model file (``Tokenizer.path`` is the loaded file's)

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        return BYTE_VOCAB

    def __len__(self) -> int:
        return BYTE_VOCAB

    @property
    def unk_id(self) -> int:
        return UNK_ID

    @property
    def bos_id(self) -> int:
        return BOS_ID

    @property
    def eos_id(self) -> int:
        return EOS_ID

    @property
    def pad_id(self) -> int:
        """0 (``<unk>``): padding is marked by segment id 0, the value only has to be valid."""
        return UNK_ID

    @property
    def im_start_id(self) -> int:
        return IM_START_ID

    @property
    def im_end_id(self) -> int:
        return IM_END_ID

    @property
    def special_ids(self) -> dict[str, int]:
        return {UNK: UNK_ID, BOS: BOS_ID, EOS: EOS_ID, IM_START: IM_START_ID, IM_END: IM_END_ID}

    def piece_to_id(self, piece: str) -> int:
        """Special pieces by name, bytes as SentencePiece's byte pieces (``<0x41>``), else
        ``unk_id``."""
        if piece in SPECIAL_TOKENS:
            return SPECIAL_TOKENS.index(piece)
        if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            try:
                return int(piece[3:5], 16) + BYTE_OFFSET
            except ValueError:
                pass
        return UNK_ID

    def id_to_piece(self, i: int) -> str:
        i = self._check_id(i)
        return SPECIAL_TOKENS[i] if i < BYTE_OFFSET else f"<0x{i - BYTE_OFFSET:02X}>"

    def is_special(self, i: int) -> bool:
        return self._check_id(i) < BYTE_OFFSET

    @staticmethod
    def _check_id(i) -> int:
        i = int(i)
        if not 0 <= i < BYTE_VOCAB:
            raise TokenizerError(f"id {i} is outside the byte-level vocabulary [0, {BYTE_VOCAB})")
        return i

    # ------------------------------------------------------------------ encode / decode
    def encode_plain(self, text: str) -> list[int]:
        """One id per UTF-8 byte of ``text``, no BOS/EOS (never a special id)."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        return [b + BYTE_OFFSET for b in text.encode("utf-8")]

    def encode_batch(
        self,
        texts: Sequence[str],
        add_bos: bool = True,
        add_eos: bool = False,
        num_threads: int = -1,
    ) -> list[list[int]]:
        """``encode`` of each text (``num_threads`` accepted for ``Tokenizer`` parity)."""
        return [self.encode(t, add_bos, add_eos) for t in texts]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of ``ids`` (invalid UTF-8 as U+FFFD). Special ids are dropped, or written as
        their pieces with ``skip_special_tokens=False``."""
        ids = ids.tolist() if hasattr(ids, "tolist") else ids
        out: list[str] = []
        run = bytearray()
        for i in ids:
            i = self._check_id(i)
            if i >= BYTE_OFFSET:
                run.append(i - BYTE_OFFSET)
            elif not skip_special_tokens:
                out.append(run.decode("utf-8", errors="replace"))
                run.clear()
                out.append(SPECIAL_TOKENS[i])
        out.append(run.decode("utf-8", errors="replace"))
        return "".join(out)

    def __repr__(self) -> str:
        return f"ByteTokenizer(vocab_size={BYTE_VOCAB})"
