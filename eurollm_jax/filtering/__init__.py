"""Web-data filtering for EuroLLM pre-training: language ID, heuristics, PII, dedup, EuroFilter.

Pipeline (``configs/filter_default.py``; ``python -m launch.filter``; settings typed and
validated in ``config.py``: ``FilterConfig`` for a run, ``FilterJobConfig`` for the launcher):
language ID (fastText lid.176 lite; lingua + py3langid on short or unsure text: docs/language_id.md)
-> URL blocklist -> FineWeb-recipe heuristics (Gopher
repetition / quality, C4, FineWeb; offline tokenizer and stop words for the 24 EU languages)
-> PII redaction -> optional EuroFilter quality classifier -> exact + MinHash dedup; dropped
documents keep their reason, and a per-language drop report is written. Runs locally
(``run_local``: processes, markers, resumable) or on Apache Beam (``beam_runner.run_beam``).

EuroFilter: ``annotate`` grades documents 0-5 with an instruct LLM (``OpenAIClient`` over HTTP
or ``InProcessClient`` over ``eurollm_jax.inference``); ``classifier`` trains the Flax quality
classifier on those grades and ``QualityFilter`` applies it.

Heavy pieces (JAX classifier, Beam, HTTP) are imported lazily from their modules.
"""

from eurollm_jax.filtering.config import FilterConfig, FilterInput, FilterJobConfig
from eurollm_jax.filtering.core import Counters, Document, DocumentFilter, Pipeline, Step
from eurollm_jax.filtering.dedup import DedupConfig, cluster, collision_probability, jaccard
from eurollm_jax.filtering.heuristics import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    fineweb_heuristics,
)
from eurollm_jax.filtering.io import ShardWriter, read_documents, read_records
from eurollm_jax.filtering.langid import LanguageID, LanguageIdentifier
from eurollm_jax.filtering.pii import PIIRedactor, URLBlocklist
from eurollm_jax.filtering.pipeline import build_pipeline
from eurollm_jax.filtering.runner import read_output, run_local
from eurollm_jax.filtering.text import WordTokenizer, get_tokenizer
from eurollm_jax.languages import EU_LANGUAGES

__all__ = [
    "C4QualityFilter",
    "Counters",
    "DedupConfig",
    "Document",
    "DocumentFilter",
    "EU_LANGUAGES",
    "FilterConfig",
    "FilterInput",
    "FilterJobConfig",
    "FineWebQualityFilter",
    "GopherQualityFilter",
    "GopherRepetitionFilter",
    "LanguageID",
    "LanguageIdentifier",
    "PIIRedactor",
    "Pipeline",
    "ShardWriter",
    "Step",
    "URLBlocklist",
    "WordTokenizer",
    "build_pipeline",
    "cluster",
    "collision_probability",
    "fineweb_heuristics",
    "get_tokenizer",
    "jaccard",
    "read_documents",
    "read_output",
    "read_records",
    "run_local",
]
