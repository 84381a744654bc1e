"""What every evaluation shares: the checkpoint it runs on, the per-language resume loop and
the registry record at the end.

``EvalModel`` is an ``Engine`` plus the checkpoint's identity (registry block); it is built
from a checkpoint path (HF directory, Orbax params directory or training workdir, see
``registry.checkpoint_kind``) or from a model already in memory (tests, notebooks).
``run_per_language`` runs one task language by language through a ``PairStore``, so a
killed run restarts where it stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any, Callable, Mapping, Sequence

from eurollm_jax.evaluation import registry
from eurollm_jax.evaluation.progress import PairStore, settings_key

logger = logging.getLogger("eurollm_jax.evaluation")


@dataclasses.dataclass
class EvalModel:
    engine: Any  # eurollm_jax.inference.Engine (with a tokenizer)
    identity: dict  # registry.checkpoint_identity(...)

    @property
    def tokenizer(self):
        return self.engine.tokenizer


def load_eval_model(
    checkpoint: str | None = None,
    *,
    preset: str | None = None,
    tokenizer: str | None = None,
    mesh: str | None = None,
    compute_dtype: str | None = None,
    max_batch_size: int = 64,
) -> EvalModel:
    """The model to evaluate, from a checkpoint directory (or a preset with random weights)."""
    from eurollm_jax.inference import Engine, load_for_inference

    if checkpoint is not None:
        kind = registry.checkpoint_kind(checkpoint)
        load_path = os.path.join(checkpoint, "params") if kind == "workdir" else checkpoint
        if tokenizer is None and kind == "workdir" and os.path.exists(
                os.path.join(checkpoint, "tokenizer.model")):
            tokenizer = os.path.join(checkpoint, "tokenizer.model")
        identity = registry.checkpoint_identity(checkpoint)
        model, tok = load_for_inference(load_path, tokenizer=tokenizer, mesh=mesh,
                                        compute_dtype=compute_dtype)
    else:
        identity = registry.checkpoint_identity(None, preset=preset)
        model, tok = load_for_inference(preset=preset, tokenizer=tokenizer, mesh=mesh,
                                        compute_dtype=compute_dtype)
    if tok is None:
        raise ValueError(
            f"no tokenizer for {checkpoint or preset}: put tokenizer.model next to the weights "
            f"or pass --tokenizer=PATH"
        )
    return EvalModel(Engine(model, tok, max_batch_size=max_batch_size), identity)


def in_memory_model(engine, name: str = "in-memory") -> EvalModel:
    """An ``EvalModel`` for an engine that has no checkpoint on disk (fingerprint null)."""
    return EvalModel(engine, registry.checkpoint_identity(None, preset=name))


def run_per_language(
    *,
    task: str,
    languages: Sequence[str],
    output_dir: str,
    model: EvalModel,
    settings: Mapping[str, Any],
    evaluate_language: Callable[[str], Any],
) -> dict[str, Any]:
    """{language: result} with finished languages loaded from the resume store and the
    others computed (and stored) one by one, in order."""
    store = PairStore(output_dir, task, settings_key(model.identity["fingerprint"], settings))
    results = {}
    for lang in languages:
        if store.done(lang):
            logger.info("%s %s: finished in an earlier run, reusing %s", task, lang,
                        store.directory)
            results[lang] = store.load(lang)
            continue
        start = time.perf_counter()
        results[lang] = evaluate_language(lang)
        store.save(lang, results[lang])
        logger.info("%s %s: done in %.1fs", task, lang, time.perf_counter() - start)
    return results


def write_registry_record(
    *,
    registry_dir: str,
    task: str,
    languages: Sequence[str],
    scores: Mapping[str, Mapping[str, Any]],
    settings: Mapping[str, Any],
    model: EvalModel,
    seconds: float,
    details: Mapping[str, Any] | None = None,
) -> str:
    record = registry.make_record(task=task, languages=languages, scores=scores,
                                  config=settings, checkpoint=model.identity, seconds=seconds,
                                  details=details)
    path = registry.write_record(registry_dir, record)
    logger.info("registry record: %s", path)
    return path


def evals_dir() -> str:
    """The repository's ``evals/`` folder (task data files shipped with the code)."""
    import evals

    return os.path.dirname(os.path.abspath(evals.__file__))
