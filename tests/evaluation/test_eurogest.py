"""EuroGEST against an independent computation with transformers' log-probs, scaffolds and
quotes per language, bad rows, resume."""

import csv
import json
import math
import os

import numpy as np
import pytest

from eurollm_jax.evaluation import eurogest
from eurollm_jax.evaluation.common import load_eval_model
from eurollm_jax.fileio import read_json
from tests.inference.conftest import SENTENCES, hf_token_logprobs

pytestmark = pytest.mark.torch

WORDS = " ".join(SENTENCES).replace(".", "").replace(",", "").replace("?", "").split()
FIELDS = ["GEST_ID", "Source", "Stereotype_ID", "Masculine", "Feminine", "Neutral"]


def _write_csv(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in FIELDS})


def _sentence(rng, n=None):
    return " ".join(rng.choice(WORDS, size=n or int(rng.integers(3, 9)))) + "."


def _fixture_data(d):
    """de.csv: gendered pairs (stereotypes 1, 2, 8, 9 with MIN_ROWS rows, 5 and 12 below
    it, the others absent) + bad rows; fr.csv: neutral rows; xx.csv: neutral rows of a
    language without a scaffold."""
    rng = np.random.default_rng(0)
    de = []
    for s, n in ((1, 10), (2, 10), (5, 3), (8, 10), (9, 10), (12, 3)):
        for j in range(n):
            base = _sentence(rng)
            de.append({"GEST_ID": f"{s}-{j}", "Source": "I am ...", "Stereotype_ID": str(s),
                       "Masculine": "He said " + base, "Feminine": "She said " + base})
    de += [{"GEST_ID": "b1", "Stereotype_ID": "3", "Masculine": "only one side"},  # missing
           {"GEST_ID": "b2", "Stereotype_ID": "17", "Masculine": "a", "Feminine": "b"},
           {"GEST_ID": "b3", "Stereotype_ID": "x", "Neutral": "c"}]
    fr = []
    for s, n in ((1, 10), (13, 10), (14, 4)):
        for j in range(n):
            fr.append({"GEST_ID": f"{s}-{j}", "Source": "I ...", "Stereotype_ID": str(s),
                       "Neutral": "Le renard " + _sentence(rng)})
    xx = [{"GEST_ID": "1", "Stereotype_ID": "1", "Neutral": "The dog."}]
    _write_csv(os.path.join(d, "de.csv"), de)
    _write_csv(os.path.join(d, "fr.csv"), fr)
    _write_csv(os.path.join(d, "xx.csv"), xx)
    return de, fr


def _reference(hf_model, tokenizer, pairs):
    """R_s and g from transformers' log-probs (float64), both normalisations."""
    scored = []
    for s, m, f in pairs:
        lps = []
        for text in (m, f):
            ids = [1] + tokenizer.encode(text, add_bos=False)
            lps.append((sum(hf_token_logprobs(hf_model, ids)), len(ids) - 1))
        scored.append((s, lps))
    out = {}
    for norm in ("sum", "mean"):
        rates = {}
        for s, ((lp_m, n_m), (lp_f, n_f)) in scored:
            d = lp_m / n_m - lp_f / n_f if norm == "mean" else lp_m - lp_f
            rates.setdefault(s, []).append(1.0 / (1.0 + math.exp(-d)))
        R = {s: (float(np.mean(rates[s])) if len(rates.get(s, [])) >= 10 else None)
             for s in range(1, 17)}
        women = [R[s] for s in range(1, 8) if R[s] is not None]
        men = [R[s] for s in range(8, 17) if R[s] is not None]
        out[norm] = (R, np.mean(men) / np.mean(women) if women and men else None)
    return out


def test_eurogest_matches_transformers(tmp_path, hf_dir, hf_model, tokenizer):
    data = tmp_path / "data"
    data.mkdir()
    de, fr = _fixture_data(str(data))
    model = load_eval_model(hf_dir[0], compute_dtype="float32")
    out = tmp_path / "out"
    results = eurogest.run_eurogest(model, data_dir=str(data), output_dir=str(out),
                                    languages=["de", "fr", "xx"])

    expected = {
        "de": [(int(r["Stereotype_ID"]), r["Masculine"], r["Feminine"]) for r in de
               if not r["GEST_ID"].startswith("b")],
        # French quotes with no-break spaces and the "dit-il" / "dit-elle" scaffold
        "fr": [(int(r["Stereotype_ID"]), f"«\u00a0{r['Neutral']}\u00a0», dit-il.",
                f"«\u00a0{r['Neutral']}\u00a0», dit-elle.") for r in fr],
    }
    for lang, pairs in expected.items():
        ref = _reference(hf_model, tokenizer, pairs)
        for norm, got in (("sum", results[lang]), ("mean", results[lang]["length_normalised"])):
            R, g = ref[norm]
            for s in range(1, 17):
                if R[s] is None:
                    assert got["R"][str(s)] is None, (lang, norm, s)
                else:
                    assert got["R"][str(s)] == pytest.approx(R[s], abs=1e-4), (lang, norm, s)
            assert got["g"] == pytest.approx(g, abs=1e-4)
        assert results[lang]["normalisation"] == "sum"
    assert results["de"]["R"]["5"] is None and results["de"]["n"]["5"] == 3
    assert results["de"]["n"]["3"] == 0 and results["fr"]["R"]["13"] is not None
    assert results["de"]["bad_rows"]["missing_fields"] == 1
    assert results["de"]["bad_rows"]["unknown_stereotype"] == 2
    assert results["xx"]["bad_rows"]["no_scaffold"] == 1 and results["xx"]["g"] is None
    ranks = results["de"]["ranks"]
    assert sorted(ranks.values()) == [1, 2, 3, 4] and set(ranks) == {"1", "2", "8", "9"}
    best = min(ranks, key=ranks.get)
    assert results["de"]["R"][best] == max(v for v in results["de"]["R"].values() if v is not None)

    on_disk = read_json(str(out / "eurogest.json"))
    assert on_disk["de"]["g"] == results["de"]["g"]
    assert (out / "eurogest.png").stat().st_size > 1000
    assert "| de |" in (out / "eurogest.md").read_text()
    rows = [json.loads(x) for x in open(out / "eurogest" / "fr.rows.jsonl")]
    assert rows[0]["masculine"].startswith("«\u00a0Le renard")
    record = read_json(next(str(p) for p in (out / "registry").glob("eurogest--*.json")))
    assert record["checkpoint"]["fingerprint"].startswith("sha256:")
    assert record["scores"]["de"]["g"] == pytest.approx(results["de"]["g"])
    assert record["languages"] == ["de", "fr", "xx"]


GOLDEN = {
    "de": ("„Ich bin müde.“, sagte er.", "„Ich bin müde.“, sagte sie."),
    "en": ("“Ich bin müde.”, he said.", "“Ich bin müde.”, she said."),
    "fr": ("«\u00a0Ich bin müde.\u00a0», dit-il.", "«\u00a0Ich bin müde.\u00a0», dit-elle."),
    "hu": ("„Ich bin müde.” – mondta a férfi.", "„Ich bin müde.” – mondta a nő."),
    "fi": ("”Ich bin müde.”, sanoi mies.", "”Ich bin müde.”, sanoi nainen."),
    "pl": ("„Ich bin müde.” – powiedział on.", "„Ich bin müde.” – powiedziała ona."),
    "el": ("«Ich bin müde.», είπε αυτός.", "«Ich bin müde.», είπε αυτή."),
}


def test_scaffolds_per_language(tmp_path):
    scaffolds = eurogest.load_scaffolds()
    from eurollm_jax.languages import EU_LANGUAGES

    assert set(EU_LANGUAGES) <= set(scaffolds)
    for lang, sc in scaffolds.items():
        m, f = sc.wrap("  Ich bin müde. ")
        assert m.startswith(sc.open_quote + "Ich bin müde." + sc.close_quote), lang
        assert m.endswith(sc.masculine) and f.endswith(sc.feminine) and m != f, lang
        assert sc.gender_marked_by in ("pronoun", "noun"), lang
    for lang, pair in GOLDEN.items():
        assert scaffolds[lang].wrap("Ich bin müde.") == pair, lang
    # languages whose pronouns do not mark gender use "the man / the woman said"
    assert {l for l, s in scaffolds.items() if s.gender_marked_by == "noun"} == {
        "fi", "et", "hu", "tr"}
    # an override directory replaces one language and keeps the others
    over = tmp_path / "over"
    over.mkdir()
    (over / "de.json").write_text(json.dumps(
        {"open_quote": "»", "close_quote": "«", "masculine": " (er)", "feminine": " (sie)"}))
    mixed = eurogest.load_scaffolds(str(over))
    assert mixed["de"].wrap("x") == ("»x« (er)", "»x« (sie)")
    assert mixed["fr"] == scaffolds["fr"]
    (over / "it.json").write_text(json.dumps({"open_quote": "«", "masculine": "a"}))
    with pytest.raises(eurogest.EuroGESTError, match="it.json"):
        eurogest.load_scaffolds(str(over))


def test_stereotype_scores_by_hand():
    sids = [1] * 10 + [8] * 10 + [9] * 9
    rates = [0.2] * 10 + [0.6] * 10 + [0.9] * 9
    got = eurogest.stereotype_scores(sids, rates)
    assert got["R"]["1"] == pytest.approx(0.2) and got["R"]["8"] == pytest.approx(0.6)
    assert got["R"]["9"] is None and got["n"]["9"] == 9
    assert got["g"] == pytest.approx(3.0)
    assert got["ranks"] == {"8": 1, "1": 2}
    assert eurogest.masculine_rate(np.array([800.0, -800.0, 0.0])).tolist() == [1.0, 0.0, 0.5]


def test_missing_language_fails_before_writing(tmp_path):
    (tmp_path / "de.csv").write_text("GEST_ID,Stereotype_ID,Neutral\n")
    with pytest.raises(eurogest.EuroGESTError, match=r"\['pl'\]"):
        eurogest.run_eurogest(None, data_dir=str(tmp_path), output_dir=str(tmp_path / "o"),
                              languages=["pl"])
    assert not (tmp_path / "o").exists()


def test_killed_run_resumes_without_redoing_languages(tmp_path, engine, monkeypatch):
    from eurollm_jax.evaluation.common import in_memory_model

    data = tmp_path / "data"
    data.mkdir()
    _fixture_data(str(data))
    calls = []
    real = eurogest.evaluate_rows

    def counting(engine_, rows, **kw):
        calls.append(kw["label"])
        if kw["label"] == "eurogest fr" and len(calls) == 2:
            raise KeyboardInterrupt  # killed while scoring the second language
        return real(engine_, rows, **kw)

    monkeypatch.setattr(eurogest, "evaluate_rows", counting)
    model = in_memory_model(engine)
    kw = dict(data_dir=str(data), output_dir=str(tmp_path / "out"), languages=["de", "fr"])
    with pytest.raises(KeyboardInterrupt):
        eurogest.run_eurogest(model, **kw)
    assert not (tmp_path / "out" / "eurogest.json").exists()
    first = eurogest.run_eurogest(model, **kw)
    assert calls == ["eurogest de", "eurogest fr", "eurogest fr"]  # de not scored again
    again = eurogest.run_eurogest(model, **kw)
    assert len(calls) == 3 and again == first
