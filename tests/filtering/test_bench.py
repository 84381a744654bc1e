"""`python -m launch.bench filter` runs both chains and prints one JSON line with their numbers;
with ``--chain=full`` (the default) both do language ID first: ours ``LanguageID()``,
datatrove's ``LanguageFilter`` reading the same local lid.176 lite file (no download)."""

import json

import pytest

from eurollm_jax.filtering import bench


@pytest.mark.parametrize("chain", bench.CHAINS)
def test_bench_smoke(capsys, chain):
    pytest.importorskip("datatrove")
    pytest.importorskip("spacy")
    assert bench.main(["launch.bench filter", "--docs=60", "--repeats=1",
                       f"--chain={chain}"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["benchmark"] == f"filter_{chain}" and out["docs"] == 60
    assert out["ours_docs_per_s_per_core"] > 0 and out["datatrove_docs_per_s_per_core"] > 0
    assert out["keep_drop_agreement"] >= 0.95
    assert ("ours_second_pass_rate" in out) == (chain == "full")


def test_both_chains_run_the_same_steps():
    pytest.importorskip("datatrove")
    pytest.importorskip("spacy")
    from datatrove.data import Document as DTDocument
    from datatrove.pipeline.filters import LanguageFilter

    from eurollm_jax.filtering import Document, LanguageID
    from eurollm_jax.languages import EU_LANGUAGES

    ours, peer = bench.our_steps("full"), bench.datatrove_steps("full")
    assert isinstance(ours[0], LanguageID) and isinstance(peer[0], LanguageFilter)
    assert [type(s).__name__ for s in ours[1:]] == [type(s).__name__ for s in peer[1:]]
    assert len(bench.our_steps("heuristics")) == len(bench.datatrove_steps("heuristics")) == 4
    assert peer[0].languages == list(EU_LANGUAGES)
    # datatrove's filter reads the lid.176 lite file: same top label and probability as ours
    text = "Ceci est une phrase écrite en français, assez longue pour être reconnue sans doute."
    d = DTDocument(text=text, id="fr")
    assert peer[0].filter(d) is True
    (p,) = LanguageID(second_pass=()).identifier.predict([text])
    assert d.metadata["language"] == p.top_language == "fr"
    assert d.metadata["language_score"] == pytest.approx(p.top_score, abs=1e-4)
    ru = "Это предложение написано на русском языке, а не на одном из официальных языков."
    assert not peer[0].filter(DTDocument(text=ru, id="ru"))
    assert ours[0].filter(Document("ru", ru)) is not None
