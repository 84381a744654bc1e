"""Inference engine: batched KV-cache generation, scoring, activation capture and steering.

Public surface:
- ``generate(model, prompts, max_new_tokens=..., ...)`` -> list of ``Completion`` (token
  ids + ``.text``, ``.logprobs``, ``.finish_reason``); ``Engine`` for repeated calls;
  ``SamplingParams`` for per-prompt settings.
- ``loglikelihood`` / ``loglikelihood_rolling``: lm-eval-style scoring.
- ``capture_activations``, ``residual_norms``, ``steering_interventions``.
- ChatML: ``render_chatml``, ``encode_chat``, ``chat_stop_ids``, ``generate_chat``.
- ``load_for_inference``: model + tokenizer from a checkpoint dir or preset.
The OpenAI-compatible server lives in ``eurollm_jax.inference.server`` (``python -m
launch.serve``) and the lm-eval backend in ``eurollm_jax.inference.lm_eval_backend``;
neither is imported here (optional dependencies).
"""

from eurollm_jax.inference.activations import (
    capture_activations,
    residual_norms,
    steering_interventions,
)
from eurollm_jax.inference.chat import (
    chat_stop_ids,
    encode_chat,
    generate_chat,
    has_chat_markers,
    render_chatml,
)
from eurollm_jax.inference.batching import bucket_length
from eurollm_jax.inference.engine import Completion, Engine, SamplingParams, as_engine, generate
from eurollm_jax.inference.loading import load_for_inference
from eurollm_jax.inference.scoring import (
    LogLikelihood,
    RollingLogLikelihood,
    loglikelihood,
    loglikelihood_rolling,
    rolling_windows,
)
from eurollm_jax.inference.tokenization import load_tokenizer

__all__ = [
    "generate",
    "Engine",
    "as_engine",
    "Completion",
    "SamplingParams",
    "bucket_length",
    "loglikelihood",
    "loglikelihood_rolling",
    "rolling_windows",
    "LogLikelihood",
    "RollingLogLikelihood",
    "capture_activations",
    "residual_norms",
    "steering_interventions",
    "render_chatml",
    "encode_chat",
    "chat_stop_ids",
    "has_chat_markers",
    "generate_chat",
    "load_for_inference",
    "load_tokenizer",
]
