"""EuroFilter quality classifier (Flax NNX): regression + binary heads over a text encoder.

Encoder choice. EuroFilter-v1 fine-tunes mDeBERTa-v3-base; no pre-trained multilingual encoder
weights can be fetched here, and the classifier must score billions of documents cheaply. The
default encoder (``encoder="hashed"``) is therefore a small Transformer trained from scratch
on the annotations: tokens are Unicode word/punctuation units hashed into ``vocab_buckets``
embeddings (no vocabulary to build, every script of the 24 EU languages works), plus a hashed
*bigram* embedding at each position so word order is seen directly (word salad lacks the
frequent bigrams of fluent text; both tables start at zero so unseen words add nothing), one
pre-norm self-attention layer, masked mean + max pooling, six language-independent page
statistics (distinct unigram/bigram ratios, duplicated lines, punctuation, line length,
length; ``text_stats``), and two heads: ``regression`` (the 0-5 grade, MSE) and ``binary`` (grade >=
``positive_threshold``, logistic loss). It trains on CPU in seconds on thousands of documents.
For the strongest results with real annotations use ``encoder="eurollm"``: masked mean of the
final hidden states of a (frozen) EuroLLM checkpoint, computed once, with the same two heads
trained on top (``EuroLLMFeaturizer``); the model's multilingual knowledge then carries over
to languages with few annotations, at the cost of a forward pass per document.

Public: ``ClassifierConfig`` (the architecture; a config section defined in ``config.py``),
``QualityClassifier``, ``train_classifier(texts, scores, ...)``,
``QualityModel`` (the network + its known-bigram table), ``evaluate`` (macro/weighted F1 of
the binary head, MAE of the regression head),
``save_classifier`` / ``load_classifier``, ``QualityFilter`` (the pipeline step: keeps
documents whose predicted grade is >= threshold and records it in metadata), and
``learnable_dataset`` (clean running text vs word salad, boilerplate and repeated lines).
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import zlib
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from eurollm_jax.fileio import atomic_open, read_json, write_json
from eurollm_jax.filtering.config import ClassifierConfig, ClassifierTrainSection, QualitySection
from eurollm_jax.filtering.core import DocumentFilter

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def hash_tokens(text: str, cfg: ClassifierConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """(unigram ids [T], bigram ids [T], length) for one text, padded/truncated to max_tokens."""
    toks = _TOKEN.findall(text.lower())[: cfg.max_tokens]
    v = cfg.vocab_buckets - 1  # id 0 is padding
    uni = np.zeros(cfg.max_tokens, np.int32)
    bi = np.zeros(cfg.max_tokens, np.int32)
    prev = "<s>"
    for i, t in enumerate(toks):
        uni[i] = 1 + zlib.crc32(t.encode("utf-8")) % v
        bi[i] = 1 + zlib.crc32(f"{prev}\x00{t}".encode("utf-8")) % v
        prev = t
    return uni, bi, len(toks)


NUM_STATS = 7


def text_stats(text: str, uni: np.ndarray, bi: np.ndarray, n: int,
               known_bigrams: np.ndarray | None) -> np.ndarray:
    """Language-independent page statistics fed to the heads next to the pooled encoder output:
    the fraction of the page's bigrams that are frequent in the positive training documents (a
    hashed bigram language-model familiarity score, like CCNet's perplexity filter, learned at
    training time), distinct unigram and bigram ratios, duplicated-line fraction,
    punctuation-token fraction, mean line length / 100, log(1 + tokens) / 10."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    n = max(n, 1)
    toks = _TOKEN.findall(text[:4000])
    punct = sum(1 for t in toks if not t[0].isalnum())
    known = float(known_bigrams[bi[:n]].mean()) if known_bigrams is not None else 0.0
    return np.array([known, len(set(uni[:n].tolist())) / n, len(set(bi[:n].tolist())) / n,
                     1.0 - len(set(lines)) / max(len(lines), 1), punct / max(len(toks), 1),
                     min(np.mean([len(x) for x in lines]) / 100.0 if lines else 0.0, 5.0),
                     np.log1p(n) / 10.0], np.float32)


def encode_batch(texts: Sequence[str], cfg: ClassifierConfig,
                 known_bigrams: np.ndarray | None = None) -> dict[str, np.ndarray]:
    enc = [hash_tokens(t, cfg) for t in texts]
    return {"uni_BT": np.stack([e[0] for e in enc]), "bi_BT": np.stack([e[1] for e in enc]),
            "mask_BT": np.stack([np.arange(cfg.max_tokens) < max(e[2], 1) for e in enc]),
            "stats_BS": np.stack([text_stats(t, *e, known_bigrams) for t, e in zip(texts, enc)])}


def known_bigram_table(texts: Sequence[str], cfg: ClassifierConfig, min_docs: int = 3
                       ) -> np.ndarray:
    """Bigram buckets present in at least ``min_docs`` of ``texts`` (bool [vocab_buckets]).

    Counting documents, not occurrences, keeps the table to bigrams common across pages
    (function-word pairs), so training pages do not look more familiar than unseen ones.
    """
    counts = np.zeros(cfg.vocab_buckets, np.int32)
    for t in texts:
        _, bi, n = hash_tokens(t, cfg)
        counts[np.unique(bi[:n])] += 1
    table = counts >= min_docs
    table[0] = False
    return table


class _Block(nnx.Module):
    def __init__(self, cfg: ClassifierConfig, rngs: nnx.Rngs):
        self.norm1 = nnx.LayerNorm(cfg.d_model, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(num_heads=cfg.num_heads, in_features=cfg.d_model,
                                           decode=False, rngs=rngs)
        self.norm2 = nnx.LayerNorm(cfg.d_model, rngs=rngs)
        self.up = nnx.Linear(cfg.d_model, cfg.d_ff, rngs=rngs)
        self.down = nnx.Linear(cfg.d_ff, cfg.d_model, rngs=rngs)

    def __call__(self, x_BTD, mask_BT):
        mask_B11T = mask_BT[:, None, None, :]
        x_BTD = x_BTD + self.attn(self.norm1(x_BTD), mask=mask_B11T)
        return x_BTD + self.down(jax.nn.gelu(self.up(self.norm2(x_BTD))))


class QualityClassifier(nnx.Module):
    """Encoder + regression and binary heads. ``__call__(batch) -> (grade_B, logit_B)``."""

    def __init__(self, cfg: ClassifierConfig, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(cfg.seed)
        self.cfg = cfg
        if cfg.encoder == "hashed":
            # Zero-initialised: a word or bigram never seen in training contributes nothing,
            # instead of random noise, so held-out text is judged by what the model knows.
            zeros = nnx.initializers.zeros_init()
            self.uni = nnx.Embed(cfg.vocab_buckets, cfg.d_model, embedding_init=zeros, rngs=rngs)
            self.bi = nnx.Embed(cfg.vocab_buckets, cfg.d_model, embedding_init=zeros, rngs=rngs)
            self.pos = nnx.Embed(cfg.max_tokens, cfg.d_model, rngs=rngs)
            self.blocks = nnx.List([_Block(cfg, rngs) for _ in range(cfg.num_layers)])
            self.final_norm = nnx.LayerNorm(cfg.d_model, rngs=rngs)
            # Example-level dropout of the whole pooled vector: half of the time the heads see
            # only the page statistics, so they cannot lean on memorised vocabulary alone.
            self.dropout = nnx.Dropout(cfg.dropout, broadcast_dims=(1,), rngs=rngs)
            self.stats_proj = nnx.Linear(NUM_STATS, cfg.d_model, rngs=rngs)
            width = 3 * cfg.d_model
        elif cfg.encoder == "eurollm":
            if cfg.feature_dim <= 0:
                raise ValueError("encoder='eurollm' needs feature_dim (the checkpoint's d_model)")
            self.in_norm = nnx.LayerNorm(cfg.feature_dim, rngs=rngs)
            width = cfg.feature_dim
        else:
            raise ValueError(f"encoder must be 'hashed' or 'eurollm', got {cfg.encoder!r}")
        self.hidden = nnx.Linear(width, cfg.d_model, rngs=rngs)
        self.regression = nnx.Linear(cfg.d_model, 1, rngs=rngs)
        self.binary = nnx.Linear(cfg.d_model, 1, rngs=rngs)

    def features(self, batch) -> jax.Array:
        if self.cfg.encoder == "eurollm":
            return self.in_norm(batch["features_BD"])
        mask_BT = batch["mask_BT"]
        T = mask_BT.shape[1]
        x_BTD = self.uni(batch["uni_BT"]) + self.bi(batch["bi_BT"]) + self.pos(jnp.arange(T))[None]
        for block in self.blocks:
            x_BTD = block(x_BTD, mask_BT)
        x_BTD = self.final_norm(x_BTD)
        m_BT1 = mask_BT[..., None].astype(x_BTD.dtype)
        mean_BD = (x_BTD * m_BT1).sum(1) / jnp.maximum(m_BT1.sum(1), 1.0)
        max_BD = jnp.where(m_BT1 > 0, x_BTD, -1e9).max(1)
        pooled = self.dropout(jnp.concatenate([mean_BD, max_BD], axis=-1))
        stats = jax.nn.gelu(self.stats_proj(batch["stats_BS"]))
        return jnp.concatenate([pooled, stats], axis=-1)

    def __call__(self, batch):
        h_BD = jax.nn.gelu(self.hidden(self.features(batch)))
        return self.regression(h_BD)[:, 0], self.binary(h_BD)[:, 0]


@dataclasses.dataclass
class QualityModel:
    """A trained classifier: the NNX network plus its (non-trainable) known-bigram table."""

    net: QualityClassifier
    known_bigrams: np.ndarray | None = None
    stats_mean: np.ndarray | None = None  # z-scoring of the page statistics (training set)
    stats_std: np.ndarray | None = None

    @property
    def cfg(self) -> ClassifierConfig:
        return self.net.cfg

    def inputs(self, texts_or_features) -> dict[str, np.ndarray]:
        if self.cfg.encoder == "eurollm":
            return {"features_BD": np.asarray(texts_or_features, np.float32)}
        enc = encode_batch(texts_or_features, self.cfg, self.known_bigrams)
        if self.stats_mean is not None:
            z = (enc["stats_BS"] - self.stats_mean) / self.stats_std
            enc["stats_BS"] = z.astype(np.float32)
        return enc


def _loss(model, batch):
    grade_B, logit_B = model(batch)
    mse = jnp.mean((grade_B - batch["score_B"]) ** 2)
    bce = jnp.mean(optax.sigmoid_binary_cross_entropy(logit_B, batch["label_B"]))
    return mse + bce, (mse, bce)


@nnx.jit
def train_step(model, optimizer, batch):
    """One AdamW step on (MSE + BCE); returns (loss, mse, bce)."""
    (loss, (mse, bce)), grads = nnx.value_and_grad(_loss, has_aux=True)(model, batch)
    optimizer.update(model, grads)
    return loss, mse, bce


@nnx.jit
def predict_step(model, batch):
    grade_B, logit_B = model(batch)
    return jnp.clip(grade_B, 0.0, 5.0), jax.nn.sigmoid(logit_B)


def predict(model: QualityModel, texts_or_features, batch_size: int = 64
            ) -> tuple[np.ndarray, np.ndarray]:
    """(grade in [0, 5], P(grade >= positive_threshold)) per document."""
    n = len(texts_or_features)
    grades, probs = [], []
    for i in range(0, n, batch_size):
        chunk = texts_or_features[i:i + batch_size]
        real = len(chunk)
        if real < batch_size and n > batch_size:  # keep one compiled shape
            chunk = list(chunk) + [chunk[-1]] * (batch_size - real)
        g, p = predict_step(model.net, model.inputs(chunk))
        grades.append(np.asarray(g)[:real])
        probs.append(np.asarray(p)[:real])
    if not grades:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    return np.concatenate(grades), np.concatenate(probs)


def train_classifier(texts_or_features, scores: Sequence[float],
                     cfg: ClassifierConfig | None = None,
                     *, steps: int = ClassifierTrainSection.steps,
                     batch_size: int = ClassifierTrainSection.batch_size,
                     learning_rate: float = ClassifierTrainSection.learning_rate,
                     weight_decay: float = ClassifierTrainSection.weight_decay,
                     log_every: int = 0) -> QualityModel:
    """Trains a classifier on (text or pooled features, 0-5 grade) pairs; deterministic per seed
    (defaults: the filter config's ``classifier`` section)."""
    cfg = cfg or ClassifierConfig()
    scores = np.asarray(scores, np.float32)
    if len(scores) != len(texts_or_features) or len(scores) == 0:
        raise ValueError(f"need as many scores as documents (> 0), got {len(scores)} scores for "
                         f"{len(texts_or_features)} documents")
    labels = (scores >= cfg.positive_threshold).astype(np.float32)
    table = None
    if cfg.encoder == "hashed":
        table = known_bigram_table([t for t, y in zip(texts_or_features, labels) if y > 0], cfg)
    qm = QualityModel(QualityClassifier(cfg, nnx.Rngs(cfg.seed)), table)
    model = qm.net
    sched = optax.warmup_cosine_decay_schedule(0.0, learning_rate, max(1, steps // 10), steps,
                                               learning_rate * 0.05)
    optimizer = nnx.Optimizer(model, optax.adamw(sched, weight_decay=weight_decay), wrt=nnx.Param)
    inputs = qm.inputs(texts_or_features)
    if "stats_BS" in inputs:
        qm.stats_mean = inputs["stats_BS"].mean(0)
        qm.stats_std = inputs["stats_BS"].std(0) + 1e-3
        z = (inputs["stats_BS"] - qm.stats_mean) / qm.stats_std
        inputs["stats_BS"] = z.astype(np.float32)
    rng = np.random.default_rng(cfg.seed)
    n = len(scores)
    bs = min(batch_size, n)
    order = rng.permutation(n)
    cursor = 0
    model.train()
    for step in range(steps):
        if cursor + bs > n:
            order, cursor = rng.permutation(n), 0
        idx = order[cursor:cursor + bs]
        cursor += bs
        batch = {k: v[idx] for k, v in inputs.items()}
        batch["score_B"], batch["label_B"] = scores[idx], labels[idx]
        loss, mse, bce = train_step(model, optimizer, batch)
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"[classifier] step {step}: loss {float(loss):.4f} mse {float(mse):.4f} "
                  f"bce {float(bce):.4f}", flush=True)
    model.eval()
    return qm


def f1_scores(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, float]:
    """Per-class F1, macro-F1 and support-weighted F1 for binary labels."""
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    out: dict[str, float] = {}
    f1s, supports = [], []
    for c in (0, 1):
        tp = int(np.sum((y_pred == c) & (y_true == c)))
        fp = int(np.sum((y_pred == c) & (y_true != c)))
        fn = int(np.sum((y_pred != c) & (y_true == c)))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[f"f1_class{c}"], out[f"precision_class{c}"], out[f"recall_class{c}"] = f1, prec, rec
        f1s.append(f1)
        supports.append(int(np.sum(y_true == c)))
    out["macro_f1"] = float(np.mean(f1s))
    out["weighted_f1"] = float(np.dot(f1s, supports) / max(sum(supports), 1))
    out["accuracy"] = float(np.mean(y_true == y_pred)) if len(y_true) else 0.0
    out["support"] = float(len(y_true))
    return out


def evaluate(model: QualityModel, texts_or_features, scores: Sequence[float]) -> dict[str, float]:
    """Binary-head F1s (macro, weighted, per class) and regression MAE on a held-out set."""
    grades, probs = predict(model, texts_or_features)
    scores = np.asarray(scores, np.float32)
    y_true = (scores >= model.cfg.positive_threshold).astype(int)
    metrics = f1_scores(y_true, (probs >= 0.5).astype(int))
    metrics["regression_mae"] = float(np.mean(np.abs(grades - scores))) if len(scores) else 0.0
    metrics["regression_binary_agreement"] = float(
        np.mean((grades >= model.cfg.positive_threshold) == y_true.astype(bool))
    ) if len(scores) else 0.0
    return metrics


def save_classifier(model: QualityModel, directory: str, metrics: dict | None = None) -> None:
    """``classifier_config.json`` + ``params.npz`` (+ ``metrics.json``), written atomically."""
    os.makedirs(directory, exist_ok=True)
    flat = {"/".join(map(str, k)): np.asarray(v)
            for k, v in _flatten(nnx.to_pure_dict(nnx.state(model.net, nnx.Param)))}
    if model.known_bigrams is not None:
        flat["__known_bigrams__"] = np.packbits(model.known_bigrams)
    if model.stats_mean is not None:
        flat["__stats_mean__"], flat["__stats_std__"] = model.stats_mean, model.stats_std
    with atomic_open(os.path.join(directory, "params.npz"), "wb") as f:
        np.savez(f, **flat)
    for name, obj in (("classifier_config.json", model.cfg.to_dict()), ("metrics.json", metrics)):
        if obj is not None:
            write_json(os.path.join(directory, name), obj)


def _flatten(tree, prefix=()):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _flatten(v, prefix + (k,))
    else:
        yield prefix, tree


def load_classifier(directory: str) -> QualityModel:
    cfg_path = os.path.join(directory, "classifier_config.json")
    if not os.path.exists(cfg_path):
        raise FileNotFoundError(f"{directory} has no classifier_config.json; train one with "
                                "`python -m launch.filter --job=train_classifier`")
    cfg = ClassifierConfig(**read_json(cfg_path))
    model = QualityClassifier(cfg, nnx.Rngs(cfg.seed))
    pure = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    table = None
    extra = {}
    with np.load(os.path.join(directory, "params.npz")) as z:
        for key in z.files:
            if key == "__known_bigrams__":
                table = np.unpackbits(z[key])[: cfg.vocab_buckets].astype(bool)
                continue
            if key in ("__stats_mean__", "__stats_std__"):
                extra[key.strip("_")] = z[key]
                continue
            node = pure
            parts = key.split("/")
            for p in parts[:-1]:
                node = node[int(p) if isinstance(next(iter(node)), int) else p]
            last = parts[-1]
            last = int(last) if isinstance(next(iter(node)), int) else last
            node[last] = jnp.asarray(z[key])
    state = nnx.state(model, nnx.Param)
    nnx.replace_by_pure_dict(state, pure)
    nnx.update(model, state)
    model.eval()
    return QualityModel(model, table, extra.get("stats_mean"), extra.get("stats_std"))


class EuroLLMFeaturizer:
    """Masked mean of a EuroLLM checkpoint's final hidden states (frozen) per document."""

    def __init__(self, model, tokenizer, max_tokens: int = 512, batch_size: int = 8):
        self.model, self.tokenizer = model, tokenizer
        self.max_tokens, self.batch_size = max_tokens, batch_size

    def _ids(self, text: str) -> list[int]:
        tok = self.tokenizer
        ids = tok.encode(text) if hasattr(tok, "encode") else tok(text)
        return list(ids)[: self.max_tokens] or [0]

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), self.batch_size):
            ids = [self._ids(t) for t in texts[i:i + self.batch_size]]
            T = max(len(x) for x in ids)
            tok = np.zeros((len(ids), T), np.int32)
            seg = np.zeros((len(ids), T), np.int32)
            for r, x in enumerate(ids):
                tok[r, :len(x)] = x
                seg[r, :len(x)] = 1
            res = self.model.forward(jnp.asarray(tok), segment_ids=jnp.asarray(seg), logits="none")
            h = np.asarray(res.final_hidden, np.float32)
            m = seg[..., None].astype(np.float32)
            out.append((h * m).sum(1) / np.maximum(m.sum(1), 1.0))
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


class QualityFilter(DocumentFilter):
    """Pipeline step: predicted grade in ``metadata["quality_score"]``; keep if >= threshold.

    ``head="regression"`` (default) thresholds the 0-5 grade; ``head="binary"`` keeps documents
    whose binary probability (``metadata["quality_prob"]``) is >= 0.5.
    """

    name = "quality_classifier"

    def __init__(self, model_dir: str, threshold: float = QualitySection.threshold,
                 batch_size: int = QualitySection.batch_size, head: str = "regression"):
        if head not in ("regression", "binary"):
            raise ValueError(f"head must be 'regression' or 'binary', got {head!r}")
        self.model_dir, self.threshold, self.batch_size, self.head = (
            model_dir, float(threshold), batch_size, head)
        self._model: QualityModel | None = None

    def setup(self) -> None:
        if self._model is None:
            self._model = load_classifier(self.model_dir)
            if self._model.cfg.encoder != "hashed":
                raise ValueError("QualityFilter scores raw text; a classifier trained on EuroLLM "
                                 "features needs its featurizer (use EuroLLMFeaturizer + predict)")

    def __call__(self, docs, counters=None):
        self.setup()
        if docs:
            grades, probs = predict(self._model, [d.text for d in docs], self.batch_size)
            for d, g, p in zip(docs, grades, probs):
                d.metadata["quality_score"] = round(float(g), 3)
                d.metadata["quality_prob"] = round(float(p), 4)
        return super().__call__(docs, counters)

    def filter(self, doc):
        if "quality_score" not in doc.metadata:
            (g,), (p,) = predict(self._model, [doc.text], 1)
            doc.metadata["quality_score"], doc.metadata["quality_prob"] = float(g), float(p)
        if self.head == "binary":
            return None if doc.metadata["quality_prob"] >= 0.5 else "below_threshold"
        return None if doc.metadata["quality_score"] >= self.threshold else "below_threshold"


def learnable_dataset(clean_texts: Sequence[str], seed: int = 0, words: Sequence[str] | None = None
                      ) -> tuple[list[str], list[float], list[str]]:
    """(texts, grades, kinds): every clean text (grade 4-5) plus one damaged page (grade 0-1)
    made from it: word salad (its words shuffled), boilerplate, or its lines repeated."""
    from eurollm_jax.filtering.sample_corpus import junk_text

    rng = random.Random(seed)
    vocab = list(words) if words else sorted({w for t in clean_texts for w in t.split()})
    texts, grades, kinds = [], [], []
    for i, t in enumerate(clean_texts):
        texts.append(t)
        grades.append(float(rng.choice((4, 5, 5, 3))))
        kinds.append("clean")
        kind = ("salad", "boilerplate", "repeated")[i % 3]
        src = t
        if kind == "repeated":
            sents = re.split(r"(?<=[.!?])\s+", t)
            src = "\n".join(sents[: rng.randint(1, 2)])
        texts.append(junk_text(kind, rng, vocab, src))
        grades.append(float(rng.choice((0, 0, 1))))
        kinds.append(kind)
    return texts, grades, kinds
