"""Write the offline multilingual demo corpus (train/held-out JSONL with text, lang, source).

  python -m launch.make_demo_corpus --output=/tmp/demo_corpus

Text comes from installed packages only (UDHR passages of all 24 EU languages from
gflanguages, spaCy example sentences, Debian iso-codes and gettext catalogues when present);
see eurollm_jax/data/demo_corpus.py. Library use: ``eurollm_jax.data.demo_corpus.build(dir)``.
"""

from absl import app, flags

from eurollm_jax.data import demo_corpus
from eurollm_jax.languages import EU_LANGUAGES

FLAGS = flags.FLAGS
flags.DEFINE_string("output", None, "output directory (train.jsonl, heldout.jsonl, stats.json)")
flags.DEFINE_float("heldout_fraction", 0.1, "share of each (language, source) held out")
flags.DEFINE_integer("gettext_chars", 60_000, "max characters of UI messages per language")
flags.DEFINE_list("sources", list(demo_corpus.SOURCES), "sources to include")
flags.DEFINE_list("languages", list(EU_LANGUAGES), "ISO 639-1 codes")
flags.mark_flag_as_required("output")


def main(argv):
    del argv
    stats = demo_corpus.build(
        FLAGS.output, languages=FLAGS.languages, sources=FLAGS.sources,
        heldout_fraction=FLAGS.heldout_fraction, gettext_chars_per_language=FLAGS.gettext_chars,
    )
    for split, s in stats["splits"].items():
        print(f"{split}: {s['docs']} documents, {s['chars']:,} characters, "
              f"{len(s['by_language'])} languages")
    print(f"sources found: {', '.join(stats['sources_found'])}; "
          f"built in {stats['seconds']:.1f}s -> {FLAGS.output}")
    if stats["missing_languages"]:
        print(f"WARNING: no text for {stats['missing_languages']}")


if __name__ == "__main__":
    app.run(main)
