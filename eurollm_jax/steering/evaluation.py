"""Steered vs unsteered evaluation: multiple choice and generation.

- ``mc_accuracy``: accuracy on multiple-choice items ``{"context", "choices", "label"}``
  (the choice with the highest summed log-likelihood wins, lm-eval's ``acc``), either
  through lm-evaluation-harness (``backend="lm_eval"``: a local task written as YAML +
  JSONL, scored by the ``eurollm_jax`` lm-eval backend with the steering vectors as its
  interventions) or directly with ``inference.loglikelihood`` (``backend="direct"``; the
  same requests: an empty context is BOS, the choice follows with no delimiter).
- ``steered_lm``: the lm-eval backend (``inference.lm_eval_backend.EuroLLMJaxLM``) built
  with ``interventions``, which its log-likelihood requests carry.
- ``generation_eval``: greedy continuations of prompts with the steering inputs (prefill
  and decode), judged by ``ExpertJudge`` (a logistic probe on the unsteered expert's
  states of the generated text: the probability that it shows the concept) and by the
  unsteered target's mean log-probability per generated token (how fluent the text stays).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np

from eurollm_jax.fileio import write_jsonl, write_text
from eurollm_jax.inference import capture_activations, loglikelihood
from eurollm_jax.steering.alignment import LinearProbe

MC_BACKENDS = ("lm_eval", "direct")
MC_TASK = "steer_mc"


def _bos(engine) -> int:
    tok = engine.tokenizer
    bos = getattr(tok, "bos_id", None) if tok is not None else None
    bos = bos() if callable(bos) else bos
    return engine.cfg.bos_token_id if bos is None or bos < 0 else int(bos)


def _encode_plain(engine, text: str) -> list[int]:
    return engine.encode(text, add_bos=False)


def mc_accuracy_direct(engine, items: Sequence[dict], interventions=None) -> float:
    """Accuracy with ``inference.loglikelihood`` (lm-eval's request semantics)."""
    requests, owners = [], []
    for k, item in enumerate(items):
        ctx = [_bos(engine)] + (_encode_plain(engine, item["context"]) if item["context"] else [])
        for choice in item["choices"]:
            requests.append((ctx, _encode_plain(engine, choice)))
            owners.append(k)
    scores = loglikelihood(engine, requests, interventions=interventions)
    per_item: list[list[float]] = [[] for _ in items]
    for k, res in zip(owners, scores):
        per_item[k].append(res.logprob)
    hits = [int(np.argmax(s)) == int(item["label"]) for s, item in zip(per_item, items)]
    return float(np.mean(hits))


def _lm_eval_class():
    try:
        from eurollm_jax.inference.lm_eval_backend import EuroLLMJaxLM
    except ImportError as e:
        raise ImportError(
            "multiple-choice evaluation through lm-eval needs `pip install 'eurollm_jax[eval]'` "
            "(or set the evaluation backend to 'direct')"
        ) from e
    return EuroLLMJaxLM


def steered_lm(engine, interventions=None, **kwargs):
    """An lm-eval ``LM`` over ``engine`` whose log-likelihoods are steered."""
    return _lm_eval_class()(model=engine, interventions=interventions, **kwargs)


def write_mc_task(task_dir: str, items: Sequence[dict]) -> str:
    """A local lm-eval multiple-choice task (``steer_mc``) over ``items``."""
    data = os.path.join(os.path.abspath(task_dir), f"{MC_TASK}.jsonl")
    write_jsonl(data, [dict(item) for item in items])
    write_text(
        os.path.join(task_dir, f"{MC_TASK}.yaml"),
        f"task: {MC_TASK}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {data}\ntest_split: test\noutput_type: multiple_choice\n"
        "doc_to_text: context\ndoc_to_choice: choices\ndoc_to_target: label\n"
        'target_delimiter: ""\n'
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n",
    )
    return task_dir


def mc_accuracy_lm_eval(engine, task_dir: str, interventions=None) -> float:
    """Accuracy of the ``steer_mc`` task in ``task_dir`` through ``lm_eval.simple_evaluate``."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    lm = steered_lm(engine, interventions)
    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=[MC_TASK],
        task_manager=TaskManager(include_path=task_dir, include_defaults=False),
        log_samples=False,
        bootstrap_iters=0,
        verbosity="ERROR",
    )
    return float(out["results"][MC_TASK]["acc,none"])


@dataclasses.dataclass
class ExpertJudge:
    """P(concept | text) from a logistic probe on the (unsteered) expert's pooled states."""

    engine: object
    layer: int
    probe: LinearProbe
    pooling: str = "last"

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        texts = [t if t else " " for t in texts]
        states = capture_activations(self.engine, list(texts), [self.layer], pooling=self.pooling)
        return 1.0 / (1.0 + np.exp(-self.probe.logits(states[:, 0])))


def generation_eval(engine, prompts: Sequence[str], judge: ExpertJudge, *,
                    max_new_tokens: int = 24, interventions=None) -> dict:
    """Greedy continuations under ``interventions``: the judge's concept rate (share with
    P > 0.5) and mean probability, and the unsteered target's log-probability per token."""
    outs = engine.generate(list(prompts), max_new_tokens=max_new_tokens, interventions=interventions,
                           ignore_eos=True)
    texts = [o.text for o in outs]
    probs = judge.probabilities(texts)
    requests = [
        (engine.encode(p), list(o)) for p, o in zip(prompts, outs) if len(o)
    ]
    scored = loglikelihood(engine, requests) if requests else []
    n_tok = sum(len(c) for _, c in requests)
    return {
        "gen_concept_rate": float(np.mean(probs > 0.5)),
        "gen_concept_prob": float(np.mean(probs)),
        "gen_logprob_per_token": float(sum(r.logprob for r in scored) / max(n_tok, 1)),
        "samples": texts[:4],
    }
