"""Regenerates tests/filtering/data/eu_sentences.jsonl from text shipped in installed packages.

Sources (nothing is downloaded): the Universal Declaration of Human Rights passages in
``gflanguages`` sample texts (all 24 EU languages) and spaCy's ``spacy/lang/<l>/examples.py``
sentences (20 of them). Run ``python tests/filtering/make_fixtures.py`` after
``pip install gflanguages spacy``; the committed file keeps the tests independent of both.
"""

import importlib
import os
import re

from eurollm_jax.fileio import write_jsonl
from eurollm_jax.languages import EU_LANGUAGES, gflanguages_key, load_gflanguages


def udhr_sentences(lang):
    sample = load_gflanguages()[gflanguages_key(lang)].sample_text
    out = []
    for field, value in sample.ListFields():
        if field.name in ("masthead_full", "masthead_partial", "styles"):
            continue
        for line in value.splitlines():
            for sent in re.split(r"(?<=[.!?;])\s+", line.strip()):
                if len(sent.split()) >= 4:
                    out.append(sent)
    return list(dict.fromkeys(out))


def spacy_sentences(lang):
    try:
        mod = importlib.import_module(f"spacy.lang.{lang}.examples")
    except ImportError:
        return []
    return [s for s in getattr(mod, "sentences", []) if len(s.split()) >= 3]


def main():
    path = os.path.join(os.path.dirname(__file__), "data", "eu_sentences.jsonl")
    write_jsonl(path, ({"lang": lang, "source": src, "text": s}
                       for lang in EU_LANGUAGES
                       for src, sents in (("gflanguages-udhr", udhr_sentences(lang)),
                                          ("spacy-examples", spacy_sentences(lang)))
                       for s in sents))
    print("wrote", path)


if __name__ == "__main__":
    main()
