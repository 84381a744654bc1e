"""Tokenizer stage: SentencePiece training, the tokenizers, ChatML, fertility reports.

- ``Tokenizer.load(path)``: any SentencePiece ``tokenizer.model`` (EuroLLM's included);
  ``encode``/``decode`` (and ``_batch``), ``bos_id``/``eos_id``/``pad_id``, ChatML
  ``render_chat(messages) -> (ids, loss_mask)`` with assistant-only masks.
- ``ByteTokenizer()``: the same surface over UTF-8 bytes (ids 0-4 special, byte b -> b+5).
- ``chat_template``: the one ChatML implementation (``render_text``, ``render_ids``,
  ``stop_ids``, the Hugging Face ``CHAT_TEMPLATE_JINJA``) over any ``ChatTokenizer``.
- ``train_tokenizer(corpus, path, TokenizerTrainConfig(...))``: BPE, byte fallback, digits
  split, special ids 0-4, lossless text, temperature sampling over languages with a
  character budget (``python -m launch.train_tokenizer``).
- ``fertility_report(tokenizers, texts_by_language, output_dir)``: tokens per word/char.
"""

from eurollm_jax.tokenizer import chat_template
from eurollm_jax.tokenizer.byte_level import BYTE_OFFSET, BYTE_VOCAB, ByteTokenizer
from eurollm_jax.tokenizer.chat_template import (
    CHAT_ROLES,
    CHAT_TEMPLATE_JINJA,
    ChatTemplateError,
    ChatTokenizer,
)
from eurollm_jax.tokenizer.fertility import (
    fertility,
    fertility_report,
    fertility_table,
    format_table,
    plot_fertility,
    texts_by_language,
)
from eurollm_jax.tokenizer.tokenizer import (
    BOS_ID,
    EOS_ID,
    IM_END,
    IM_END_ID,
    IM_START,
    IM_START_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    Tokenizer,
    TokenizerError,
)
from eurollm_jax.tokenizer.train import (
    TokenizerTrainConfig,
    jsonl_corpus,
    language_weights,
    sample_training_text,
    split_sentences,
    train_and_report,
    train_tokenizer,
)

__all__ = [
    "Tokenizer",
    "TokenizerError",
    "ByteTokenizer",
    "BYTE_OFFSET",
    "BYTE_VOCAB",
    "chat_template",
    "ChatTokenizer",
    "ChatTemplateError",
    "CHAT_ROLES",
    "CHAT_TEMPLATE_JINJA",
    "TokenizerTrainConfig",
    "train_tokenizer",
    "train_and_report",
    "sample_training_text",
    "language_weights",
    "split_sentences",
    "jsonl_corpus",
    "fertility",
    "fertility_table",
    "fertility_report",
    "format_table",
    "plot_fertility",
    "texts_by_language",
    "SPECIAL_TOKENS",
    "UNK_ID",
    "BOS_ID",
    "EOS_ID",
    "IM_START",
    "IM_END",
    "IM_START_ID",
    "IM_END_ID",
]
