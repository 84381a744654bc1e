"""Retrieval indexes: BM25 (``bm25s``) and dense (e5 or our model), per language and mixed.

``build_index(passages, retriever, ...)`` indexes one corpus under several *scopes*: "all" (the
mixed multilingual corpus: MultiRAG, CrossRAG) and one scope per language (monoRAG, and tRAG's
English corpus). ``index.search(texts, k, scope=...)`` returns, per query, a list of ``Hit``
(doc_id, score) best first; ``scope`` is one scope for every query or one per query.

BM25: lower-cased Unicode word tokens with the stopwords of the text's language (bm25s ships
lists for da, de, en, es, fr, it, nl, no, pt, ru, sv, tr, zh, ko), characters and character
bigrams for scripts written without spaces (zh, ja, th); Lucene's BM25 (k1=1.5, b=0.75;
Lucene 8's form, without the constant (k1 + 1) factor).
Dense: L2-normalised embeddings and the inner product; exact search (a NumPy matmul and a
partial sort) for scopes below ``faiss_min`` passages, a FAISS IVF index (``nlist`` ~ 4 sqrt(N)
k-means cells, ``nprobe`` searched) above it (``backend="auto"``), or either one forced.

``index.save(dir)`` / ``load_index(dir)``: ``index.json`` (retriever, scopes, encoder spec),
``passages.jsonl``, and per scope the bm25s files, or ``embeddings.npy`` (all passages) plus a
``faiss/<scope>.index`` where FAISS is used. Writes go to a temporary directory renamed at the
end, so a crash never leaves half an index under ``dir``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import tempfile
from typing import NamedTuple, Sequence

import numpy as np

from eurollm_jax import fileio
from eurollm_jax.rag.corpus import Passage, passage_from_dict

RETRIEVERS = ("bm25", "e5", "model")
BACKENDS = ("auto", "exact", "faiss")
ALL = "all"
FORMAT_VERSION = 1

_STOPWORD_LISTS = {"da": "DANISH", "de": "GERMAN", "en": "EN", "es": "SPANISH", "fr": "FRENCH",
                   "it": "ITALIAN", "nl": "DUTCH", "no": "NORWEGIAN", "pt": "PORTUGUESE",
                   "ru": "RUSSIAN", "sv": "SWEDISH", "tr": "TURKISH", "zh": "CHINESE",
                   "ko": "KOREAN"}
_UNSPACED = ("zh", "ja", "th")
_WORD = re.compile(r"\w+", re.UNICODE)


class Hit(NamedTuple):
    doc_id: str
    score: float

    def to_dict(self) -> dict:
        return {"doc_id": self.doc_id, "score": self.score}


def stopwords(language: str) -> frozenset:
    name = _STOPWORD_LISTS.get(language.split("_")[0].lower())
    if name is None:
        return frozenset()
    import bm25s.stopwords as lists

    return frozenset(getattr(lists, f"STOPWORDS_{name}"))


def tokenize(text: str, language: str) -> list[str]:
    """BM25 terms of ``text`` read as ``language`` (see the module docstring)."""
    lang = language.split("_")[0].lower()
    words = _WORD.findall(text.casefold())
    if lang in _UNSPACED:
        out = []
        for w in words:
            out.extend(w)
            out.extend(w[i:i + 2] for i in range(len(w) - 1))
        return out
    stop = stopwords(lang)
    return [w for w in words if w not in stop and (len(w) > 1 or w.isdigit())]


def _exact_topk(matrix: np.ndarray, queries: np.ndarray, k: int):
    """(scores, positions) [Q, k'] of the k largest inner products, best first."""
    k = min(k, matrix.shape[0])
    scores_all, positions_all = [], []
    for start in range(0, queries.shape[0], 256):
        s = queries[start:start + 256] @ matrix.T
        top = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < s.shape[1] else \
            np.tile(np.arange(s.shape[1]), (s.shape[0], 1))
        ts = np.take_along_axis(s, top, axis=1)
        order = np.argsort(-ts, axis=1, kind="stable")
        positions_all.append(np.take_along_axis(top, order, axis=1))
        scores_all.append(np.take_along_axis(ts, order, axis=1))
    if not scores_all:
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
    return np.concatenate(scores_all), np.concatenate(positions_all)


def faiss_nlist(n: int) -> int:
    """IVF cells for n vectors: ~4 sqrt(n), and at least 39 training points per cell."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def _import_faiss():
    try:
        import faiss
    except ImportError as e:
        raise ImportError("FAISS search needs faiss-cpu: pip install 'eurollm_jax[rag]'") from e
    return faiss


@dataclasses.dataclass
class RetrievalIndex:
    """A built index (see the module docstring); ``search`` is the retrieval contract."""

    retriever: str
    passages: list[Passage]
    scopes: dict[str, np.ndarray]          # scope -> positions into passages
    encoder: object = None                 # dense retrievers
    encoder_spec: dict | None = None
    embeddings: np.ndarray | None = None   # dense: [N, D], L2-normalised
    backend: str = "auto"
    faiss_min: int = 50_000
    nprobe: int = 16
    bm25: dict = dataclasses.field(default_factory=dict)     # scope -> bm25s.BM25
    faiss_indexes: dict = dataclasses.field(default_factory=dict)

    @property
    def languages(self) -> list[str]:
        return sorted(s for s in self.scopes if s != ALL)

    def scope_backend(self, scope: str) -> str:
        if self.retriever == "bm25":
            return "bm25"
        if self.backend == "auto":
            return "faiss" if len(self.scopes[scope]) >= self.faiss_min else "exact"
        return self.backend

    def _check_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            raise KeyError(f"no scope {scope!r} in this index; scopes: {sorted(self.scopes)} "
                           "(a language code of the corpus, or 'all' for the mixed corpus)")

    def search(self, texts: Sequence[str], k: int = 5, *, scope: str | Sequence[str] = ALL,
               languages: Sequence[str] | None = None) -> list[list[Hit]]:
        """Top-``k`` hits per query text. ``scope``: one scope or one per query; ``languages``:
        the query languages (BM25 stopwords; default each query's scope, else English)."""
        texts = list(texts)
        scopes = [scope] * len(texts) if isinstance(scope, str) else list(scope)
        if len(scopes) != len(texts):
            raise ValueError(f"{len(scopes)} scopes for {len(texts)} queries")
        if languages is None:
            languages = [s if s != ALL else "en" for s in scopes]
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        for s in set(scopes):
            self._check_scope(s)
        out: list[list[Hit] | None] = [None] * len(texts)
        vectors = None
        if self.retriever != "bm25" and texts:
            vectors = self.encoder.encode(texts, "query")
        for s in dict.fromkeys(scopes):
            rows = [i for i, x in enumerate(scopes) if x == s]
            positions = self.scopes[s]
            if self.retriever == "bm25":
                scores, local = self._bm25_search(s, [texts[i] for i in rows],
                                                  [languages[i] for i in rows], k)
            elif self.scope_backend(s) == "faiss":
                scores, local = self._faiss_search(s, vectors[rows], k)
            else:
                scores, local = _exact_topk(self.embeddings[positions], vectors[rows], k)
            for r, i in enumerate(rows):
                out[i] = [Hit(self.passages[positions[j]].id, float(sc))
                          for sc, j in zip(scores[r], local[r]) if j >= 0]
        return out

    # ------------------------------------------------------------------ BM25

    def _bm25_search(self, scope, texts, languages, k):
        retriever = self.bm25[scope]
        n = len(self.scopes[scope])
        k = min(k, n)
        tokens = [tokenize(t, lang) or ["\u0000"] for t, lang in zip(texts, languages)]
        vocab = retriever.vocab_dict
        # bm25s wants every query term known: unknown terms score zero anyway
        tokens = [[w for w in q if w in vocab] for q in tokens]
        scores = np.zeros((len(texts), k), np.float32)
        local = np.full((len(texts), k), -1, np.int64)
        for r, q in enumerate(tokens):
            if not q:  # no query term in the vocabulary: every passage scores 0
                local[r] = np.arange(k)
                continue
            s = retriever.get_scores(q)
            top = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
            top = top[np.lexsort((top, -s[top]))]  # best first, ties by corpus order
            local[r], scores[r] = top, s[top]
        return scores, local

    # ------------------------------------------------------------------ FAISS

    def _faiss_index(self, scope):
        if scope not in self.faiss_indexes:
            faiss = _import_faiss()
            vectors = np.ascontiguousarray(self.embeddings[self.scopes[scope]], np.float32)
            n, d = vectors.shape
            nlist = faiss_nlist(n)
            # the factory's index owns its coarse quantizer (no Python-side lifetime to manage)
            index = faiss.index_factory(d, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
            index.train(vectors)
            index.add(vectors)
            self.faiss_indexes[scope] = index
        return self.faiss_indexes[scope]

    def _faiss_search(self, scope, vectors, k):
        index = _import_faiss().extract_index_ivf(self._faiss_index(scope))
        index.nprobe = min(self.nprobe, index.nlist)
        scores, local = index.search(np.ascontiguousarray(vectors, np.float32),
                                     min(k, index.ntotal))
        return scores, local

    # ------------------------------------------------------------------ disk

    def save(self, directory: str) -> None:
        parent = os.path.dirname(os.path.abspath(directory))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".rag-index-", dir=parent)
        try:
            meta = {"format": FORMAT_VERSION, "retriever": self.retriever,
                    "scopes": {s: p.tolist() for s, p in self.scopes.items()},
                    "encoder": self.encoder_spec, "backend": self.backend,
                    "faiss_min": self.faiss_min, "nprobe": self.nprobe,
                    "num_passages": len(self.passages)}
            fileio.write_jsonl(os.path.join(tmp, "passages.jsonl"),
                               [p.to_dict() for p in self.passages])
            if self.retriever == "bm25":
                for s, retriever in self.bm25.items():
                    retriever.save(os.path.join(tmp, "bm25", s), show_progress=False)
            else:
                np.save(os.path.join(tmp, "embeddings.npy"), self.embeddings)
                faiss_scopes = [s for s in self.scopes if self.scope_backend(s) == "faiss"]
                if faiss_scopes:
                    faiss = _import_faiss()
                    os.makedirs(os.path.join(tmp, "faiss"))
                    for s in faiss_scopes:
                        faiss.write_index(self._faiss_index(s),
                                          os.path.join(tmp, "faiss", f"{s}.index"))
            fileio.write_json(os.path.join(tmp, "index.json"), meta)
            if os.path.exists(directory):
                if not os.path.exists(os.path.join(directory, "index.json")):
                    raise FileExistsError(f"{directory} exists and is not a RAG index; "
                                          "choose a new --output directory")
                shutil.rmtree(directory)
            os.rename(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _bm25_for(passages: Sequence[Passage]):
    try:
        import bm25s
    except ImportError as e:
        raise ImportError("the bm25 retriever needs bm25s: pip install 'eurollm_jax[rag]'") from e
    retriever = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    corpus = [tokenize(p.full_text, p.language) or ["\u0000"] for p in passages]
    retriever.index(corpus, show_progress=False)
    return retriever


def _scopes(passages: Sequence[Passage]) -> dict[str, np.ndarray]:
    scopes = {ALL: np.arange(len(passages))}
    for lang in sorted({p.language for p in passages}):
        scopes[lang] = np.array([i for i, p in enumerate(passages) if p.language == lang])
    return scopes


def build_index(passages: Sequence[Passage], retriever: str, *, encoder=None,
                backend: str = "auto", faiss_min: int = 50_000, nprobe: int = 16,
                per_language: bool = True) -> RetrievalIndex:
    """Index ``passages`` for ``retriever`` ("bm25", "e5" or "model" with ``encoder=
    ModelEncoder(engine)``) under the mixed scope and, with ``per_language``, one per language."""
    if retriever not in RETRIEVERS:
        raise ValueError(f"retriever must be one of {RETRIEVERS}, got {retriever!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    passages = list(passages)
    if not passages:
        raise ValueError("no passages to index")
    ids = [p.id for p in passages]
    if len(set(ids)) != len(ids):
        raise ValueError("passage ids must be unique")
    scopes = _scopes(passages)
    if not per_language:
        scopes = {ALL: scopes[ALL]}
    index = RetrievalIndex(retriever=retriever, passages=passages, scopes=scopes,
                           backend=backend, faiss_min=faiss_min, nprobe=nprobe)
    if retriever == "bm25":
        index.bm25 = {s: _bm25_for([passages[i] for i in pos]) for s, pos in scopes.items()}
        return index
    if encoder is None:
        if retriever == "model":
            raise ValueError("the model retriever needs encoder=ModelEncoder(engine)")
        from eurollm_jax.rag.encoders import E5Encoder

        encoder = E5Encoder()
    index.encoder, index.encoder_spec = encoder, encoder.spec()
    index.embeddings = encoder.encode([p.full_text for p in passages], "passage")
    for s in scopes:
        if index.scope_backend(s) == "faiss":
            index._faiss_index(s)
    return index


def load_index(directory: str, *, encoder=None, engine=None) -> RetrievalIndex:
    """An index saved by ``RetrievalIndex.save``; dense indexes rebuild their encoder from the
    stored spec (``engine`` for a model index built in process, or pass ``encoder``)."""
    meta_path = os.path.join(directory, "index.json")
    if not os.path.exists(meta_path):
        raise FileNotFoundError(f"{directory}: no index.json; build one with "
                                "`python -m launch.rag index --corpus=FILE --output=DIR`")
    meta = fileio.read_json(meta_path)
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{directory}: index format {meta.get('format')} != {FORMAT_VERSION}; "
                         "rebuild the index")
    passages = [passage_from_dict(r, f"{directory}/passages.jsonl")
                for r in fileio.read_jsonl(os.path.join(directory, "passages.jsonl"))]
    index = RetrievalIndex(retriever=meta["retriever"], passages=passages,
                           scopes={s: np.asarray(p, np.int64) for s, p in meta["scopes"].items()},
                           encoder_spec=meta["encoder"], backend=meta["backend"],
                           faiss_min=meta["faiss_min"], nprobe=meta["nprobe"])
    if index.retriever == "bm25":
        import bm25s

        for s in index.scopes:
            index.bm25[s] = bm25s.BM25.load(os.path.join(directory, "bm25", s),
                                            show_progress=False, verbosity=0)
        return index
    index.embeddings = np.load(os.path.join(directory, "embeddings.npy"))
    if encoder is None:
        from eurollm_jax.rag.encoders import encoder_from_spec

        encoder = encoder_from_spec(meta["encoder"], engine=engine)
    index.encoder = encoder
    for s in index.scopes:
        path = os.path.join(directory, "faiss", f"{s}.index")
        if index.scope_backend(s) == "faiss" and os.path.exists(path):
            index.faiss_indexes[s] = _import_faiss().read_index(path)
    return index


def recall_at_k(hits: Sequence[Sequence[Hit]], relevant: Sequence[Sequence[str] | str],
                k: int = 5) -> float:
    """The fraction of queries with a relevant passage among their first k hits."""
    if len(hits) != len(relevant):
        raise ValueError(f"{len(hits)} hit lists for {len(relevant)} relevance sets")
    if not hits:
        return float("nan")
    found = 0
    for h, rel in zip(hits, relevant):
        rel = {rel} if isinstance(rel, str) else set(rel)
        found += any(x.doc_id in rel for x in h[:k])
    return found / len(hits)


def hits_to_json(query_id: str, hits: Sequence[Hit]) -> str:
    return json.dumps({"id": query_id, "hits": [h.to_dict() for h in hits]}, ensure_ascii=False)
