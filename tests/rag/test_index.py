"""Indexes: BM25 scores against a NumPy reference of Lucene's BM25, per-language scopes,
exact dense search against a brute-force sort, FAISS against exact, save/load round trips,
input errors, and the retrieval contract of ``launch.rag index|retrieve``."""

import json
import math

import numpy as np
import pytest

from eurollm_jax.rag import ALL, Passage, build_index, load_index, recall_at_k, tokenize
from eurollm_jax.rag.cli import main as rag_main

PASSAGES = [
    Passage("de-1", "Berlin ist die Hauptstadt von Deutschland und hat viele Museen.", "de"),
    Passage("de-2", "Der Rhein fließt durch Köln und Düsseldorf.", "de"),
    Passage("de-3", "Die Hauptstadt Österreichs ist Wien.", "de"),
    Passage("en-1", "Berlin is the capital of Germany and has many museums.", "en"),
    Passage("en-2", "The Rhine flows through Cologne and Düsseldorf.", "en", "Rivers"),
    Passage("en-3", "Vienna is the capital of Austria.", "en"),
    Passage("fr-1", "Paris est la capitale de la France.", "fr"),
]


def bm25_reference(docs, query, k1=1.5, b=0.75):
    """Lucene's BM25 (since Lucene 8: no (k1 + 1) factor, which does not change rankings;
    idf = ln(1 + (N - df + .5) / (df + .5))) over token lists, in NumPy."""
    n = len(docs)
    avgdl = np.mean([len(d) for d in docs])
    scores = np.zeros(n)
    for term in set(query):
        df = sum(term in d for d in docs)
        if df == 0:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, d in enumerate(docs):
            tf = d.count(term)
            scores[i] += idf * tf / (tf + k1 * (1 - b + b * len(d) / avgdl))
    return scores


class HashEncoder:
    """A deterministic bag-of-words encoder (test stand-in for a dense model)."""

    name, dim = "hash", 64

    def encode(self, texts, kind):
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in tokenize(t, "en"):
                out[i, sum(map(ord, w)) % self.dim] += 1.0
        out += 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def spec(self):
        return {"kind": "hash"}


def test_tokenize_is_language_aware():
    assert tokenize("Die Hauptstadt ist Wien", "de") == ["hauptstadt", "wien"]  # stopwords
    assert tokenize("The capital IS Vienna", "en") == ["capital", "vienna"]
    zh = tokenize("东京是首都", "zh")
    assert zh[:3] == ["东", "京", "是"] and "东京" in zh
    # no Greek list: only one-letter words go
    assert tokenize("Η Αθήνα είναι πρωτεύουσα", "el") == ["αθήνα", "είναι", "πρωτεύουσα"]


def test_bm25_scores_match_the_reference_per_scope():
    index = build_index(PASSAGES, "bm25")
    assert sorted(index.scopes) == [ALL, "de", "en", "fr"]
    query = "Hauptstadt Berlin Museen"
    for scope in (ALL, "de"):
        members = [PASSAGES[i] for i in index.scopes[scope]]
        ref = bm25_reference([tokenize(p.full_text, p.language) for p in members],
                             tokenize(query, "de"))
        hits = index.search([query], k=len(members), scope=scope, languages=["de"])[0]
        got = {h.doc_id: h.score for h in hits}
        for p, r in zip(members, ref):
            assert got[p.id] == pytest.approx(r, rel=1e-5, abs=1e-6)
        assert hits[0].doc_id == "de-1"
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # a query in another scope only sees that language's passages
    en_hits = index.search(["capital"], 5, scope="en")[0]
    assert {h.doc_id for h in en_hits} <= {"en-1", "en-2", "en-3"}
    # no known term: k hits, all scored 0
    assert [h.score for h in index.search(["zzzz"], 2, scope="fr")[0]] == [0.0]


def test_dense_exact_search_is_a_sorted_matmul_and_faiss_agrees(tmp_path):
    rng = np.random.default_rng(0)
    n = 3000
    passages = [Passage(f"p{i}", f"text {i}", "en" if i % 3 else "de") for i in range(n)]
    centers = rng.normal(size=(30, 16)).astype(np.float32)

    class Fixed:
        name, dim = "fixed", 16
        table = centers[rng.integers(0, 30, n)] + 0.3 * rng.normal(size=(n, 16))

        def encode(self, texts, kind):
            rows = np.stack([self.table[int(t.split()[-1])] for t in texts]).astype(np.float32)
            return rows / np.linalg.norm(rows, axis=1, keepdims=True)

        def spec(self):
            return {"kind": "fixed"}

    enc = Fixed()
    exact = build_index(passages, "e5", encoder=enc, backend="exact")
    queries = [f"q {i}" for i in range(0, n, 37)]
    hits = exact.search(queries, 5)
    emb = exact.embeddings
    for q, hs in zip(queries, hits):
        scores = emb @ enc.encode([q], "query")[0]
        order = np.argsort(-scores, kind="stable")[:5]
        assert [h.doc_id for h in hs] == [f"p{j}" for j in order]
        np.testing.assert_allclose([h.score for h in hs], scores[order], rtol=1e-5)
    de_hits = exact.search(queries, 5, scope="de")
    assert all(int(h.doc_id[1:]) % 3 == 0 for hs in de_hits for h in hs)

    approx = build_index(passages, "e5", encoder=enc, backend="faiss", nprobe=8)
    assert approx.scope_backend(ALL) == "faiss"
    ahits = approx.search(queries, 5)
    truth = [[h.doc_id for h in hs] for hs in hits]
    overlap = np.mean([len(set(t) & {h.doc_id for h in a}) / 5 for t, a in zip(truth, ahits)])
    assert overlap >= 0.9, overlap  # IVF with 8 of ~219 cells probed, clustered data
    approx.save(str(tmp_path / "faiss"))
    again = load_index(str(tmp_path / "faiss"), encoder=enc)
    assert set(again.faiss_indexes) == set(approx.scopes)
    assert [[h.doc_id for h in hs] for hs in again.search(queries, 5)] == \
        [[h.doc_id for h in hs] for hs in ahits]


def test_save_load_round_trip_and_errors(tmp_path):
    for retriever, kwargs in (("bm25", {}), ("e5", {"encoder": HashEncoder()})):
        index = build_index(PASSAGES, retriever, **kwargs)
        before = index.search(["capital Berlin", "Rhein Köln"], 3, scope=["en", "de"])
        path = tmp_path / retriever
        index.save(str(path))
        index.save(str(path))  # overwriting an index is allowed
        loaded = load_index(str(path), encoder=kwargs.get("encoder"))
        after = loaded.search(["capital Berlin", "Rhein Köln"], 3, scope=["en", "de"])
        assert [[h.doc_id for h in hs] for hs in after] == [[h.doc_id for h in hs] for hs in before]
        np.testing.assert_allclose([h.score for hs in after for h in hs],
                                   [h.score for hs in before for h in hs], rtol=1e-6)
    with pytest.raises(KeyError, match="no scope 'it'"):
        loaded.search(["x"], 3, scope="it")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not a RAG index"):
        index.save(str(tmp_path / "other"))
    assert (tmp_path / "other" / "keep.txt").read_text() == "user data"
    with pytest.raises(FileNotFoundError, match="no index.json"):
        load_index(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="unique"):
        build_index(PASSAGES + PASSAGES[:1], "bm25")
    with pytest.raises(ValueError, match="retriever must be one of"):
        build_index(PASSAGES, "tfidf")


def test_recall_at_k():
    from eurollm_jax.rag import Hit

    hits = [[Hit("a", 1.0), Hit("b", 0.5)], [Hit("c", 1.0)], [Hit("d", 1.0), Hit("e", 0.1)]]
    assert recall_at_k(hits, ["b", ["x", "c"], "z"], k=2) == pytest.approx(2 / 3)
    assert recall_at_k(hits, ["b", "c", "e"], k=1) == pytest.approx(1 / 3)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return str(path)


def test_cli_index_and_retrieve_contract(tmp_path, capsys):
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [p.to_dict() for p in PASSAGES])
    queries = write_jsonl(tmp_path / "queries.jsonl", [
        {"id": "q1", "text": "Hauptstadt Deutschland", "language": "de", "relevant": ["de-1"]},
        {"id": "q2", "text": "capital of Austria", "language": "en", "relevant": ["en-3"]}])
    assert rag_main(["index", f"--corpus={corpus}", "--retriever=bm25",
                     f"--output={tmp_path / 'idx'}"]) == 0
    out = tmp_path / "hits.jsonl"
    assert rag_main(["retrieve", f"--index={tmp_path / 'idx'}", f"--queries={queries}", "--k=5",
                     f"--output={out}", "--scope=query", "--relevant_key=relevant"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2"]
    assert rows[0]["hits"][0] == {"doc_id": "de-1", "score": rows[0]["hits"][0]["score"]}
    assert all(set(h) == {"doc_id", "score"} for r in rows for h in r["hits"])
    assert len(rows[1]["hits"]) == 3 and rows[1]["hits"][0]["doc_id"] == "en-3"
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["recall@5"] == 1.0
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "x", "text": "", "language": "de"}])
    from eurollm_jax.rag import CorpusError

    with pytest.raises(CorpusError, match=r"bad.jsonl:1: field 'text'"):
        rag_main(["index", f"--corpus={bad}", "--retriever=bm25", f"--output={tmp_path / 'b'}"])
    assert not (tmp_path / "b").exists()


@pytest.mark.slow  # a SentencePiece model, a torch checkpoint and its conversion (~20 s busy)
def test_cli_model_retriever_from_a_checkpoint(tmp_path, hf_dir, capsys):
    """``index --retriever=model --checkpoint=DIR`` records the checkpoint; ``retrieve`` rebuilds
    the encoder from it and returns the hits the in-process index gives."""
    from eurollm_jax.inference import Engine, load_for_inference
    from eurollm_jax.rag import ModelEncoder

    ckpt, _ = hf_dir
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [p.to_dict() for p in PASSAGES])
    queries = write_jsonl(tmp_path / "q.jsonl", [
        {"id": "q1", "text": "The quick brown fox", "language": "en"},
        {"id": "q2", "text": "Der schnelle braune Fuchs", "language": "de"}])
    assert rag_main(["index", f"--corpus={corpus}", "--retriever=model", f"--checkpoint={ckpt}",
                     f"--output={tmp_path / 'idx'}"]) == 0
    out = tmp_path / "hits.jsonl"
    assert rag_main(["retrieve", f"--index={tmp_path / 'idx'}", f"--queries={queries}", "--k=3",
                     f"--output={out}"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    model, tok = load_for_inference(ckpt)
    index = build_index(PASSAGES, "model", encoder=ModelEncoder(Engine(model, tok)))
    expected = index.search(["The quick brown fox", "Der schnelle braune Fuchs"], 3)
    assert [[h["doc_id"] for h in r["hits"]] for r in rows] == \
        [[h.doc_id for h in hs] for hs in expected]
    np.testing.assert_allclose([h["score"] for r in rows for h in r["hits"]],
                               [h.score for hs in expected for h in hs], rtol=1e-4, atol=1e-5)
