"""lm-evaluation-harness backend for eurollm_jax checkpoints (model name ``eurollm_jax``).

Importing this module registers the backend (lm-eval is an optional dependency)::

    import lm_eval
    import eurollm_jax.inference.lm_eval_backend  # registers "eurollm_jax"

    lm_eval.simple_evaluate(model="eurollm_jax",
                            model_args="pretrained=/ckpt/EuroLLM-1.7B,compute_dtype=bfloat16",
                            tasks=["arc_easy"])
    # or, with a model already in memory:
    lm = EuroLLMJaxLM(model=model, tokenizer=tokenizer)
    lm_eval.simple_evaluate(model=lm, tasks=[...])

Command line: ``python -m eurollm_jax.inference.lm_eval_backend run --model eurollm_jax
--model_args pretrained=DIR --tasks ...`` (lm-eval's own CLI with the backend registered).

Semantics follow lm-eval's HF backend: contexts get one BOS (``add_bos_token=True``,
EuroLLM is trained with it), an empty context is the BOS token alone, over-long inputs keep
their last ``max_length`` tokens, rolling log-likelihoods use disjoint windows of
``max_length`` tokens, ``generate_until`` stops at any ``until`` string or EOS and returns
the text before the stop string. ChatML markers in the text (``--apply_chat_template``)
are encoded as their special-token ids.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model

from eurollm_jax.inference import chat as chat_lib
from eurollm_jax.inference import scoring
from eurollm_jax.inference import tokenization as tok_lib
from eurollm_jax.inference.engine import SamplingParams, as_engine
from eurollm_jax.inference.loading import check_model_overrides, load_for_inference

logger = logging.getLogger(__name__)


def _as_bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y")
    return bool(value)


@register_model("eurollm_jax")
class EuroLLMJaxLM(TemplateLM):
    """lm-eval ``LM`` over ``eurollm_jax.inference``.

    Args (all also accepted as ``--model_args key=value``):
      pretrained: HF checkpoint dir or Orbax params dir (see ``load_for_inference``).
      model: instead of ``pretrained``, a ``Transformer`` (or ``Engine``) in memory.
      tokenizer: a tokenizer object, or a tokenizer.model path (default: next to the weights).
      mesh: "data,fsdp,tensor" mesh shape; compute_dtype / param_dtype: dtypes
        ("bfloat16", "float32", jnp.bfloat16...; default the checkpoint's).
      batch_size: prompts per generate call; max_batch_tokens: tokens per scoring batch.
      interventions: per-layer residual-stream additions applied to every log-likelihood
        (activation steering, ``eurollm_jax.steering``); None: the plain model.
      max_length: context window (default the model's max_seq_len).
      max_gen_toks: default generation budget; add_bos_token: prefix contexts with BOS.
      seed: sampling seed for generate_until with do_sample.
      Any other key is a model override applied when loading (``attention_impl``,
      ``scan_layers``, ``max_seq_len``: ``loading.LOAD_TIME_FIELDS``; any ModelConfig field
      with ``preset``). Unknown keys are an error that lists the valid ones.
    """

    def __init__(
        self,
        pretrained: str | None = None,
        *,
        model=None,
        tokenizer=None,
        preset: str | None = None,
        mesh: str | None = None,
        compute_dtype=None,
        param_dtype=None,
        batch_size: int | str | None = 16,
        max_batch_size: int | None = None,
        device: Any = None,
        max_length: int | None = None,
        max_gen_toks: int = 256,
        add_bos_token: bool = True,
        max_batch_tokens: int = 8192,
        seed: int = 0,
        interventions=None,
        **kwargs,
    ):
        super().__init__()
        tokenizer_path = None
        if isinstance(tokenizer, str):
            tokenizer_path, tokenizer = tokenizer, None
        try:
            overrides = check_model_overrides(kwargs, shapes_fixed=preset is None)
        except ValueError as e:
            raise ValueError(
                f"eurollm_jax backend: {e} (besides the backend's own arguments "
                f"{sorted(_BACKEND_ARGS)})"
            ) from None
        if model is None:
            if pretrained is None and preset is None:
                raise ValueError(
                    "eurollm_jax backend: pass pretrained=<checkpoint dir> (or model=...)"
                )
            model, loaded_tokenizer = load_for_inference(
                pretrained,
                preset=preset,
                mesh=mesh,
                compute_dtype=compute_dtype,
                param_dtype=param_dtype,
                tokenizer=tokenizer_path,
                **overrides,
            )
            if tokenizer is None:
                tokenizer = loaded_tokenizer
        else:
            given = sorted(overrides) + [
                name for name, value in (("compute_dtype", compute_dtype),
                                         ("param_dtype", param_dtype), ("mesh", mesh))
                if value is not None
            ]
            if given:
                raise ValueError(
                    f"eurollm_jax backend: {given} apply when loading (pretrained=... or "
                    f"preset=...); a model passed as model= is used as it is"
                )
            if tokenizer_path:
                tokenizer = tok_lib.load_tokenizer(tokenizer_path)
        engine = as_engine(model, tokenizer)
        if engine.tokenizer is None:
            raise ValueError(
                "eurollm_jax backend needs a tokenizer (tokenizer=<path to tokenizer.model>)"
            )
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self._max_length = int(max_length) if max_length else int(engine.cfg.max_seq_len)
        if batch_size is None or str(batch_size).startswith("auto"):
            batch_size = 16
        self.batch_size = int(batch_size)
        self.max_gen_toks = int(max_gen_toks)
        self.add_bos_token = _as_bool(add_bos_token)
        self.max_batch_tokens = int(max_batch_tokens)
        self.interventions = interventions
        self.seed = int(seed)
        self._specials = chat_lib.special_token_ids(self.tokenizer)

    # ------------------------------------------------------------ tokenizer facts
    @property
    def eot_token_id(self) -> int:
        return self.engine.eos_id

    @property
    def prefix_token_id(self) -> int:
        bos = tok_lib.bos_id(self.tokenizer)
        return self.engine.cfg.bos_token_id if bos is None else bos

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self.tokenizer, "model_file", type(self.tokenizer).__name__)).replace(
            "/", "__"
        )

    def tok_encode(
        self, string: str, add_special_tokens: bool | None = None, **kwargs
    ) -> list[int]:
        ids = tok_lib.encode_with_special_tokens(self.tokenizer, string, self._specials)
        if add_special_tokens and (not ids or ids[0] != self.prefix_token_id):
            ids = [self.prefix_token_id] + ids
        return ids

    def tok_decode(self, tokens, **kwargs) -> str:
        return self.tokenizer.decode(list(tokens))

    def _with_bos(self, ids: list[int]) -> list[int]:
        if self.add_bos_token and (not ids or ids[0] != self.prefix_token_id):
            return [self.prefix_token_id] + list(ids)
        return list(ids)

    # ------------------------------------------------------------ requests
    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs):
        pairs = [(self._with_bos(ctx), list(cont)) for _, ctx, cont in requests]
        scored = scoring.loglikelihood(
            self.engine, pairs, max_length=self.max_length, max_batch_tokens=self.max_batch_tokens,
            interventions=self.interventions,
        )
        out = []
        for (key, _, _), res in zip(requests, scored):
            answer = (res.logprob, res.is_greedy)
            if key is not None:
                self.cache_hook.add_partial("loglikelihood", key, answer)
            out.append(answer)
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        docs = [self.tok_encode(req.args[0]) for req in requests]
        scored = scoring.loglikelihood_rolling(
            self.engine,
            docs,
            prefix_token=self.prefix_token_id,
            max_length=self.max_length,
            max_batch_tokens=self.max_batch_tokens,
        )
        out = []
        for req, res in zip(requests, scored):
            self.cache_hook.add_partial("loglikelihood_rolling", (req.args[0],), res.logprob)
            out.append(res.logprob)
        return out

    def _sampling(self, gen_kwargs: dict, index: int) -> SamplingParams:
        kw = dict(gen_kwargs or {})
        until = kw.pop("until", None)
        if isinstance(until, str):
            until = [until]
        max_gen = int(kw.pop("max_gen_toks", self.max_gen_toks))
        do_sample = _as_bool(kw.pop("do_sample", False))
        temperature = float(kw.pop("temperature", 0.0) or 0.0)
        if not do_sample:
            temperature = 0.0
        elif temperature == 0.0:
            temperature = 1.0
        top_p = float(kw.pop("top_p", 1.0) or 1.0)
        top_k = int(kw.pop("top_k", 0) or 0)
        if int(kw.pop("num_beams", 1)) != 1:
            raise ValueError("eurollm_jax backend does not do beam search (num_beams must be 1)")
        if kw:
            logger.debug("ignoring generation kwargs %s", sorted(kw))
        return SamplingParams(
            max_new_tokens=max_gen,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=self.seed,
            stream=index,
            stop_strings=tuple(until or ()),
        )

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        prepared = []
        for i, req in enumerate(requests):
            context, gen_kwargs = req.args
            samp = self._sampling(gen_kwargs, i)
            budget = self.max_length - samp.max_new_tokens
            if budget < 1:
                raise ValueError(
                    f"max_gen_toks {samp.max_new_tokens} leaves no room for a context in "
                    f"max_length {self.max_length}"
                )
            ids = self._with_bos(self.tok_encode(context))
            if len(ids) > budget:
                ids = ids[-budget:]
            prepared.append((i, ids, samp))
        results: list[str | None] = [None] * len(requests)
        order = sorted(prepared, key=lambda x: -len(x[1]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            outs = self.engine.generate_ids([c[1] for c in chunk], [c[2] for c in chunk])
            for (i, _, _), out in zip(chunk, outs):
                results[i] = out.text
                self.cache_hook.add_partial("generate_until", requests[i].args, out.text)
        return results

    # ------------------------------------------------------------ chat
    def apply_chat_template(
        self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        return chat_lib.render_chatml(chat_history, add_generation_prompt=add_generation_prompt)

    def chat_template(self, chat_template: bool | str = False) -> str:
        return "chatml"


# The constructor's own arguments; every other key is a model override.
_BACKEND_ARGS = tuple(
    name for name in inspect.signature(EuroLLMJaxLM.__init__).parameters
    if name not in ("self", "kwargs")
)


def main(argv=None):
    """lm-eval's command line with the eurollm_jax backend registered."""
    from lm_eval.__main__ import cli_evaluate

    return cli_evaluate()


if __name__ == "__main__":
    main()
