"""The SentencePiece tokenizer wrapper: encode/decode, BOS/EOS rules, EuroLLM's special ids.

Loads any SentencePiece ``tokenizer.model`` from a local path (EuroLLM's own included).
EuroLLM's conventions are the defaults: BOS is added, EOS is not, special ids
``<unk>``=0, ``<s>``=1, ``</s>``=2, ``<|im_start|>``=3, ``<|im_end|>``=4.

Decoding is lossless for the models trained by ``train_tokenizer`` (identity normalisation,
byte fallback, no dummy prefix). SentencePiece itself turns a literal U+2581 ("▁", its
whitespace marker) into a space; ``encode`` avoids that by emitting the UTF-8 byte pieces of
U+2581 when the model has byte fallback, so ``decode(encode(x)) == x`` for every string.

ChatML (``render_chat``) is rendered by ``eurollm_jax.tokenizer.chat_template``; this class
implements its ``ChatTokenizer`` protocol (``encode_plain``, ``bos_id``, ``eos_id``,
``im_start_id``, ``im_end_id``).
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterable, Sequence

import numpy as np
import sentencepiece as spm

from eurollm_jax.fileio import atomic_open
from eurollm_jax.tokenizer.base import TokenizerBase
from eurollm_jax.tokenizer.chat_template import CHAT_ROLES, IM_END, IM_START, TokenizerError

UNK_ID, BOS_ID, EOS_ID, IM_START_ID, IM_END_ID = 0, 1, 2, 3, 4
UNK, BOS, EOS = "<unk>", "<s>", "</s>"
SPECIAL_TOKENS: tuple[str, ...] = (UNK, BOS, EOS, IM_START, IM_END)
_SPACE_MARK = "\u2581"

__all__ = [
    "Tokenizer", "TokenizerError", "SPECIAL_TOKENS", "CHAT_ROLES",
    "UNK_ID", "BOS_ID", "EOS_ID", "IM_START_ID", "IM_END_ID",
    "UNK", "BOS", "EOS", "IM_START", "IM_END",
]


class Tokenizer(TokenizerBase):
    """A SentencePiece model with EuroLLM's BOS/EOS rules and ChatML rendering.

    Construct with ``Tokenizer.load(path)`` (a ``tokenizer.model`` file or a directory that
    holds one) or ``Tokenizer.from_serialized(proto_bytes)``.
    """

    def __init__(self, processor: spm.SentencePieceProcessor, path: str | None = None):
        self._sp = processor
        self.path = path
        self._proto = processor.serialized_model_proto()
        pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
        self._piece_to_id = {p: i for i, p in enumerate(pieces)}
        # Control pieces (<s>, </s>, and <|im_start|>/<|im_end|> in our models) plus the chat
        # markers whatever their type (another model may declare them user-defined).
        self._control = np.array(
            [processor.is_control(i) or processor.is_unknown(i) or p in (IM_START, IM_END)
             for i, p in enumerate(pieces)],
            dtype=bool,
        )
        self._space_mark_ids: list[int] | None = None
        byte_ids = [self._piece_to_id.get(f"<0x{b:02X}>") for b in _SPACE_MARK.encode("utf-8")]
        if all(i is not None for i in byte_ids):
            self._space_mark_ids = byte_ids  # type: ignore[assignment]

    # ------------------------------------------------------------------ construction

    @classmethod
    def load(cls, path: str) -> "Tokenizer":
        """Load ``path``: a ``.model`` file or a directory holding ``tokenizer.model``."""
        path = os.path.expanduser(str(path))
        if os.path.isdir(path):
            path = os.path.join(path, "tokenizer.model")
        if not os.path.exists(path):
            raise TokenizerError(
                f"no SentencePiece model at {path!r}: pass the path of a tokenizer.model file "
                "(e.g. EuroLLM's, downloaded beforehand) or of one written by "
                "`python -m launch.train_tokenizer`"
            )
        processor = spm.SentencePieceProcessor()
        try:
            processor.load(path)
        except (OSError, RuntimeError) as e:
            raise TokenizerError(f"{path!r} is not a SentencePiece model: {e}") from e
        return cls(processor, path)

    @classmethod
    def from_serialized(cls, proto: bytes) -> "Tokenizer":
        return cls(spm.SentencePieceProcessor(model_proto=proto))

    def serialized(self) -> bytes:
        return self._proto

    def save(self, path: str) -> None:
        """Write the model proto to ``path`` atomically."""
        with atomic_open(path, "wb") as f:
            f.write(self._proto)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self._proto).hexdigest()

    def __getstate__(self):  # picklable: ship the proto, rebuild the processor
        return {"proto": self._proto, "path": self.path}

    def __setstate__(self, state):
        self.__init__(spm.SentencePieceProcessor(model_proto=state["proto"]), state["path"])

    # ------------------------------------------------------------------ vocabulary

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def unk_id(self) -> int:
        return self._sp.unk_id()

    @property
    def bos_id(self) -> int:
        return self._sp.bos_id()

    @property
    def eos_id(self) -> int:
        return self._sp.eos_id()

    @property
    def pad_id(self) -> int:
        """The model's pad id if it defines one, else ``eos_id`` (EuroLLM has no pad piece).

        Padding is always marked by segment id 0, so the value only has to be a valid id.
        """
        pad = self._sp.pad_id()
        return pad if pad >= 0 else self.eos_id

    @property
    def im_start_id(self) -> int | None:
        return self._piece_to_id.get(IM_START)

    @property
    def im_end_id(self) -> int | None:
        return self._piece_to_id.get(IM_END)

    @property
    def special_ids(self) -> dict[str, int | None]:
        return {
            UNK: self.unk_id, BOS: self.bos_id, EOS: self.eos_id,
            IM_START: self.im_start_id, IM_END: self.im_end_id,
        }

    def piece_to_id(self, piece: str) -> int:
        return self._piece_to_id.get(piece, self.unk_id)

    def id_to_piece(self, i: int) -> str:
        return self._sp.id_to_piece(int(i))

    def is_special(self, i: int) -> bool:
        return bool(self._control[int(i)])

    # ------------------------------------------------------------------ encode / decode

    def encode_plain(self, text: str) -> list[int]:
        """Token ids of ``text`` without BOS/EOS (never a control id such as ``<|im_start|>``)."""
        if _SPACE_MARK not in text or self._space_mark_ids is None:
            return self._sp.encode(text)
        ids: list[int] = []
        for i, part in enumerate(text.split(_SPACE_MARK)):
            if i:
                ids.extend(self._space_mark_ids)
            if part:
                ids.extend(self._sp.encode(part))
        return ids

    def encode_batch(
        self,
        texts: Sequence[str],
        add_bos: bool = True,
        add_eos: bool = False,
        num_threads: int = -1,
    ) -> list[list[int]]:
        """Encode many texts (SentencePiece's C++ thread pool; ``num_threads=-1``: all cores)."""
        texts = list(texts)
        out = self._sp.encode(texts, num_threads=num_threads)
        for i, text in enumerate(texts):
            if _SPACE_MARK in text:
                out[i] = self.encode_plain(text)
        pre = [self.bos_id] if add_bos else []
        post = [self.eos_id] if add_eos else []
        if pre or post:
            out = [pre + ids + post for ids in out]
        return out

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of ``ids``. Special tokens are dropped, or written as their pieces with
        ``skip_special_tokens=False`` (e.g. ``<|im_start|>``)."""
        ids = [int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]
        if skip_special_tokens:
            return self._sp.decode([i for i in ids if not self._control[i]])
        out, run = [], []
        for i in ids:
            if self._control[i]:
                if run:
                    out.append(self._sp.decode(run))
                    run = []
                out.append(self._sp.id_to_piece(i))
            else:
                run.append(i)
        if run:
            out.append(self._sp.decode(run))
        return "".join(out)

    def __repr__(self) -> str:
        return f"Tokenizer(path={self.path!r}, vocab_size={self.vocab_size})"
