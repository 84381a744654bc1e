"""The filtering job's typed schema: every setting of ``launch.filter``, its default, its checks.

Each section is a frozen ``eurollm_jax.schema.Section``; its key in the job config is in brackets:

- [input] ``FilterInput``: the document reader's options (``documents.ReaderConfig``, reused, not
  copied) with the filter's defaults: no declared language or source is read (language ID
  labels documents) and over-long records are dropped ``input:document_too_large`` /
  ``input:line_too_large``;
- [output] ``OutputSection``; [language_id] ``LanguageIDSection``; [url_blocklist]
  ``URLBlocklistSection``; [heuristics] ``HeuristicsSection``; [pii] ``PIISection``;
  [quality] ``QualitySection`` (the EuroFilter classifier step); [dedup] ``dedup.DedupConfig``
  (defined with the dedup code); [runner] ``RunnerSection``; [report] ``ReportSection`` (the
  drop report's bias warning).

Together they are ``FilterConfig``: what one filtering run reads (``run_local``, ``run_beam``,
``build_pipeline``, ``process_shard``). ``FilterJobConfig`` is ``launch.filter``'s whole config:
those sections plus the EuroFilter jobs' [annotate] ``AnnotateSection`` and [classifier]
``ClassifierTrainSection`` (``ClassifierConfig``, the classifier's architecture, plus its
training settings).

``Section.from_mapping`` builds them from a config file plus ``--config.x.y=`` overrides, a
ConfigDict or a partial dict (missing sections and keys take the defaults below), coercing
values and failing with errors that name the field (``dedup.bands: expected an integer, got
'x'``) and, for an unknown key, the nearest valid one. ``configs/filter_*.py`` build their
ConfigDicts from these defaults, and the pipeline steps' constructors take theirs from here
(``LanguageID()`` is the recipe's language ID step), so each default is written once.
"""

from __future__ import annotations

import dataclasses
import os

from eurollm_jax.documents import FORMATS, ReaderConfig
from eurollm_jax.filtering.dedup import DedupConfig
from eurollm_jax.filtering.heuristics import FINEWEB_STEPS
from eurollm_jax.languages import EU_LANGUAGES
from eurollm_jax.schema import Section, nearest_key

LANGID_BACKENDS = ("auto", "fasttext", "py3langid")
LANGID_SECOND_PASS = ("lingua", "py3langid", "fasttext")
LANGID_THRESHOLDS: dict = {}  # {language: threshold}: none needed (docs/language_id.md)
ANNOTATE_BACKENDS = ("http", "inprocess")
ANNOTATE_MODES = ("chat", "completions")
CLASSIFIER_ENCODERS = ("hashed", "eurollm")




@dataclasses.dataclass(frozen=True)
class FilterInput(ReaderConfig):
    """The filter's reader options: every ``ReaderConfig`` field, with the filter's defaults."""

    lang_field: str | None = None  # the filter reads no declared language; language ID labels
    source_field: str | None = None
    max_doc_chars: int | None = 1_000_000
    max_line_bytes: int | None = 16 << 20

    def check(self, path):
        super().check(path)
        self.require(path, self.kind == "pretrain", "kind",
                     f"the filter reads text documents ('pretrain'), got {self.kind!r}; "
                     "conversations ('sft') go straight to launch.tokenize --kind=sft")


@dataclasses.dataclass(frozen=True)
class OutputSection(Section):
    format: str = "jsonl.gz"  # kept/ and dropped/ shards: jsonl | jsonl.gz | jsonl.zst | parquet

    def check(self, path):
        self.require_choice(path, "format", FORMATS)


@dataclasses.dataclass(frozen=True)
class LanguageIDSection(Section):
    """Language ID (``langid.LanguageID``; how the defaults were chosen: docs/language_id.md)."""

    enabled: bool = True
    threshold: float = 0.65  # drop documents whose language probability is below this
    languages: tuple[str, ...] | None = EU_LANGUAGES  # languages kept; None or "all": every one
    backend: str = "auto"  # first pass: auto (fastText lid.176 lite, else py3langid) | fasttext
    #                        | py3langid
    max_chars: int = 5000  # characters of each document the first pass reads
    label_groups: dict | None = None  # {label: [labels counted as it]}; None: the defaults
    #                                   (langid.DEFAULT_LABEL_GROUPS / SECOND_PASS_LABEL_GROUPS)
    # {language: threshold}, replacing `threshold` for that language. Croatian's: correct
    # Croatian text shares its probability with Bosnian and Serbian (docs/language_id.md).
    thresholds: dict = dataclasses.field(default_factory=lambda: dict(LANGID_THRESHOLDS))
    # The second pass: identifiers that also read a document when the first pass is unsure
    # (best probability below `confident`) or names a language of a `confusable` group. Their
    # probabilities are averaged with the first pass's; () turns the second pass off.
    second_pass: tuple[str, ...] = ("lingua", "py3langid")  # lingua | py3langid | fasttext
    confident: float = 0.65  # the default threshold: where lid.176 alone would drop a document
    confusable: tuple[str, ...] = ("cs sk", "hr sr bs sl sh mk", "da nb nn no sv", "ga gd")
    second_pass_chars: int = 1000  # characters of each document the second pass reads
    # Texts shorter than this (characters, whitespace collapsed) always get the second pass:
    # lid.176 alone errs on short inputs (on the development messages: 11.6% wrong under 40
    # characters, 1.3% at 120-150, 0.6% at 150-200, none from 200 on; docs/language_id.md).
    second_pass_below_chars: int = 200

    @property
    def kept_languages(self) -> tuple[str, ...] | None:
        """The languages kept, or None for every language."""
        return None if self.languages in (None, ("all",)) else self.languages

    def check(self, path):
        self.require(path, 0.0 <= self.threshold <= 1.0, "threshold",
                     f"must be a probability in [0, 1], got {self.threshold}")
        self.require_choice(path, "backend", LANGID_BACKENDS)
        self.require(path, self.max_chars > 0, "max_chars", "must be positive")
        for lang, value in self.thresholds.items():
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            self.require(path, ok and 0.0 <= value <= 1.0, f"thresholds.{lang}",
                         f"must be a probability in [0, 1], got {value!r}")
        for label, members in (self.label_groups or {}).items():
            self.require(path, isinstance(members, (list, tuple)), f"label_groups.{label}",
                         f"must be a list of labels, got {members!r}")
        for i, name in enumerate(self.second_pass):
            self.require(path, name in LANGID_SECOND_PASS, f"second_pass[{i}]",
                         f"{name!r} is not one of {', '.join(LANGID_SECOND_PASS)}"
                         f"{nearest_key(str(name), LANGID_SECOND_PASS)}")
        self.require(path, 0.0 <= self.confident <= 1.0, "confident",
                     f"must be a probability in [0, 1], got {self.confident}")
        self.require(path, self.second_pass_chars > 0, "second_pass_chars", "must be positive")
        self.require(path, self.second_pass_below_chars >= 0, "second_pass_below_chars",
                     f"must be >= 0 (0: no length rule), got {self.second_pass_below_chars}")
        for i, group in enumerate(self.confusable):
            self.require(path, len(group.split()) >= 2, f"confusable[{i}]",
                         f"a group is two or more space-separated language codes, got {group!r}")


@dataclasses.dataclass(frozen=True)
class URLBlocklistSection(Section):
    enabled: bool = True
    domains: tuple[str, ...] = ()  # blocked domains (and their subdomains)
    substrings: tuple[str, ...] = ()  # blocked if the URL contains one
    domains_file: str = ""  # one blocked domain per line
    url_key: str = "url"  # the metadata field with the document's URL

    @property
    def active(self) -> bool:
        return self.enabled and bool(self.domains or self.substrings or self.domains_file)

    def check(self, path):
        self.require(path, not self.domains_file or os.path.isfile(self.domains_file),
                     "domains_file", f"no such file {self.domains_file!r}")


@dataclasses.dataclass(frozen=True)
class HeuristicsSection(Section):
    """The four FineWeb-recipe filters (``heuristics.fineweb_heuristics``); their thresholds
    are the steps' own defaults (datatrove's), changed here per step or per language."""

    enabled: bool = True
    default_language: str = "en"  # word tokenizer and stop words of documents without a language
    overrides: dict = dataclasses.field(default_factory=dict)  # {step: {parameter: value}}
    per_language: dict = dataclasses.field(default_factory=dict)  # {step: {lang: {param: value}}}

    def check(self, path):
        steps = {cls.name: cls for cls in FINEWEB_STEPS}

        def step_of(field: str, name: str):
            self.require(path, name in steps, f"{field}.{name}",
                         f"unknown heuristic step{nearest_key(name, steps)} "
                         f"(steps: {', '.join(steps)})")
            return steps[name]

        def params(field: str, values, valid) -> None:
            self.require(path, isinstance(values, dict), field,
                         f"must map parameters to values, got {values!r}")
            for key in values:
                self.require(path, key in valid, f"{field}.{key}",
                             f"unknown parameter{nearest_key(key, valid)} "
                             f"(valid: {', '.join(valid)})")

        for name, values in self.overrides.items():
            params(f"overrides.{name}", values, step_of("overrides", name)._PARAMS)
        for name, languages in self.per_language.items():
            cls = step_of("per_language", name)
            self.require(path, isinstance(languages, dict), f"per_language.{name}",
                         f"must map languages to parameters, got {languages!r}")
            for lang, values in languages.items():
                params(f"per_language.{name}.{lang}", values, cls._PARAMS + ("stop_words",))


@dataclasses.dataclass(frozen=True)
class PIISection(Section):
    enabled: bool = True  # redact (documents are kept)
    emails: bool = True
    ip_addresses: bool = True
    phone_numbers: bool = True


@dataclasses.dataclass(frozen=True)
class QualitySection(Section):
    enabled: bool = False  # the EuroFilter classifier step (configs/filter_eurofilter.py)
    model_dir: str = ""  # a classifier saved by `launch.filter --job=train_classifier`
    threshold: float = 3.0  # drop documents whose predicted 0-5 grade is below this
    batch_size: int = 64  # documents per classifier call

    def check(self, path):
        self.require(path, not self.enabled or bool(self.model_dir), "model_dir",
                     "quality.enabled needs a classifier directory, saved by "
                     "`python -m launch.filter --job=train_classifier`")
        self.require(path, 0.0 <= self.threshold <= 5.0, "threshold",
                     f"must be a grade in [0, 5], got {self.threshold}")
        self.require(path, self.batch_size > 0, "batch_size", "must be positive")


@dataclasses.dataclass(frozen=True)
class RunnerSection(Section):
    num_workers: int = 2  # local worker processes (launch.filter --num_workers overrides it)
    batch_size: int = 256  # documents per call of the pipeline's steps
    progress: bool = True  # progress lines on stderr

    def check(self, path):
        self.require(path, self.num_workers > 0, "num_workers", "must be positive")
        self.require(path, self.batch_size > 0, "batch_size", "must be positive")


@dataclasses.dataclass(frozen=True)
class ReportSection(Section):
    """The drop report's bias warning (``report.bias_warnings``): a language whose fraction of
    documents removed by a step (or by all steps) is more than ``bias_ratio`` times the median
    language's, and at least ``min_excess`` above it, is named in report.md and on stderr."""

    bias_ratio: float = 2.0
    min_excess: float = 0.1  # a fraction of documents: 0.03 vs a median of 0.01 is not a warning
    min_documents: int = 10  # languages with fewer documents are listed, never warned about

    def check(self, path):
        self.require(path, self.bias_ratio >= 1.0, "bias_ratio",
                     f"must be >= 1 (a multiple of the median), got {self.bias_ratio}")
        self.require(path, 0.0 <= self.min_excess <= 1.0, "min_excess",
                     f"must be a fraction in [0, 1], got {self.min_excess}")
        self.require(path, self.min_documents >= 1, "min_documents", "must be positive")


@dataclasses.dataclass(frozen=True)
class FilterConfig(Section):
    """What one filtering run reads (the module docstring lists the sections)."""

    input: FilterInput = dataclasses.field(default_factory=FilterInput)
    output: OutputSection = dataclasses.field(default_factory=OutputSection)
    language_id: LanguageIDSection = dataclasses.field(default_factory=LanguageIDSection)
    url_blocklist: URLBlocklistSection = dataclasses.field(default_factory=URLBlocklistSection)
    heuristics: HeuristicsSection = dataclasses.field(default_factory=HeuristicsSection)
    pii: PIISection = dataclasses.field(default_factory=PIISection)
    quality: QualitySection = dataclasses.field(default_factory=QualitySection)
    dedup: DedupConfig = dataclasses.field(default_factory=DedupConfig)
    runner: RunnerSection = dataclasses.field(default_factory=RunnerSection)
    report: ReportSection = dataclasses.field(default_factory=ReportSection)


# ---------------------------------------------------------------- the EuroFilter jobs


@dataclasses.dataclass(frozen=True)
class AnnotateSection(Section):
    """``--job=annotate``: an instruct LLM grades documents 0-5 (``annotate.py``)."""

    backend: str = "http"  # http: an OpenAI-compatible server | inprocess: eurollm_jax.inference
    base_url: str = ""  # http: the server's root, e.g. http://127.0.0.1:8000 (launch.serve)
    model: str = "default"  # http: the model name sent to the server
    mode: str = "chat"  # http: chat (/v1/chat/completions) | completions (/v1/completions)
    api_key: str = ""  # http: sent as a Bearer token when set
    checkpoint: str = ""  # inprocess: a params directory
    preset: str = ""  # inprocess: a model preset with random weights (smoke tests)
    tokenizer: str = ""  # inprocess: tokenizer.model
    max_new_tokens: int = 256  # tokens of each answer
    batch_size: int = 16  # documents per client call (and per flush of the output file)
    concurrency: int = 8  # http: requests in flight
    limit: int = 0  # annotate at most this many documents; 0: all

    def check(self, path):
        self.require_choice(path, "backend", ANNOTATE_BACKENDS)
        self.require_choice(path, "mode", ANNOTATE_MODES)
        for name in ("max_new_tokens", "batch_size", "concurrency"):
            self.require(path, getattr(self, name) > 0, name, "must be positive")
        self.require(path, self.limit >= 0, "limit", "must be >= 0 (0: all documents)")

    def check_backend(self, path: str = "annotate") -> None:
        """What the chosen backend needs (checked when the annotate job starts)."""
        if self.backend == "http":
            self.require(path, bool(self.base_url), "base_url",
                         "required for backend=http (e.g. http://127.0.0.1:8000 from "
                         "`python -m launch.serve`)")
        else:
            self.require(path, bool(self.checkpoint or self.preset), "checkpoint",
                         "backend=inprocess needs a checkpoint directory (or a preset for a "
                         "smoke test)")


@dataclasses.dataclass(frozen=True)
class ClassifierConfig(Section):
    """The EuroFilter classifier's architecture (``classifier.py``; saved with the model as
    ``classifier_config.json``)."""

    encoder: str = "hashed"  # "hashed" (trained here) | "eurollm" (pooled checkpoint features)
    vocab_buckets: int = 1 << 15
    max_tokens: int = 128
    d_model: int = 64
    num_layers: int = 1
    num_heads: int = 4
    d_ff: int = 128
    dropout: float = 0.3  # drops the pooled encoder output of an example during training
    feature_dim: int = 0  # input width of the heads for encoder="eurollm" (the model's d_model)
    positive_threshold: float = 3.0  # grades >= this are the binary head's positives
    seed: int = 0

    def check(self, path):
        self.require_choice(path, "encoder", CLASSIFIER_ENCODERS)
        for name in ("vocab_buckets", "max_tokens", "d_model", "num_layers", "num_heads", "d_ff"):
            self.require(path, getattr(self, name) > 0, name, "must be positive")
        self.require(path, self.d_model % self.num_heads == 0, "d_model",
                     f"({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        self.require(path, 0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")


@dataclasses.dataclass(frozen=True)
class ClassifierTrainSection(ClassifierConfig):
    """``--job=train_classifier``: the architecture plus the training settings."""

    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 0.01
    test_fraction: float = 0.2  # annotations held out for metrics.json

    def model_config(self) -> ClassifierConfig:
        return ClassifierConfig(**{f.name: getattr(self, f.name)
                                   for f in dataclasses.fields(ClassifierConfig)})

    def check(self, path):
        super().check(path)
        self.require(path, self.encoder == "hashed", "encoder",
                     "launch.filter trains on the annotations' text (encoder 'hashed'); "
                     "train on EuroLLM features with classifier.EuroLLMFeaturizer in Python")
        for name in ("steps", "batch_size", "learning_rate"):
            self.require(path, getattr(self, name) > 0, name, "must be positive")
        self.require(path, 0.0 < self.test_fraction < 1.0, "test_fraction", "must be in (0, 1)")


@dataclasses.dataclass(frozen=True)
class FilterJobConfig(FilterConfig):
    """``launch.filter``'s config: a filtering run's sections and the EuroFilter jobs'."""

    annotate: AnnotateSection = dataclasses.field(default_factory=AnnotateSection)
    classifier: ClassifierTrainSection = dataclasses.field(default_factory=ClassifierTrainSection)

    def run_config(self) -> FilterConfig:
        return FilterConfig(**{f.name: getattr(self, f.name)
                               for f in dataclasses.fields(FilterConfig)})


def as_filter_config(config=None) -> FilterConfig:
    """A run's settings: a ``FilterConfig`` as it is (a ``FilterJobConfig``'s run sections),
    anything else (None, a partial dict, a ConfigDict) validated into one."""
    if isinstance(config, FilterJobConfig):
        return config.run_config()
    if isinstance(config, FilterConfig):
        return config
    return FilterConfig.from_mapping(config)


__all__ = [
    "AnnotateSection", "ClassifierConfig", "ClassifierTrainSection", "DedupConfig",
    "FilterConfig", "FilterInput", "FilterJobConfig", "HeuristicsSection", "LanguageIDSection",
    "OutputSection", "PIISection", "QualitySection", "ReportSection", "RunnerSection",
    "URLBlocklistSection",
    "as_filter_config",
]
