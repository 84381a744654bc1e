"""The offline word tokenizer: identical to spaCy's English blank tokenizer (what datatrove
uses), generated tables in sync with spaCy/datatrove, sentence counts like spaCy's sentencizer,
and sensible splits for Maltese / Irish clitics."""

import pytest

from eurollm_jax.filtering.text import STOP_WORDS, WordTokenizer, count_sentences, get_tokenizer
from eurollm_jax.languages import EU_LANGUAGES


def test_basic_english_splits():
    tok = WordTokenizer("en")
    assert tok.words("Don't stop (it's 10km), e.g. U.S. data... ok!") == [
        "Do", "n't", "stop", "(", "it", "'s", "10", "km", ")", ",", "e.g.", "U.S.", "data", "...",
        "ok", "!"]
    assert tok.words("see https://example.com/a-b. now") == [
        "see", "https://example.com/a-b", ".", "now"]
    assert tok.words("  \n\t ") == []


def test_maltese_and_irish_clitics_stay_words():
    mt = get_tokenizer("mt").words("Il-bniedem għandu d-dritt ta' l-edukazzjoni.")
    assert mt == ["Il-", "bniedem", "għandu", "d-", "dritt", "ta'", "l-", "edukazzjoni", "."]
    ga = get_tokenizer("ga").words("Tá an t-athair anseo.")
    assert ga == ["Tá", "an", "t-", "athair", "anseo", "."]


def test_every_eu_language_has_stop_words():
    assert set(STOP_WORDS) >= set(EU_LANGUAGES)
    assert all(len(v) >= 8 for v in STOP_WORDS.values())


def test_stop_words_occur_in_real_text(eu_sentences):
    """Each language's UDHR passage contains at least 2 of its stop words (Gopher's rule)."""
    from tests.filtering.conftest import sentences_by_language

    for lang, sents in sentences_by_language(eu_sentences).items():
        words = set(get_tokenizer(lang).words(" ".join(sents)))
        assert len(words & set(STOP_WORDS[lang])) >= 2, lang


def test_tokens_identical_to_spacy_english(english_docs):
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    tok = WordTokenizer("en")
    texts = [d.text for d in english_docs[:300]]
    texts += ["I'm gonna  :) test ''quotes'' and (-: emoticons", "C'mon, y'all can't say $5.00!"]
    for t in texts:
        ref = [x.text.strip() for x in nlp(t) if x.text.strip()]
        assert tok.words(t) == ref, t[:200]


def test_sentence_counts_match_spacy_sentencizer(english_docs):
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    tok = WordTokenizer("en")
    lines = [line.strip() for d in english_docs[:200] for line in d.text.splitlines()
             if len(line.split()) >= 3][:1500]
    mismatches = [line for line in lines
                  if count_sentences(tok.words(line)) != len(list(nlp(line).sents))]
    assert len(mismatches) <= len(lines) * 0.002, mismatches[:5]


def test_generated_tables_match_installed_peers():
    spacy = pytest.importorskip("spacy")
    from spacy.pipeline.sentencizer import Sentencizer

    from eurollm_jax.filtering import _rules_data as rd
    from eurollm_jax.filtering._en_exceptions import EN_EXCEPTIONS

    t = spacy.blank("en").tokenizer
    assert rd.PREFIX_PATTERN == t.prefix_search.__self__.pattern
    assert rd.SUFFIX_PATTERN == t.suffix_search.__self__.pattern
    assert rd.INFIX_PATTERN == t.infix_finditer.__self__.pattern
    assert set(EN_EXCEPTIONS) == {k for k in t.rules if k.strip()}
    assert rd.SENTENCE_PUNCT == frozenset(Sentencizer.default_punct_chars)
    dt_text = pytest.importorskip("datatrove.utils.text")
    assert rd.PUNCTUATION == dt_text.PUNCTUATION
    assert rd.TERMINAL_PUNCTUATION == frozenset(dt_text.TERMINAL_PUNCTUATION)
