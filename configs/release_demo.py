"""Release declarations of the end-to-end demo's tiny model (``launch/demo.py`` stage "release").

Only what no run file records is declared here: the licence, the contact, the uses, and per
data source (the ``source`` names of the demo corpus, ``eurollm_jax.data.demo_corpus``) its
licence, consent and robots.txt status. The process items are left empty on purpose: the
demo's card shows the warnings a real release must resolve.
"""

from configs.filter_default import section_config
from eurollm_jax.release.config import ReleaseConfig

NOT_CRAWLED = "not crawled: read from files of installed software packages"

SOURCES = {
    "udhr": {"licence": "UDHR translations may be freely reproduced (UN OHCHR); gflanguages package: Apache-2.0",
             "consent": "published text of a public document", "robots": NOT_CRAWLED,
             "collection": "gflanguages package sample texts", "url": "https://pypi.org/project/gflanguages/"},
    "spacy": {"licence": "MIT (spaCy)", "consent": "example sentences written for the library",
              "robots": NOT_CRAWLED, "collection": "spacy/lang/<l>/examples.py",
              "url": "https://github.com/explosion/spaCy"},
    "iso_codes": {"licence": "LGPL-2.1-or-later (Debian iso-codes)",
                  "consent": "translations contributed to the project", "robots": NOT_CRAWLED,
                  "collection": "/usr/share/locale/<l>/LC_MESSAGES/iso_*.mo"},
    "gettext": {"licence": "the licence of each installed Debian package (mostly GPL/LGPL)",
                "consent": "translations contributed to free-software projects", "robots": NOT_CRAWLED,
                "collection": "translated user-interface messages under /usr/share/locale"},
}


def get_config():
    config = section_config(ReleaseConfig())
    m = config.model
    m.name = "eurollm-jax-demo-tiny"
    m.license = "apache-2.0"
    m.contact = "the eurollm_jax maintainers (issue tracker of the repository)"
    m.description = ("A tiny EuroLLM-architecture model trained by the eurollm_jax end-to-end demo "
                     "on a few hundred kilobytes of text in the 24 EU languages. It exists to test "
                     "the pipeline, not to be used.")
    m.tags = ("eurollm_jax", "demo")
    m.intended_uses = ("testing the eurollm_jax pipeline end to end (filtering to release)",)
    m.out_of_scope_uses = ("any use that needs correct or fluent text: the model is tiny and "
                           "barely trained", "any user-facing application")
    m.limitations = ("trained on a few hundred kilobytes; its output is mostly noise",)
    d = config.data
    d.sources = SOURCES
    d.collection = ("only text that ships inside installed packages (no web crawling, no downloads)",
                    "printf-style templates and non-prose user-interface strings are skipped",
                    "a deterministic 10% of documents per language and source is held out")
    d.intended_uses = ("training and evaluating tiny test models of the pipeline",)
    d.limitations = ("user-interface messages and legal text, not natural running text",
                     "very small: a few thousand tokens per language")
    config.energy.region = "EU-27"
    return config
