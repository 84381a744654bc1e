"""Batched generation on the (sharded) model: prefill, then a compiled KV-cache decode loop.

Flow for one batch of prompts of different lengths:

1. Host: bucket the batch size, the longest prompt (P) and the generation budget (N)
   so that a handful of shapes cover every request (``bucket_length``). Prompts are
   LEFT-padded to P; pad tokens get segment id 0 and real tokens segment 1, with
   explicit positions 0.. for the real tokens (the model's KV-cache contract).
2. ``_prefill`` (jitted): allocate the cache (P + N slots, sharded like activations),
   run the prompts through the model at ``cache_index=0`` and sample the first token.
3. ``_decode`` (jitted, donated state): a ``lax.while_loop`` that feeds each row's last
   token at slot ``P + step - 1``, samples the next one, records its log-probability and
   stops a row on a stop id or its own token budget; it exits when every row is done
   (or at ``until``). No Python runs per token.
4. Stop strings need text, so when a request has any, the loop runs in chunks of
   ``stop_check_interval`` tokens and the host marks rows whose text holds a stop string
   as done between chunks (one dispatch per chunk, not per token).

``generate(model, prompts, max_new_tokens=..., ...)`` is the one-call entry; ``Engine``
keeps the split model (and tokenizer) for repeated calls (the server, lm-eval).
Shape buckets and device placement live in ``batching`` (shared with scoring and capture).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from eurollm_jax.inference import sampling as sampling_lib
from eurollm_jax.inference import tokenization as tok_lib
from eurollm_jax.inference.batching import (
    PAD_ID,
    bucket_batch,
    bucket_length,
    mesh_scope,
    model_mesh,
    put_batch,
    put_replicated,
)

# ----------------------------------------------------------------------------- settings
@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """How one prompt is continued.

    temperature 0 is greedy; top_k <= 0 and top_p >= 1 disable those filters. The
    tokenizer's EOS is a stop id unless ``ignore_eos``. Stop strings need a tokenizer.
    ``seed`` and ``stream`` pick the row's random stream (see ``sampling.row_keys``).
    """

    max_new_tokens: int = 16
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    stream: int = 0
    stop_token_ids: tuple[int, ...] = ()
    stop_strings: tuple[str, ...] = ()
    ignore_eos: bool = False

    def __post_init__(self):
        object.__setattr__(self, "stop_token_ids", tuple(int(i) for i in self.stop_token_ids or ()))
        stops = self.stop_strings
        if isinstance(stops, str):
            stops = (stops,)
        object.__setattr__(self, "stop_strings", tuple(s for s in (stops or ()) if s))
        if self.max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not (0.0 < self.top_p <= 1.0):
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")


class Completion(list):
    """The generated token ids of one prompt (a ``list`` of ints), with details.

    Attributes:
      token_ids: the ids (same as ``list(self)``); a matched stop *id* is not included,
        the tokens that spell a matched stop *string* are.
      logprobs: log p(token) under the raw model distribution, one per token.
      text: decoded continuation (None without a tokenizer), cut before a stop string.
      finish_reason: "stop" (stop id or stop string) or "length" (token budget).
      stop: the stop id or string that ended it, or None.
      prompt_ids: the prompt as token ids.
      top_logprobs: [(ids, logprobs)] per token when requested, else None.
      logits: [n, V] float32 raw logits per generated token when requested, else None.
    """

    def __init__(
        self,
        token_ids,
        *,
        logprobs=(),
        text=None,
        finish_reason="length",
        stop=None,
        prompt_ids=(),
        top_logprobs=None,
        logits=None,
    ):
        super().__init__(int(t) for t in token_ids)
        self.logprobs = [float(x) for x in logprobs]
        self.text = text
        self.finish_reason = finish_reason
        self.stop = stop
        self.prompt_ids = [int(t) for t in prompt_ids]
        self.top_logprobs = top_logprobs
        self.logits = logits

    @property
    def token_ids(self) -> list[int]:
        return list(self)

    def __repr__(self):
        return (
            f"Completion(token_ids={list(self)!r}, text={self.text!r}, "
            f"finish_reason={self.finish_reason!r})"
        )


MAX_TOP_LOGPROBS = 20


def _top_n_bucket(n: int) -> int:
    """0, 5 or 20: how many top log-probabilities the compiled loop keeps per step."""
    n = int(n)
    if n < 0 or n > MAX_TOP_LOGPROBS:
        raise ValueError(f"top_logprobs must be in [0, {MAX_TOP_LOGPROBS}], got {n}")
    return 0 if n == 0 else 5 if n <= 5 else MAX_TOP_LOGPROBS


# ----------------------------------------------------------------------------- compiled steps
def _record(st, logits_BV, samp, *, mode: str, top_n: int, keep_logits: bool):
    """Sample the token for step ``st['step']`` and write it into the state."""
    step = st["step"]
    logits_BV = logits_BV.astype(jnp.float32)
    keys = sampling_lib.row_keys(samp["seed"], samp["stream"], step)
    tok_B = sampling_lib.sample_tokens(
        logits_BV,
        temperature_B=samp["temperature"],
        top_k_B=samp["top_k"],
        top_p_B=samp["top_p"],
        keys_B2=keys,
        mode=mode,
    )
    logp_BV = jax.nn.log_softmax(logits_BV, axis=-1)
    lp_B = jnp.take_along_axis(logp_BV, tok_B[:, None], axis=-1)[:, 0]
    active_B = ~st["done"]
    new = dict(st)
    new["tokens"] = jax.lax.dynamic_update_slice_in_dim(
        st["tokens"], jnp.where(active_B, tok_B, PAD_ID)[:, None], step, axis=1
    )
    new["logprobs"] = jax.lax.dynamic_update_slice_in_dim(
        st["logprobs"], jnp.where(active_B, lp_B, 0.0)[:, None], step, axis=1
    )
    if top_n:
        top_lp, top_id = jax.lax.top_k(logp_BV, top_n)
        new["top_ids"] = jax.lax.dynamic_update_slice_in_dim(
            st["top_ids"], top_id[:, None].astype(jnp.int32), step, axis=1
        )
        new["top_lps"] = jax.lax.dynamic_update_slice_in_dim(
            st["top_lps"], top_lp[:, None], step, axis=1
        )
    if keep_logits:
        new["logits"] = jax.lax.dynamic_update_slice_in_dim(
            st["logits"], logits_BV[:, None], step, axis=1
        )
    is_stop_B = jnp.any(tok_B[:, None] == samp["stop_ids"], axis=-1)
    new["n_gen"] = st["n_gen"] + active_B.astype(jnp.int32)
    new["done"] = st["done"] | (active_B & (is_stop_B | (step + 1 >= samp["max_new"])))
    new["last"] = tok_B
    new["step"] = step + 1
    return new


@functools.partial(jax.jit, static_argnames=("graphdef", "n_new", "mode", "top_n", "keep_logits"))
def _prefill(
    graphdef,
    params,
    tokens_BP,
    lengths_B,
    samp,
    interventions,
    intervention_scale,
    *,
    n_new: int,
    mode: str,
    top_n: int,
    keep_logits: bool,
):
    model = nnx.merge(graphdef, params)
    b, p = tokens_BP.shape
    pad_B = p - lengths_B
    slot_P = jnp.arange(p, dtype=jnp.int32)
    segments_BP = (slot_P[None, :] >= pad_B[:, None]).astype(jnp.int32)
    positions_BP = jnp.maximum(slot_P[None, :] - pad_B[:, None], 0)
    cache = model.init_cache(b, p + n_new)
    out = model.forward(
        tokens_BP,
        segment_ids=segments_BP,
        positions=positions_BP,
        cache=cache,
        cache_index=0,
        interventions=interventions,
        intervention_scale=intervention_scale,
        logits="last",
    )
    st = {
        "cache": out.cache,
        "tokens": jnp.full((b, n_new), PAD_ID, jnp.int32),
        "logprobs": jnp.zeros((b, n_new), jnp.float32),
        "n_gen": jnp.zeros((b,), jnp.int32),
        "done": samp["max_new"] <= 0,
        "last": jnp.zeros((b,), jnp.int32),
        "lengths": lengths_B.astype(jnp.int32),
        "step": jnp.zeros((), jnp.int32),
    }
    if top_n:
        st["top_ids"] = jnp.zeros((b, n_new, top_n), jnp.int32)
        st["top_lps"] = jnp.zeros((b, n_new, top_n), jnp.float32)
    if keep_logits:
        st["logits"] = jnp.zeros((b, n_new, out.logits.shape[-1]), jnp.float32)
    return _record(st, out.logits[:, 0], samp, mode=mode, top_n=top_n, keep_logits=keep_logits)


@functools.partial(
    jax.jit,
    static_argnames=("graphdef", "prompt_len", "mode", "top_n", "keep_logits"),
    donate_argnames=("st",),
)
def _decode(
    graphdef,
    params,
    st,
    samp,
    interventions,
    intervention_scale,
    until,
    *,
    prompt_len: int,
    mode: str,
    top_n: int,
    keep_logits: bool,
):
    model = nnx.merge(graphdef, params)
    n_new = st["tokens"].shape[1]
    until = jnp.minimum(until, n_new)

    def cond(s):
        return (s["step"] < until) & ~jnp.all(s["done"])

    def body(s):
        step = s["step"]
        b = s["last"].shape[0]
        out = model.forward(
            s["last"][:, None],
            segment_ids=jnp.ones((b, 1), jnp.int32),
            positions=(s["lengths"] + step - 1)[:, None],
            cache=s["cache"],
            cache_index=prompt_len + step - 1,
            interventions=interventions,
            intervention_scale=intervention_scale,
            logits="last",
        )
        s = dict(s, cache=out.cache)
        return _record(s, out.logits[:, 0], samp, mode=mode, top_n=top_n, keep_logits=keep_logits)

    return jax.lax.while_loop(cond, body, st)


# ----------------------------------------------------------------------------- engine
class Engine:
    """Generation, scoring and activation capture on one model (+ optional tokenizer).

    Holds the split model (graphdef + parameter state) and its mesh; jitted functions
    are cached per shape bucket across calls and across engines of the same model. The
    parameters are captured when the engine is made: make a new engine after training on.
    ``max_batch_size`` caps the rows of one decode; longer prompt lists run in chunks
    (longest prompts together, results in the caller's order).
    """

    def __init__(
        self,
        model,
        tokenizer=None,
        *,
        mesh=None,
        stop_check_interval: int = 16,
        min_prompt_bucket: int = 16,
        min_new_bucket: int = 16,
        max_batch_size: int = 256,
    ):
        if tokenizer is not None:
            tok_lib.check_tokenizer(tokenizer)
        self.model = model
        self.cfg = model.cfg
        self.tokenizer = tokenizer
        self.graphdef, self.params = nnx.split(model)
        self.mesh = mesh if mesh is not None else model_mesh(self.params)
        self.stop_check_interval = int(stop_check_interval)
        self.min_prompt_bucket = int(min_prompt_bucket)
        self.min_new_bucket = int(min_new_bucket)
        self.max_batch_size = int(max_batch_size)

    # ------------------------------------------------------------ helpers
    @property
    def eos_id(self) -> int | None:
        eos = None if self.tokenizer is None else tok_lib.eos_id(self.tokenizer)
        return self.cfg.eos_token_id if eos is None else eos

    def encode(self, prompt, *, add_bos: bool = True) -> list[int]:
        """A prompt (text or token ids) as token ids."""
        if isinstance(prompt, str):
            if self.tokenizer is None:
                raise ValueError("text prompts need a tokenizer: pass tokenizer=... or token ids")
            return tok_lib.encode_prompt(self.tokenizer, prompt, add_bos=add_bos)
        ids = [int(t) for t in prompt]
        bad = [t for t in ids if not 0 <= t < self.cfg.vocab_size]
        if bad:
            raise ValueError(
                f"token ids {bad[:5]} are outside the vocabulary [0, {self.cfg.vocab_size})"
            )
        return ids

    def _batch_interventions(self, interventions, n_rows: int, b_pad: int):
        """[L, D] or [L, n, D] -> [L, b_pad, D] (one compiled shape for shared and per-row
        steering; padding rows get zeros)."""
        if interventions is None:
            return None
        arr = np.asarray(interventions, np.float32)
        cfg = self.cfg
        if arr.ndim not in (2, 3) or arr.shape[0] != cfg.num_layers or arr.shape[-1] != cfg.d_model:
            raise ValueError(
                f"interventions must be [layers={cfg.num_layers}, d_model={cfg.d_model}] or "
                f"[layers, prompts, d_model], got {arr.shape}"
            )
        if arr.ndim == 2:
            arr = np.broadcast_to(arr[:, None, :], (arr.shape[0], n_rows, arr.shape[1]))
        if arr.shape[1] != n_rows:
            raise ValueError(
                f"per-row interventions have batch {arr.shape[1]} but there are {n_rows} prompts"
            )
        return np.concatenate(
            [arr, np.zeros((arr.shape[0], b_pad - n_rows, arr.shape[2]), np.float32)], 1
        )

    # ------------------------------------------------------------ generation
    def generate(
        self,
        prompts,
        *,
        max_new_tokens: int = 16,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int = 0,
        stop_token_ids: Sequence[int] | None = None,
        stop_strings: Sequence[str] | str | None = None,
        ignore_eos: bool = False,
        add_bos: bool = True,
        sampling: Sequence[SamplingParams] | SamplingParams | None = None,
        interventions=None,
        intervention_scale=None,
        top_logprobs: int = 0,
        return_logits: bool = False,
    ) -> list[Completion]:
        """Continue a batch of prompts; one ``Completion`` per prompt.

        Args:
          prompts: a list of prompts, each a list of token ids or (with a tokenizer) a string.
            Text prompts get one leading BOS unless ``add_bos=False``.
          max_new_tokens: token budget per prompt.
          temperature: 0 = greedy; > 0 samples from softmax(logits / temperature).
          top_k, top_p: sampling filters (0 / 1.0 = off), applied after temperature.
          seed: random seed; row i uses stream i, so results do not depend on batching.
          stop_token_ids: ids that end a row (the tokenizer's or model's EOS is added unless
            ``ignore_eos``). stop_strings: strings that end a row (needs a tokenizer).
          sampling: per-prompt ``SamplingParams`` instead of the scalar arguments.
          interventions, intervention_scale: steering vectors [L, D] (or [L, B, D]) and
            per-layer scale [L], added to the residual stream after each layer during both
            prefill and decode (see ``steering_interventions``).
          top_logprobs: also return the n most likely tokens at each step.
          return_logits: also return the raw logits [n, V] of every step (tests, research).
        """
        if isinstance(prompts, str) or (len(prompts) and isinstance(prompts[0], (int, np.integer))):
            raise TypeError(
                "prompts must be a list of prompts (each a string or a list of token ids)"
            )
        prompt_ids = [self.encode(p, add_bos=add_bos) for p in prompts]
        if sampling is None:
            sampling = SamplingParams(
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                seed=seed,
                stop_token_ids=stop_token_ids,
                stop_strings=stop_strings,
                ignore_eos=ignore_eos,
            )
        if isinstance(sampling, SamplingParams):
            sampling = [
                dataclasses.replace(sampling, stream=sampling.stream + i)
                for i in range(len(prompt_ids))
            ]
        return self.generate_ids(
            prompt_ids,
            list(sampling),
            interventions=interventions,
            intervention_scale=intervention_scale,
            top_logprobs=top_logprobs,
            return_logits=return_logits,
        )

    def generate_ids(
        self,
        prompt_ids: list[list[int]],
        sampling: list[SamplingParams],
        *,
        interventions=None,
        intervention_scale=None,
        top_logprobs: int = 0,
        return_logits: bool = False,
    ) -> list[Completion]:
        """Generate for token-id prompts with per-row settings (batched decodes of at most
        ``max_batch_size`` rows). ``interventions`` may be [L, D] or per prompt [L, n, D]."""
        n = len(prompt_ids)
        if len(sampling) != n:
            raise ValueError(f"{len(sampling)} sampling settings for {n} prompts")
        if n == 0:
            return []
        if n > self.max_batch_size:
            order = sorted(range(n), key=lambda i: -len(prompt_ids[i]))
            per_row = interventions is not None and np.ndim(interventions) == 3
            results: list[Completion | None] = [None] * n
            for start in range(0, n, self.max_batch_size):
                idx = order[start : start + self.max_batch_size]
                iv = np.asarray(interventions)[:, idx] if per_row else interventions
                outs = self._generate_batch(
                    [prompt_ids[i] for i in idx],
                    [sampling[i] for i in idx],
                    iv,
                    intervention_scale,
                    top_logprobs,
                    return_logits,
                )
                for i, out in zip(idx, outs):
                    results[i] = out
            return results
        return self._generate_batch(
            prompt_ids, sampling, interventions, intervention_scale, top_logprobs, return_logits
        )

    def _generate_batch(
        self, prompt_ids, sampling, interventions, intervention_scale, top_logprobs, return_logits
    ) -> list[Completion]:
        n = len(prompt_ids)
        for i, p in enumerate(prompt_ids):
            if not p:
                raise ValueError(f"prompt {i} is empty; give it at least a BOS token")
            need = len(p) + sampling[i].max_new_tokens
            if need > self.cfg.max_seq_len:
                raise ValueError(
                    f"prompt {i} has {len(p)} tokens + max_new_tokens "
                    f"{sampling[i].max_new_tokens} = "
                    f"{need} > the model's max_seq_len {self.cfg.max_seq_len}; shorten the prompt "
                    f"(keep its last tokens) or ask for fewer new tokens"
                )
        if any(s.stop_strings for s in sampling) and self.tokenizer is None:
            raise ValueError(
                "stop strings need a tokenizer (Engine(model, tokenizer) / generate(tokenizer=...))"
            )
        eos = self.eos_id
        mesh = self.mesh
        b = bucket_batch(n, mesh)
        p_len = bucket_length(max(len(p) for p in prompt_ids), self.min_prompt_bucket)
        max_new = max(s.max_new_tokens for s in sampling)
        n_new = bucket_length(max(max_new, 1), self.min_new_bucket)

        tokens = np.full((b, p_len), PAD_ID, np.int32)
        lengths = np.ones((b,), np.int32)
        for i, p in enumerate(prompt_ids):
            tokens[i, p_len - len(p) :] = p
            lengths[i] = len(p)
        stops = []
        for s in sampling:
            ids = list(s.stop_token_ids)
            if not s.ignore_eos and eos is not None and eos not in ids:
                ids.append(eos)
            stops.append(ids)
        stop_width = bucket_length(max([len(x) for x in stops] + [1]), 4)
        stop_ids = np.full((b, stop_width), -1, np.int32)
        for i, ids in enumerate(stops):
            stop_ids[i, : len(ids)] = ids
        pad = SamplingParams(max_new_tokens=0)
        rows = list(sampling) + [pad] * (b - n)
        samp_np = {
            "temperature": np.asarray([s.temperature for s in rows], np.float32),
            "top_k": np.asarray([s.top_k for s in rows], np.int32),
            "top_p": np.asarray([s.top_p for s in rows], np.float32),
            "seed": np.asarray([s.seed % (2**32) for s in rows], np.uint32),
            "stream": np.asarray([s.stream % (2**32) for s in rows], np.uint32),
            "max_new": np.asarray([s.max_new_tokens for s in rows], np.int32),
            "stop_ids": stop_ids,
        }
        mode = sampling_lib.sampling_mode(
            samp_np["temperature"][:n], samp_np["top_k"][:n], samp_np["top_p"][:n]
        )
        samp = {k: put_batch(v, mesh) for k, v in samp_np.items()}
        iv = put_replicated(self._batch_interventions(interventions, n, b), mesh)
        iscale = put_replicated(intervention_scale, mesh, np.float32)
        statics = dict(
            mode=mode, top_n=_top_n_bucket(top_logprobs), keep_logits=bool(return_logits)
        )
        row_stops = [s.stop_strings for s in rows]
        has_stop_strings = any(row_stops)

        with mesh_scope(mesh):
            st = _prefill(
                self.graphdef,
                self.params,
                put_batch(tokens, mesh),
                put_batch(lengths, mesh),
                samp,
                iv,
                iscale,
                n_new=n_new,
                **statics,
            )
            chunk = self.stop_check_interval if has_stop_strings else n_new
            until = 0
            while True:
                until = min(until + chunk, n_new)
                st = _decode(
                    self.graphdef,
                    self.params,
                    st,
                    samp,
                    iv,
                    iscale,
                    np.int32(until),
                    prompt_len=p_len,
                    **statics,
                )
                done = np.asarray(st["done"])
                if has_stop_strings:
                    toks = np.asarray(st["tokens"])
                    n_gen = np.asarray(st["n_gen"])
                    hit = done.copy()
                    for i in range(n):
                        if not done[i] and row_stops[i]:
                            text = tok_lib.decode_continuation(
                                self.tokenizer, prompt_ids[i], toks[i, : n_gen[i]]
                            )
                            if tok_lib.find_stop_string(text, row_stops[i]):
                                hit[i] = True
                    if (hit != done).any():
                        st = dict(st, done=put_batch(hit, mesh))
                        done = hit
                if done.all() or until >= n_new:
                    break
        host = jax.device_get({k: v for k, v in st.items() if k != "cache"})
        return [
            self._completion(i, prompt_ids[i], sampling[i], stops[i], host, int(top_logprobs))
            for i in range(n)
        ]

    def _completion(self, i, prompt, s: SamplingParams, stop_ids, host, top_n: int) -> Completion:
        count = int(host["n_gen"][i])
        toks = [int(t) for t in host["tokens"][i, :count]]
        lps = [float(x) for x in host["logprobs"][i, :count]]
        top = None
        if "top_ids" in host and top_n:
            top = [
                (host["top_ids"][i, j, :top_n].tolist(), host["top_lps"][i, j, :top_n].tolist())
                for j in range(count)
            ]
        logits = host["logits"][i, :count] if "logits" in host else None
        finish, stop = "length", None
        if toks and toks[-1] in stop_ids:
            finish, stop = "stop", toks[-1]
            toks, lps = toks[:-1], lps[:-1]
        text = None
        if self.tokenizer is not None:
            text = tok_lib.decode_continuation(self.tokenizer, prompt, toks)
            found = tok_lib.find_stop_string(text, s.stop_strings) if s.stop_strings else None
            if found:
                # shortest prefix of tokens whose text holds the stop string
                lo, hi = 1, len(toks)
                while lo < hi:
                    mid = (lo + hi) // 2
                    if tok_lib.find_stop_string(
                        tok_lib.decode_continuation(self.tokenizer, prompt, toks[:mid]),
                        s.stop_strings,
                    ):
                        hi = mid
                    else:
                        lo = mid + 1
                toks, lps = toks[:lo], lps[:lo]
                text = text[: found[0]]
                finish, stop = "stop", found[1]
        if top is not None:
            top = top[: len(toks)]
        if logits is not None:
            logits = logits[: len(toks) + (1 if finish == "stop" and isinstance(stop, int) else 0)]
        return Completion(
            toks,
            logprobs=lps,
            text=text,
            finish_reason=finish,
            stop=stop,
            prompt_ids=prompt,
            top_logprobs=top,
            logits=logits,
        )


def as_engine(model, tokenizer=None) -> Engine:
    """``model`` (a ``Transformer`` or an ``Engine``) as an ``Engine``; ``tokenizer`` is
    given to an engine that has none (a copy: same parameters and settings)."""
    if not isinstance(model, Engine):
        return Engine(model, tokenizer)
    if tokenizer is None or model.tokenizer is not None:
        return model
    tok_lib.check_tokenizer(tokenizer)
    engine = copy.copy(model)
    engine.tokenizer = tokenizer
    return engine


def generate(model, prompts, *, max_new_tokens: int, tokenizer=None, **kwargs) -> list[Completion]:
    """Continue a batch of prompts with the model's KV cache; one compiled decode loop.

    ``model`` is a ``Transformer`` (sharded or not) or an ``Engine``; ``tokenizer`` is needed
    for text prompts and stop strings. The other arguments are those of ``Engine.generate``.
    Returns one ``Completion`` per prompt: a list of generated token ids carrying ``.text``,
    ``.logprobs``, ``.finish_reason`` and ``.stop``.
    """
    return as_engine(model, tokenizer).generate(prompts, max_new_tokens=max_new_tokens, **kwargs)
