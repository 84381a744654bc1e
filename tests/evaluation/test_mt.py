"""MT: chrF / BLEU equal sacrebleu's command line on the same files; prompts; resume."""

import json
import shutil
import subprocess

import pytest

from eurollm_jax.evaluation import mt
from eurollm_jax.evaluation.common import in_memory_model
from tests.inference.conftest import SENTENCES

pytest.importorskip("sacrebleu")
SACREBLEU = shutil.which("sacrebleu")


def _cli(ref, hyp, pair):
    out = subprocess.run([SACREBLEU, str(ref), "-i", str(hyp), "-m", "bleu", "chrf", "-l", pair,
                          "-f", "json", "-w", "6"], capture_output=True, text=True, check=True)
    bleu, chrf = json.loads(out.stdout)
    return bleu["score"], chrf["score"], bleu["signature"], chrf["signature"]


@pytest.mark.skipif(SACREBLEU is None, reason="sacrebleu command line not installed")
@pytest.mark.parametrize("pair", ["en-de", "en-zh"])
def test_scores_equal_sacrebleu_cli(tmp_path, pair):
    refs = ["The quick brown fox jumps over the lazy dog.", "Der Hund schläft im Garten.",
            "他们赋有理性和良心。", "Good morning, how are you today?"]
    hyps = ["The fast brown fox jumps over a lazy dog.", "Der Hund schläft.",
            "他们有理性和良心。", "Good morning, how are you?"]
    (tmp_path / "ref.txt").write_text("".join(r + "\n" for r in refs), encoding="utf-8")
    (tmp_path / "hyp.txt").write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    got = mt.score_corpus(hyps, refs, pair.split("-")[1])
    bleu, chrf, bleu_sig, chrf_sig = _cli(tmp_path / "ref.txt", tmp_path / "hyp.txt", pair)
    assert got["bleu"] == pytest.approx(bleu, abs=1e-6) and 0 < bleu < 100
    assert got["chrf"] == pytest.approx(chrf, abs=1e-6) and 0 < chrf < 100
    assert got["bleu_signature"] == bleu_sig and got["chrf_signature"] == chrf_sig
    assert ("tok:zh" in bleu_sig) == (pair == "en-zh")


@pytest.mark.skipif(SACREBLEU is None, reason="sacrebleu command line not installed")
def test_run_mt_end_to_end_and_resume(tmp_path, engine, monkeypatch):
    data = tmp_path / "flores"
    (data / "devtest").mkdir(parents=True)
    en = SENTENCES[:5]
    de = ["Der schnelle braune Fuchs springt über den faulen Hund.", "Ein Sprachmodell liest.",
          SENTENCES[2], "Alle Menschen sind frei.", "Guten Morgen."]
    (data / "devtest" / "eng_Latn.devtest").write_text("\n".join(en) + "\n")  # FLORES-200 names
    (data / "de.devtest").write_text("\n".join(de) + "\n")
    model = in_memory_model(engine)
    out = tmp_path / "out"
    calls = []
    real = mt.translate
    monkeypatch.setattr(mt, "translate", lambda *a, **k: calls.append(a[2:4]) or real(*a, **k))
    kw = dict(data_dir=str(data), output_dir=str(out), directions="en-de,de-en",
              max_new_tokens=8, batch_size=4)
    results = mt.run_mt(model, **kw)
    for pair in ("en-de", "de-en"):
        base = out / "mt" / pair
        hyps = (base.parent / f"{pair}.hyp.txt").read_text().splitlines()
        assert len(hyps) == 5
        bleu, chrf, _, _ = _cli(base.parent / f"{pair}.ref.txt", base.parent / f"{pair}.hyp.txt",
                                pair)
        assert results[pair]["bleu"] == pytest.approx(bleu, abs=1e-6)
        assert results[pair]["chrf"] == pytest.approx(chrf, abs=1e-6)
    # the tiny tokenizer has ChatML markers: EuroLLM-Instruct's chat prompt was used
    record = json.loads(next((out / "registry").glob("mt--*.json")).read_text())
    assert record["config"]["prompt_format"] == "chat"
    assert record["config"]["template"].startswith("Translate the following {src} source text")
    assert set(record["scores"]) == {"en-de", "de-en"}
    # a second run reuses both finished directions
    assert mt.run_mt(model, **kw) == results and calls == [("en", "de"), ("de", "en")]


def test_translate_prompts(engine):
    """Base prompts are '{src}: {source}\\n{tgt}:' text, the greedy continuation up to a
    newline is the translation."""
    from eurollm_jax.inference.tokenization import encode_prompt

    hyps, too_long = mt.translate(engine, ["The cat sat on the mat."], "en", "de",
                                  prompt_format="base", templates=mt.PROMPTS, max_new_tokens=6)
    direct = engine.generate([encode_prompt(engine.tokenizer,
                                            "English: The cat sat on the mat.\nGerman:")],
                             max_new_tokens=6, stop_strings=["\n"])
    assert hyps == [direct[0].text.strip()] and too_long == 0


def test_bad_inputs(tmp_path):
    with pytest.raises(mt.MTError, match="SRC-TGT"):
        mt.parse_directions("en")
    assert mt.parse_directions(None, ["de", "en", "fr"]) == ["en-de", "en-fr"]
    with pytest.raises(mt.MTError, match="no devtest file for 'pl'"):
        mt.language_file(str(tmp_path), "pl")
    (tmp_path / "t.json").write_text(json.dumps({"chat": "{src} to {tgt}"}))
    with pytest.raises(mt.MTError, match="no {source} field"):
        mt.load_templates(str(tmp_path / "t.json"))
    with pytest.raises(mt.MTError, match="does not exist"):
        mt.load_comet(str(tmp_path / "missing.ckpt"))
