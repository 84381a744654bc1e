"""Continuous batching: fixed decode slots over one preallocated KV cache.

``Scheduler(engine, num_slots=32)`` owns a KV cache of ``num_slots`` rows x
``cache_len`` slots and one thread that, between jitted decode dispatches, prefills
waiting requests and inserts them into free rows; a finished row (stop id, stop string,
token budget, cancellation) is free for the next request at once. Every request keeps
its own sampling settings, stop ids / strings, token budget, presence / frequency
penalties and random stream.

Cache layout. The model writes new keys/values at one slot index shared by all rows
(``cache_index``), so rows are aligned on a shared write pointer ``ptr``: a request's
prefilled block (left-padded to its bucket) is copied into its row just before ``ptr``
and each decode step writes every row at ``ptr`` and advances it. Each insertion gets a
fresh segment id, written over the whole row, so the previous occupant's keys are masked
out without clearing them; RoPE positions are explicit per row, so a row's slots need
not start at 0 and pad slots in between are masked. When ``ptr`` reaches the end of the
cache the live slots are shifted left (``_compact``: one copy every few hundred steps).
A decode dispatch computes only the live rows: their state and attention window are
gathered into a batch of the next row bucket (``Scheduler.row_buckets``: powers of two
from ``min_decode_rows`` to ``num_slots``, padded with free rows); after it the state and
only the dispatch's new slots are scattered back, so the tail of a load, when few requests are left, costs what those rows cost. The
window spans the oldest row's history, so when a few old rows would widen it for many
young ones, a round runs as two dispatches (``_decode_groups``): the young rows at a
narrow window, the old ones at a wide one.
Shapes are bounded: one decode shape per (sampling mode, top-logprobs, row bucket,
window bucket: ``Scheduler.window_buckets``), one prefill shape per (rows bucket, length
bucket), one insert shape per prefill shape.

Prefill. Prompts are grouped by length bucket (up to ``max_prefill_rows`` per call, the
rows padded to a power of two, ``Scheduler.prefill_row_buckets``; narrow groups join a
wider one when one call is estimated to cost less, ``_plan_prefills``);
prompts longer than ``prefill_chunk`` run in chunks of that many tokens, each attending
to the keys of the chunks before it (bounded memory and shapes for long prompts).

Prefix cache (``prefix_cache_tokens`` > 0). After a prefill the keys/values of the
prompt's longest ``prefix_block``-aligned proper prefix are kept (LRU, bounded by the
total number of tokens kept); a later prompt that starts with a kept prefix prefills
only its remaining tokens on top of the kept keys. Prefixes are found by chained hashes
of ``prefix_block``-token blocks, so lookup is linear in the prompt length.

Sampling is the engine's: ``sampling.sample_tokens`` on the raw logits minus the
penalties, with the row key of (seed, stream, the row's own token index), so a sampled
request gives the same tokens whichever requests share its decode, and greedy requests
give the tokens of ``Engine.generate``. Results are ``engine.Completion`` objects built by
the engine's own stop-string and stop-id rules.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import threading
import time
from typing import Callable

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
    put_replicated,
)
from eurollm_jax.inference.engine import MAX_TOP_LOGPROBS, Completion, Engine, SamplingParams

logger = logging.getLogger(__name__)

TOP_N = MAX_TOP_LOGPROBS  # top log-probabilities kept per step when any row asks for them


class QueueFull(Exception):
    """The scheduler's waiting queue is full (the server answers 429)."""


# ----------------------------------------------------------------------------- requests
@dataclasses.dataclass
class Request:
    """One sequence to generate. ``on_event(kind, payload)`` is called from the scheduler
    thread: ("tokens", [(id, logprob, top or None), ...]) as tokens are made, then
    ("done", Completion) or ("error", exception)."""

    prompt: list[int]
    sampling: SamplingParams
    top_logprobs: int = 0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    on_event: Callable[[str, object], None] | None = None
    cancelled: bool = False
    # filled by the scheduler
    submitted_at: float = 0.0
    first_token_at: float | None = None
    finished_at: float | None = None
    tokens: list[int] = dataclasses.field(default_factory=list)
    logprobs: list[float] = dataclasses.field(default_factory=list)
    top: list = dataclasses.field(default_factory=list)
    result: Completion | None = None
    error: BaseException | None = None
    done_event: threading.Event = dataclasses.field(default_factory=threading.Event)
    prefix_hit_tokens: int = 0

    def cancel(self):
        """Stop generating (the client went away); the slot is freed at the next step."""
        self.cancelled = True

    def wait(self, timeout: float | None = None) -> Completion:
        if not self.done_event.wait(timeout):
            raise TimeoutError("the request did not finish in time")
        if self.error is not None:
            raise self.error
        return self.result


# ----------------------------------------------------------------------------- compiled steps
def _sample_rows(logits_BV, counts_BV, samp, step_B, *, mode: str, top_n: int):
    """(token, raw logprob, top ids, top logprobs) per row; penalties apply to sampling only."""
    logits_BV = logits_BV.astype(jnp.float32)
    penalised = (
        logits_BV
        - samp["presence"][:, None] * (counts_BV > 0).astype(jnp.float32)
        - samp["frequency"][:, None] * counts_BV.astype(jnp.float32)
    )
    keys = jax.vmap(
        lambda s, r, t: jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(s), r), t)
    )(samp["seed"].astype(jnp.uint32), samp["stream"].astype(jnp.uint32), step_B)
    tok_B = sampling_lib.sample_tokens(
        penalised,
        temperature_B=samp["temperature"],
        top_k_B=samp["top_k"],
        top_p_B=samp["top_p"],
        keys_B2=keys,
        mode=mode,
    )
    logp_BV = jax.nn.log_softmax(logits_BV, axis=-1)
    lp_B = jnp.take_along_axis(logp_BV, tok_B[:, None], axis=-1)[:, 0]
    if top_n:
        top_lp, top_id = jax.lax.top_k(logp_BV, top_n)
    else:
        top_lp = jnp.zeros((tok_B.shape[0], 0), jnp.float32)
        top_id = jnp.zeros((tok_B.shape[0], 0), jnp.int32)
    return tok_B, lp_B, top_id.astype(jnp.int32), top_lp


@functools.partial(jax.jit, static_argnames=("graphdef",), donate_argnames=("cache",))
def _prefill_chunk(graphdef, params, cache, tokens_kC, positions_kC, segments_kC, cache_index):
    """One chunk of prompt tokens into a small per-request cache; logits of its last slot."""
    model = nnx.merge(graphdef, params)
    out = model.forward(
        tokens_kC,
        segment_ids=segments_kC,
        positions=positions_kC,
        cache=cache,
        cache_index=cache_index,
        logits="last",
    )
    return out.cache, out.logits[:, 0]


@functools.partial(jax.jit, static_argnames=("graphdef", "rows", "length"))
def _empty_cache(graphdef, params, *, rows, length):
    return nnx.merge(graphdef, params).init_cache(rows, length)


@functools.partial(jax.jit, donate_argnames=("cache",))
def _place_prefix(cache, k_L1N, v_L1N, n_valid):
    """Kept prefix keys/values ([L, 1, K, N, Dh]) into slots [0, N) of every row of a small
    cache."""
    rows = cache["k"].shape[1]
    n = k_L1N.shape[3]
    k = jnp.broadcast_to(k_L1N, (k_L1N.shape[0], rows) + k_L1N.shape[2:]).astype(cache["k"].dtype)
    v = jnp.broadcast_to(v_L1N, (v_L1N.shape[0], rows) + v_L1N.shape[2:]).astype(cache["v"].dtype)
    seg = jnp.broadcast_to((jnp.arange(n) < n_valid).astype(jnp.int32), (rows, n))
    return {
        "k": jax.lax.dynamic_update_slice(cache["k"], k, (0, 0, 0, 0, 0)),
        "v": jax.lax.dynamic_update_slice(cache["v"], v, (0, 0, 0, 0, 0)),
        "segment_ids": jax.lax.dynamic_update_slice(cache["segment_ids"], seg, (0, 0)),
    }


def _rows_slots(rows, slots):
    """Index of rows x slots in a cache array [L, B, K, S, Dh]. The two advanced indices
    are separated by a slice, so they broadcast to the leading dims: [R, W, L, K, Dh]."""
    return (slice(None), rows[:, None], slice(None), slots[None, :])


def _gather_rows_slots(cache_x, rows, slots):
    """cache_x [L, B, K, S, Dh] at rows x slots -> [L, R, K, W, Dh] (one gather)."""
    return cache_x[_rows_slots(rows, slots)].transpose(2, 0, 3, 1, 4)


def _scatter_rows_slots(cache_x, rows, slots, part):
    """``cache_x`` with rows x slots set to ``part`` [L, R, K, W, Dh] (one scatter)."""
    return cache_x.at[_rows_slots(rows, slots)].set(
        part.astype(cache_x.dtype).transpose(1, 3, 0, 2, 4))


@functools.partial(jax.jit, static_argnames=("mode", "top_n"), donate_argnames=("st",))
def _insert(st, small, logits_kV, rows_k, uids_k, lengths_k, row_samp, ptr, *, mode, top_n):
    """Copy prefilled rows into the big cache just before ``ptr``, sample each row's first
    token and reset the rows' decode state."""
    k = rows_k.shape[0]
    ps = small["k"].shape[3]
    s_len = st["cache"]["k"].shape[3]
    start = ptr - ps
    ck, cv, cseg = st["cache"]["k"], st["cache"]["v"], st["cache"]["segment_ids"]
    # one scatter per array: rows_k x slots [start, ptr) (padding rows repeat row 0)
    slots = start + jnp.arange(ps, dtype=jnp.int32)
    ck = _scatter_rows_slots(ck, rows_k, slots, small["k"])
    cv = _scatter_rows_slots(cv, rows_k, slots, small["v"])
    block = jnp.where(small["segment_ids"] > 0, uids_k[:, None], 0)
    row_seg = jax.lax.dynamic_update_slice(jnp.zeros((k, s_len), jnp.int32), block, (0, start))
    cseg = cseg.at[rows_k].set(row_seg)
    zero_counts = jnp.zeros((k, st["counts"].shape[1]), st["counts"].dtype)
    tok, lp, top_id, top_lp = _sample_rows(
        logits_kV, zero_counts, row_samp, jnp.zeros((k,), jnp.int32), mode=mode, top_n=top_n
    )
    is_stop = jnp.any(tok[:, None] == row_samp["stop_ids"], axis=-1)
    new = dict(st, cache={"k": ck, "v": cv, "segment_ids": cseg})
    for name in ("temperature", "top_k", "top_p", "seed", "stream", "max_new", "stop_ids",
                 "presence", "frequency"):
        new[name] = st[name].at[rows_k].set(row_samp[name])
    new["last"] = st["last"].at[rows_k].set(tok)
    new["pos"] = st["pos"].at[rows_k].set(lengths_k)
    new["seg"] = st["seg"].at[rows_k].set(uids_k)
    new["n_gen"] = st["n_gen"].at[rows_k].set(1)
    new["done"] = st["done"].at[rows_k].set(is_stop | (row_samp["max_new"] <= 1))
    counts = st["counts"].at[rows_k].set(0)
    new["counts"] = counts.at[rows_k, tok].set(1)  # (padding rows repeat row 0: set, not add)
    return new, (tok, lp, top_id, top_lp)


@functools.partial(
    jax.jit,
    static_argnames=("graphdef", "steps", "mode", "top_n", "window"),
    donate_argnames=("st",),
)
def _decode(graphdef, params, st, ptr, window_start, rows_R, hold_R, *, steps, mode, top_n,
            window):
    """``steps`` decode steps for the rows ``rows_R`` (distinct; the live rows, padded with
    free ones to a row bucket), writing at ``ptr``, ``ptr + 1``, ...; rows that are done
    stop recording (their later columns are padding). Attention reads only the ``window``
    slots from ``window_start`` (which hold every live row's keys). Those rows' state and
    window are gathered once per dispatch; the state and the ``steps`` new slots (nothing
    else in the window changes) are scattered back after it, so a half-empty
    batch costs half: compute follows the live rows, not the slot count. ``hold_R`` marks
    padding rows that are live but decoded by a later dispatch of the same round: they are
    held (no token, no state change; their ``steps`` new slots get scratch values that the
    later dispatch overwrites before reading)."""
    model = nnx.merge(graphdef, params)
    full = st["cache"]

    # one gather per array: rows_R x slots [window_start, window_start + window)
    slots_W = window_start + jnp.arange(window, dtype=jnp.int32)
    sub = {name: v[rows_R] for name, v in st.items() if name != "cache"}
    done_before = sub["done"]
    sub["done"] = done_before | hold_R
    sub["cache"] = {
        "k": _gather_rows_slots(full["k"], rows_R, slots_W),
        "v": _gather_rows_slots(full["v"], rows_R, slots_W),
        "segment_ids": full["segment_ids"][rows_R[:, None], slots_W[None, :]],
    }
    ptr = ptr - window_start
    r = rows_R.shape[0]
    toks = jnp.full((r, steps), PAD_ID, jnp.int32)
    lps = jnp.zeros((r, steps), jnp.float32)
    tops_i = jnp.zeros((r, steps, top_n), jnp.int32)
    tops_l = jnp.zeros((r, steps, top_n), jnp.float32)

    def body(i, carry):
        s, toks, lps, tops_i, tops_l = carry
        out = model.forward(
            s["last"][:, None],
            segment_ids=s["seg"][:, None],
            positions=s["pos"][:, None],
            cache=s["cache"],
            cache_index=ptr + i,
            logits="last",
        )
        tok, lp, top_id, top_lp = _sample_rows(
            out.logits[:, 0], s["counts"], s, s["n_gen"], mode=mode, top_n=top_n
        )
        active = ~s["done"]
        toks = toks.at[:, i].set(jnp.where(active, tok, PAD_ID))
        lps = lps.at[:, i].set(jnp.where(active, lp, 0.0))
        if top_n:
            tops_i = tops_i.at[:, i].set(top_id)
            tops_l = tops_l.at[:, i].set(top_lp)
        is_stop = jnp.any(tok[:, None] == s["stop_ids"], axis=-1)
        n_gen = s["n_gen"] + active.astype(jnp.int32)
        s = dict(
            s,
            cache=out.cache,
            last=jnp.where(active, tok, s["last"]),
            pos=s["pos"] + active.astype(jnp.int32),
            n_gen=n_gen,
            done=s["done"] | (active & (is_stop | (n_gen >= s["max_new"]))),
            counts=s["counts"].at[jnp.arange(r), tok].add(active.astype(s["counts"].dtype)),
        )
        return s, toks, lps, tops_i, tops_l

    sub, toks, lps, tops_i, tops_l = jax.lax.fori_loop(
        0, steps, body, (sub, toks, lps, tops_i, tops_l))
    sub["done"] = jnp.where(hold_R, done_before, sub["done"])
    new = {name: st[name].at[rows_R].set(sub[name]) for name in st if name != "cache"}
    c = sub["cache"]
    slots_N = window_start + ptr + jnp.arange(steps, dtype=jnp.int32)
    new_k = jax.lax.dynamic_slice_in_dim(c["k"], ptr, steps, axis=3)
    new_v = jax.lax.dynamic_slice_in_dim(c["v"], ptr, steps, axis=3)
    new_seg = jax.lax.dynamic_slice_in_dim(c["segment_ids"], ptr, steps, axis=1)
    new["cache"] = {
        "k": _scatter_rows_slots(full["k"], rows_R, slots_N, new_k),
        "v": _scatter_rows_slots(full["v"], rows_R, slots_N, new_v),
        "segment_ids": full["segment_ids"].at[rows_R[:, None], slots_N[None, :]].set(new_seg),
    }
    return new, (toks, lps, tops_i, tops_l, sub["n_gen"], sub["done"])


@functools.partial(jax.jit, donate_argnames=("st",))
def _compact(st, shift):
    """Move every row's slots ``shift`` places left (the write pointer moves with them)."""
    def roll(x, axis):
        return jnp.roll(x, -shift, axis=axis)

    cache = st["cache"]
    seg = roll(cache["segment_ids"], 1)
    s_len = seg.shape[1]
    seg = jnp.where(jnp.arange(s_len)[None, :] < s_len - shift, seg, 0)
    return dict(st, cache={"k": roll(cache["k"], 3), "v": roll(cache["v"], 3), "segment_ids": seg})


@functools.partial(jax.jit, donate_argnames=("st",))
def _mark_done(st, mask_B):
    return dict(st, done=st["done"] | mask_B)


@functools.partial(jax.jit, static_argnames=("length",))
def _slice_prefix(small, row, start, *, length):
    def one(x):
        x = jax.lax.dynamic_slice_in_dim(x, row, 1, axis=1)
        return jax.lax.dynamic_slice_in_dim(x, start, length, axis=3)

    return one(small["k"]), one(small["v"])


# ----------------------------------------------------------------------------- prefix cache
class PrefixCache:
    """Keys/values of prompt prefixes, LRU under a budget of ``max_tokens`` kept tokens.

    An entry keeps the keys/values of one prompt's first n tokens (n a multiple of
    ``block``) and is indexed by the chained hash of every block boundary inside it, so a
    later prompt that shares only the first few blocks (a system prompt, a rubric) finds
    that many tokens too."""

    def __init__(self, block: int, max_tokens: int):
        self.block, self.max_tokens = int(block), int(max_tokens)
        self.entries: collections.OrderedDict[int, tuple[tuple, object, object]] = (
            collections.OrderedDict()
        )
        self.index: dict[int, tuple[int, int]] = {}  # boundary hash -> (entry id, n)
        self._slices: dict[tuple[int, int], tuple] = {}
        self._next_id = 0
        self.tokens = 0
        self.hits = self.misses = self.hit_tokens = 0

    def block_hashes(self, ids) -> list[int]:
        """Hash of ids[: (j + 1) * block] for each whole block j."""
        out, h = [], 0
        for j in range(len(ids) // self.block):
            h = hash((h, tuple(ids[j * self.block : (j + 1) * self.block])))
            out.append(h)
        return out

    def _find(self, ids):
        hashes = self.block_hashes(ids[:-1])  # a proper prefix: one token is left to prefill
        for j in range(len(hashes) - 1, -1, -1):
            hit = self.index.get(hashes[j])
            if hit is None:
                continue
            eid, n = hit
            entry = self.entries.get(eid)
            if entry is not None and entry[0][:n] == tuple(ids[:n]):
                return eid, n
        return None

    def lookup(self, ids):
        """(entry id, n tokens) of the longest kept proper prefix of ``ids``, or None."""
        found = self._find(ids)
        if found is None:
            self.misses += 1
            return None
        self.entries.move_to_end(found[0])
        self.hits += 1
        self.hit_tokens += found[1]
        return found

    def keys_values(self, eid: int, n: int):
        """The entry's first ``n`` keys and values ([L, 1, K, n, Dh] each)."""
        key = (eid, n)
        if key not in self._slices:
            _, k, v = self.entries[eid]
            self._slices[key] = (k[:, :, :, :n], v[:, :, :, :n])
        return self._slices[key]

    def wants(self, ids) -> int:
        """Length of the prefix of ``ids`` worth keeping (0: none, or already kept)."""
        n = ((len(ids) - 1) // self.block) * self.block
        if n <= 0 or n > self.max_tokens:
            return 0
        found = self._find(list(ids[:n]) + [0])
        return 0 if found is not None and found[1] >= n else n

    def add(self, ids, n, k, v):
        eid = self._next_id
        self._next_id += 1
        self.entries[eid] = (tuple(ids[:n]), k, v)
        for j, h in enumerate(self.block_hashes(ids[:n])):
            self.index[h] = (eid, (j + 1) * self.block)
        self.tokens += n
        while self.tokens > self.max_tokens and self.entries:
            old, (kept, *_rest) = self.entries.popitem(last=False)
            self.tokens -= len(kept)
            self.index = {h: x for h, x in self.index.items() if x[0] != old}
            self._slices = {key: x for key, x in self._slices.items() if key[0] != old}

    def stats(self) -> dict:
        return {
            "entries": len(self.entries),
            "tokens": self.tokens,
            "hits": self.hits,
            "misses": self.misses,
            "hit_tokens": self.hit_tokens,
        }


# ----------------------------------------------------------------------------- scheduler
@dataclasses.dataclass
class _Slot:
    request: Request
    stop_ids: list[int]
    first_slot: int  # cache slot of the row's first real token (before compaction shifts)


class Scheduler:
    """Continuous batching over ``engine`` (see the module docstring).

    Args:
      num_slots: decode rows (concurrently generating sequences).
      cache_len: KV slots per row; default ``2 * max_seq_len`` rounded up to the prefill
        chunk (room for a full-length prompt block plus a full-length live sequence).
      prefill_chunk: prompts longer than this prefill in chunks of this many tokens.
      max_prefill_rows: prompts per prefill call; a call's rows are padded to a power of
        two (``prefill_row_buckets``), so a call of 3 prompts computes 4 rows, not 8.
      decode_steps: decode steps per dispatch (new requests join between dispatches).
      max_queue: waiting requests before ``submit`` raises ``QueueFull``.
      min_decode_rows: the smallest row bucket of a decode dispatch (see ``row_buckets``):
        a dispatch computes only the live rows, padded to a bucket.
      prefix_cache_tokens: token budget of the prefix cache (0 = off); prefix_block: its
        granularity.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        num_slots: int = 32,
        cache_len: int | None = None,
        prefill_chunk: int = 512,
        max_prefill_rows: int = 8,
        decode_steps: int = 4,
        max_queue: int = 1024,
        prefix_cache_tokens: int = 0,
        prefix_block: int = 64,
        min_prompt_bucket: int = 16,
        min_decode_rows: int = 8,
    ):
        self.engine = engine
        self.cfg = engine.cfg
        self.num_slots = int(num_slots)
        self.prefill_chunk = bucket_length(int(prefill_chunk), min_prompt_bucket)
        self.max_prefill_rows = max(1, int(max_prefill_rows))
        self.decode_steps = max(1, int(decode_steps))
        self.min_prompt_bucket = int(min_prompt_bucket)
        self.min_decode_rows = int(min_decode_rows)
        max_len = self.cfg.max_seq_len
        self.max_block = self._block_len(max_len)  # widest prefill block
        default_len = self.max_block + max_len + 4 * self.decode_steps
        self.cache_len = int(cache_len or default_len)
        if self.cache_len < self.max_block + self.decode_steps:
            raise ValueError(
                f"cache_len {self.cache_len} is too small: it needs at least the widest prefill "
                f"block ({self.max_block}) plus decode_steps ({self.decode_steps})"
            )
        self.max_queue = int(max_queue)
        self.prefix_cache = (
            PrefixCache(prefix_block, prefix_cache_tokens) if prefix_cache_tokens > 0 else None
        )
        self.mesh = engine.mesh
        self._row_buckets = self._compute_row_buckets()
        self._window_buckets = self._compute_window_buckets()
        self._prefill_row_buckets = self._compute_prefill_row_buckets()
        self._waiting: collections.deque[Request] = collections.deque()
        self._lock = threading.Condition()
        self._slots: list[_Slot | None] = [None] * self.num_slots
        self._uid = 0
        self._ptr = self.max_block
        self._state = None
        self._warmup_request = None
        self._stopped = False
        self._tokens_total = 0
        self._rate_window: collections.deque[tuple[float, int]] = collections.deque()
        self.stats = {
            "requests": 0, "finished": 0, "cancelled": 0, "prefills": 0, "prefill_rows": 0,
            "decode_dispatches": 0,
            "compactions": 0, "prompt_tokens": 0, "prefill_tokens": 0, "generated_tokens": 0,
            "decode_row_steps": 0, "decode_slot_steps": 0, "decode_split_rounds": 0,
            "decode_held_rows": 0,
            "step_errors": 0,
        }
        self._admitting: list[Request] = []  # taken from the queue, not yet in a slot
        self._thread = threading.Thread(target=self._loop, name="eurollm-scheduler", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ public
    def submit(self, request: Request) -> Request:
        """Queue ``request`` (validated here: ValueError names what is wrong)."""
        self._validate(request)
        with self._lock:
            if self._stopped:
                raise RuntimeError("the scheduler is closed")
            if len(self._waiting) >= self.max_queue:
                raise QueueFull(f"{len(self._waiting)} requests are waiting (max_queue)")
            request.submitted_at = time.perf_counter()
            self._waiting.append(request)
            self.stats["requests"] += 1
            self._lock.notify_all()
        return request

    def generate_ids(self, prompts, sampling, *, top_logprobs: int = 0) -> list[Completion]:
        """Blocking convenience: submit every prompt, wait for all (results in order)."""
        reqs = [
            self.submit(Request(list(p), s, top_logprobs=top_logprobs))
            for p, s in zip(prompts, sampling)
        ]
        return [r.wait() for r in reqs]

    def metrics(self) -> dict:
        now = time.perf_counter()
        with self._lock:
            running = sum(s is not None for s in self._slots)
            waiting = len(self._waiting)
            window = [(t, n) for t, n in self._rate_window if now - t <= 10.0]
        rate = 0.0
        if window:
            span = max(now - window[0][0], 1e-3)
            rate = sum(n for _, n in window) / span
        out = dict(self.stats)
        out.update(
            queue_length=waiting,
            running_slots=running,
            num_slots=self.num_slots,
            tokens_per_s=rate,
            cache_len=self.cache_len,
        )
        if self.prefix_cache is not None:
            out["prefix_cache"] = self.prefix_cache.stats()
        return out

    def warmup(self, max_prompt_len: int | None = None):
        """Compile the shapes serving will meet, before the first request: the decode
        step at every attention-window bucket (greedy) and prefill + insert at every
        block width up to ``max_prompt_len`` (default: the model's context) for every
        ``prefill_row_buckets`` row count. Blocks until done; call before submitting."""
        done = threading.Event()
        self._warmup_request = (max_prompt_len, done)
        with self._lock:
            self._lock.notify_all()
        done.wait()

    def _warmup(self, max_prompt_len):
        eng, st = self.engine, self._state
        widths, n = [], self.min_prompt_bucket
        top = self._block_len(max_prompt_len or self.cfg.max_seq_len)
        while True:
            w = self._block_len(n)
            if w > top:
                break
            if w not in widths:
                widths.append(w)
            n = w + 1
        for w in widths:
            for k in self.prefill_row_buckets():
                chunk = min(w, self.prefill_chunk)
                small = _empty_cache(eng.graphdef, eng.params, rows=k, length=w)
                zeros = put_replicated(np.zeros((k, chunk), np.int32), self.mesh)
                small, logits = _prefill_chunk(
                    eng.graphdef, eng.params, small, zeros, zeros, zeros, np.int32(0)
                )
                reqs = [Request([1], SamplingParams(max_new_tokens=1))] * k
                row_samp = self._row_sampling(reqs, [[] for _ in reqs])
                st, _ = _insert(
                    st, small, logits,
                    put_replicated(np.arange(k, dtype=np.int32) % self.num_slots, self.mesh),
                    put_replicated(np.ones(k, np.int32), self.mesh),
                    put_replicated(np.ones(k, np.int32), self.mesh),
                    {key: put_replicated(x, self.mesh) for key, x in row_samp.items()},
                    np.int32(max(self._ptr, w)), mode="greedy", top_n=0,
                )
        for rows in self.row_buckets():
            row_ids = put_replicated(np.arange(rows, dtype=np.int32), self.mesh)
            for window in self.window_buckets():
                st, _ = _decode(
                    eng.graphdef, eng.params, st, np.int32(self._ptr), np.int32(0), row_ids,
                    put_replicated(np.zeros(rows, bool), self.mesh),
                    steps=self.decode_steps, mode="greedy", top_n=0, window=window,
                )
        st = _compact(st, np.int32(0))
        self._state = _mark_done(st, put_replicated(np.ones(self.num_slots, bool), self.mesh))
        jax.block_until_ready(self._state)

    def close(self):
        with self._lock:
            self._stopped = True
            self._lock.notify_all()
        self._thread.join(timeout=60)

    # ------------------------------------------------------------ validation
    def _block_len(self, n: int) -> int:
        """Prefill block width for ``n`` prompt tokens (a bucket, or whole chunks)."""
        if n <= self.prefill_chunk:
            return bucket_length(n, self.min_prompt_bucket)
        return -(-n // self.prefill_chunk) * self.prefill_chunk

    def _validate(self, r: Request):
        p, s = r.prompt, r.sampling
        if not p:
            raise ValueError("the prompt is empty; give it at least a BOS token")
        bad = [t for t in p if not 0 <= int(t) < self.cfg.vocab_size]
        if bad:
            raise ValueError(f"token ids {bad[:5]} are outside the vocabulary [0, {self.cfg.vocab_size})")
        if len(p) + s.max_new_tokens > self.cfg.max_seq_len:
            raise ValueError(
                f"the prompt has {len(p)} tokens + max_new_tokens {s.max_new_tokens} > the "
                f"model's max_seq_len {self.cfg.max_seq_len}"
            )
        if s.stop_strings and self.engine.tokenizer is None:
            raise ValueError("stop strings need a tokenizer")
        if not 0 <= r.top_logprobs <= TOP_N:
            raise ValueError(f"top_logprobs must be in [0, {TOP_N}], got {r.top_logprobs}")

    # ------------------------------------------------------------ state
    def _init_state(self):
        b, v = self.num_slots, self.cfg.vocab_size
        cache = _empty_cache(
            self.engine.graphdef, self.engine.params, rows=b, length=self.cache_len
        )
        host = {
            "temperature": np.zeros(b, np.float32), "top_k": np.zeros(b, np.int32),
            "top_p": np.ones(b, np.float32), "seed": np.zeros(b, np.uint32),
            "stream": np.zeros(b, np.uint32), "max_new": np.zeros(b, np.int32),
            "stop_ids": np.full((b, 8), -1, np.int32), "presence": np.zeros(b, np.float32),
            "frequency": np.zeros(b, np.float32), "last": np.zeros(b, np.int32),
            "pos": np.zeros(b, np.int32), "seg": np.zeros(b, np.int32),
            "n_gen": np.zeros(b, np.int32), "done": np.ones(b, bool),
            "counts": np.zeros((b, v), np.int32),
        }
        st = {k: put_replicated(x, self.mesh) for k, x in host.items()}
        st["cache"] = cache
        return st

    def _row_sampling(self, reqs: list[Request], stops: list[list[int]]):
        width = self._state["stop_ids"].shape[1]
        return {
            "temperature": np.asarray([r.sampling.temperature for r in reqs], np.float32),
            "top_k": np.asarray([r.sampling.top_k for r in reqs], np.int32),
            "top_p": np.asarray([r.sampling.top_p for r in reqs], np.float32),
            "seed": np.asarray([r.sampling.seed % (2**32) for r in reqs], np.uint32),
            "stream": np.asarray([r.sampling.stream % (2**32) for r in reqs], np.uint32),
            "max_new": np.asarray([r.sampling.max_new_tokens for r in reqs], np.int32),
            "stop_ids": np.asarray([ids + [-1] * (width - len(ids)) for ids in stops], np.int32),
            "presence": np.asarray([r.presence_penalty for r in reqs], np.float32),
            "frequency": np.asarray([r.frequency_penalty for r in reqs], np.float32),
        }

    def _stop_ids(self, s: SamplingParams) -> list[int]:
        ids = list(s.stop_token_ids)
        eos = self.engine.eos_id
        if not s.ignore_eos and eos is not None and eos not in ids:
            ids.append(eos)
        return ids

    # ------------------------------------------------------------ loop
    def _loop(self):
        try:
            with mesh_scope(self.mesh):
                self._state = self._init_state()
                while True:
                    with self._lock:
                        while (
                            not self._stopped
                            and not self._waiting
                            and not any(self._slots)
                            and self._warmup_request is None
                        ):
                            self._lock.wait(timeout=1.0)
                        if self._stopped:
                            break
                    if self._warmup_request is not None and not any(self._slots):
                        max_len, done = self._warmup_request
                        self._warmup_request = None
                        try:
                            self._warmup(max_len)
                        finally:
                            done.set()
                    try:
                        self._drop_cancelled_waiting()
                        self._admit()
                        if any(self._slots):
                            self._decode_once()
                    except Exception as e:  # noqa: BLE001 - fail what was in flight, go on
                        self._recover(e)
        except BaseException as e:  # noqa: BLE001 - every waiting request learns of it
            logger.exception("the scheduler failed")
            self._fail_all(e)
            return
        self._fail_all(RuntimeError("the server is shutting down"))

    def _recover(self, error):
        """A step raised: the requests it held (in slots or being admitted) fail with the
        error, the decode state is rebuilt, and the scheduler keeps serving the queue."""
        logger.exception("a scheduler step failed; failing its %d in-flight requests",
                         sum(s is not None for s in self._slots) + len(self._admitting))
        self.stats["step_errors"] += 1
        with self._lock:
            in_flight = [s.request for s in self._slots if s is not None] + self._admitting
            self._slots = [None] * self.num_slots
            self._admitting = []
        seen = set()
        for r in in_flight:
            if id(r) not in seen and not r.done_event.is_set():
                seen.add(id(r))
                self._finish_error(r, error)
        self._state = self._init_state()

    def _fail_all(self, error):
        with self._lock:
            self._stopped = True
            pending = list(self._waiting) + [s.request for s in self._slots if s is not None]
            self._waiting.clear()
            self._slots = [None] * self.num_slots
        for r in pending:
            self._finish_error(r, error)

    def _finish_error(self, r: Request, error):
        r.error = error
        r.finished_at = time.perf_counter()
        if r.on_event:
            r.on_event("error", error)
        r.done_event.set()

    def _drop_cancelled_waiting(self):
        with self._lock:
            keep = collections.deque(r for r in self._waiting if not r.cancelled)
            dropped = [r for r in self._waiting if r.cancelled]
            self._waiting = keep
        for r in dropped:
            self.stats["cancelled"] += 1
            self._finish_error(r, RuntimeError("cancelled"))

    def _take_waiting(self, n: int) -> list[Request]:
        with self._lock:
            out = []
            while self._waiting and len(out) < n:
                out.append(self._waiting.popleft())
            return out

    def _admit(self):
        free = [i for i, s in enumerate(self._slots) if s is None]
        if not free:
            return
        reqs = self._take_waiting(len(free))
        self._admitting = list(reqs)
        ready = []
        for r in reqs:
            if r.sampling.max_new_tokens == 0:
                self._complete(r, [])
            else:
                ready.append(r)
        # group: prefix hits by kept prefix, the rest by prefill block width. A miss that starts
        # like an earlier miss of this round waits one step: it will find that one's prefix.
        groups: dict[tuple, list] = collections.OrderedDict()
        first_blocks, deferred = set(), []
        pc = self.prefix_cache
        for r in ready:
            found = pc.lookup(r.prompt) if pc else None
            if found is not None:
                eid, n = found
                k, v = pc.keys_values(eid, n)
                # one group per kept prefix, whatever the suffix lengths: a hit's cost is
                # mostly attention to the prefix, so fewer, fuller calls beat tight widths
                key = ("hit", eid, n)
                groups.setdefault(key, []).append((r, (n, k, v)))
                continue
            if pc is not None and len(r.prompt) > pc.block:
                first = pc.block_hashes(r.prompt[: pc.block])[0]
                if first in first_blocks:
                    pc.misses -= 1  # counted when it is looked up again
                    deferred.append(r)
                    continue
                first_blocks.add(first)
            groups.setdefault(("plain", self._block_len(len(r.prompt))), []).append((r, None))
        if deferred:
            with self._lock:
                self._waiting.extendleft(reversed(deferred))
            self._admitting = [r for r in self._admitting if all(r is not d for d in deferred)]
        for part in self._plan_prefills(groups):
            rows = [free.pop(0) for _ in part]
            self._prefill_and_insert([r for r, _ in part], rows, part[0][1])
        self._admitting = []

    # the estimated cost of a prefill call, in row-tokens: a fixed part worth about 140
    # row-tokens plus rows x width (fitted on the CPU tiny model: 4.4 ms + 32 us per 1000)
    PREFILL_CALL_COST = 140

    def _prefill_cost(self, items) -> float:
        width = max(self._block_len(len(r.prompt)) for r, _ in items)
        calls = -(-len(items) // self.max_prefill_rows)
        last = len(items) - (calls - 1) * self.max_prefill_rows
        rows = (calls - 1) * self.max_prefill_rows + self._prefill_rows(last)
        return calls * self.PREFILL_CALL_COST + rows * width

    def _plan_prefills(self, groups) -> list[list]:
        """This round's prefill calls, each a list of (request, hit) of at most
        ``max_prefill_rows``. Prefix hits go by kept prefix; plain prompts, taken narrowest
        first, join the previous width's group when one call at the wider width is
        estimated to cost less than two (a call of 3 short prompts and 1 longer one beats
        three calls of 1-2 rows)."""
        plain = [groups[key] for key in sorted(k for k in groups if k[0] == "plain")]  # by width
        merged: list[list] = []
        for items in plain:
            if merged and (self._prefill_cost(merged[-1] + items)
                           <= self._prefill_cost(merged[-1]) + self._prefill_cost(items)):
                merged[-1] = merged[-1] + items
            else:
                merged.append(list(items))
        hits = [items for key, items in groups.items() if key[0] == "hit"]
        return [items[start : start + self.max_prefill_rows]
                for items in hits + merged
                for start in range(0, len(items), self.max_prefill_rows)]

    def _prefill_and_insert(self, reqs: list[Request], rows: list[int], hit):
        eng = self.engine
        n_pre = hit[0] if hit is not None else 0
        suffixes = [r.prompt[n_pre:] for r in reqs]
        suf_block = self._block_len(max(len(x) for x in suffixes))
        if n_pre + suf_block > self.max_block:  # too wide with the prefix: prefill it all
            return self._prefill_and_insert(reqs, rows, None)
        # kept prefix in slots [0, n_pre), the suffix block right-aligned (pad slots between
        # them are masked); the width is bucketed so that few shapes are compiled
        width = self._block_len(n_pre + suf_block)
        base = width - suf_block
        k = self._prefill_rows(len(reqs))
        pad_reqs = reqs + [reqs[0]] * (k - len(reqs))
        pad_rows = rows + [rows[0]] * (k - len(rows))
        tokens = np.full((k, suf_block), PAD_ID, np.int32)
        positions = np.zeros((k, suf_block), np.int32)
        segments = np.zeros((k, suf_block), np.int32)
        for i, r in enumerate(pad_reqs):
            suf = r.prompt[n_pre:]
            tokens[i, suf_block - len(suf) :] = suf
            positions[i, suf_block - len(suf) :] = np.arange(n_pre, n_pre + len(suf))
            segments[i, suf_block - len(suf) :] = 1
        small = _empty_cache(eng.graphdef, eng.params, rows=k, length=width)
        if hit is not None:
            small = _place_prefix(small, hit[1], hit[2], np.int32(n_pre))
        chunk = min(suf_block, self.prefill_chunk)
        logits = None
        for c0 in range(0, suf_block, chunk):
            small, logits = _prefill_chunk(
                eng.graphdef,
                eng.params,
                small,
                put_replicated(tokens[:, c0 : c0 + chunk], self.mesh),
                put_replicated(positions[:, c0 : c0 + chunk], self.mesh),
                put_replicated(segments[:, c0 : c0 + chunk], self.mesh),
                np.int32(base + c0),
            )
        self.stats["prefills"] += 1
        self.stats["prefill_rows"] += k  # computed, padding included
        self.stats["prefill_tokens"] += sum(len(x) for x in suffixes)
        self.stats["prompt_tokens"] += sum(len(r.prompt) for r in reqs)
        if self.prefix_cache is not None:
            for i, r in enumerate(reqs):
                r.prefix_hit_tokens = n_pre
                # keep prefixes from plain prefills, where the prompt is contiguous
                n = self.prefix_cache.wants(r.prompt) if hit is None else 0
                if n:
                    pk, pv = _slice_prefix(
                        small, np.int32(i), np.int32(width - len(r.prompt)), length=n
                    )
                    self.prefix_cache.add(r.prompt, n, pk, pv)
        stops = [self._stop_ids(r.sampling) for r in pad_reqs]
        max_stops = self._state["stop_ids"].shape[1]
        if max(len(x) for x in stops) > max_stops:
            raise ValueError(f"at most {max_stops} stop token ids per request")
        uids = []
        for _ in pad_reqs:
            self._uid = self._uid % (2**30) + 1
            uids.append(self._uid)
        uids = uids[: len(reqs)] + [uids[0]] * (k - len(reqs))
        row_samp = self._row_sampling(pad_reqs, stops)
        top_n = TOP_N if any(r.top_logprobs for r in reqs) else 0
        mode = sampling_lib.sampling_mode(
            row_samp["temperature"], row_samp["top_k"], row_samp["top_p"]
        )
        self._state, first = _insert(
            self._state,
            small,
            logits,
            put_replicated(np.asarray(pad_rows, np.int32), self.mesh),
            put_replicated(np.asarray(uids, np.int32), self.mesh),
            put_replicated(np.asarray([len(r.prompt) for r in pad_reqs], np.int32), self.mesh),
            {key: put_replicated(x, self.mesh) for key, x in row_samp.items()},
            np.int32(self._ptr),
            mode=mode,
            top_n=top_n,
        )
        tok, lp, top_id, top_lp = jax.device_get(first)
        now = time.perf_counter()
        for i, (r, row) in enumerate(zip(reqs, rows)):
            slot = _Slot(r, stops[i], self._ptr - width)
            with self._lock:
                self._slots[row] = slot
            r.first_token_at = now
            top = (top_id[i].tolist(), top_lp[i].tolist()) if top_n else None
            self._emit(row, [(int(tok[i]), float(lp[i]), top)])
        self._record_rate(now, len(reqs))

    def _record_rate(self, now, n):
        self._rate_window.append((now, n))
        while self._rate_window and now - self._rate_window[0][0] > 10.0:
            self._rate_window.popleft()
        self.stats["generated_tokens"] += n

    def _decode_once(self):
        steps = self.decode_steps
        if self._ptr + steps > self.cache_len:
            self._compact_cache()
        live = [s for s in self._slots if s is not None]
        temps = [s.request.sampling.temperature for s in live]
        mode = sampling_lib.sampling_mode(
            temps, [s.request.sampling.top_k for s in live], [s.request.sampling.top_p for s in live]
        )
        top_n = TOP_N if any(s.request.top_logprobs for s in live) else 0
        n_before = {i: len(s.request.tokens) for i, s in enumerate(self._slots) if s is not None}
        dispatched = []
        for rows, hold, window in self._decode_groups(steps):
            # the attention window: from the group's oldest first slot to the last new slot
            start = min(max(self._ptr + steps - window, 0), self.cache_len - window)
            self._state, out = _decode(
                self.engine.graphdef, self.engine.params, self._state, np.int32(self._ptr),
                np.int32(start), put_replicated(np.asarray(rows, np.int32), self.mesh),
                put_replicated(np.asarray(hold, bool), self.mesh),
                steps=steps, mode=mode, top_n=top_n, window=window,
            )
            self.stats["decode_dispatches"] += 1
            self.stats["decode_row_steps"] += len(rows) * steps
            self.stats["decode_slot_steps"] += len(rows) * window * steps
            dispatched.append((rows, hold, out))
        outputs = {}  # row -> (its dispatch's outputs, its index there)
        for (rows, hold, _), got in zip(dispatched, jax.device_get([d[2] for d in dispatched])):
            for i, (row, held) in enumerate(zip(rows, hold)):
                if not held:
                    outputs[row] = (got, i)
        self._ptr += steps
        now = time.perf_counter()
        made = 0
        force_done = np.zeros(self.num_slots, bool)
        for row, before in n_before.items():
            (toks, lps, tops_i, tops_l, n_gen, done), i = outputs[row]
            new = int(n_gen[i]) - before
            items = []
            for j in range(max(new, 0)):
                top = (tops_i[i, j].tolist(), tops_l[i, j].tolist()) if top_n else None
                items.append((int(toks[i, j]), float(lps[i, j]), top))
            made += len(items)
            slot = self._slots[row]
            if self._emit(row, items, device_done=bool(done[i])):
                force_done[row] = not done[i]
            elif slot.request.cancelled:
                force_done[row] = True
                self._release(row)
                self.stats["cancelled"] += 1
                self._finish_error(slot.request, RuntimeError("cancelled"))
        if force_done.any():
            self._state = _mark_done(self._state, put_replicated(force_done, self.mesh))
        self._record_rate(now, made)

    def prefill_row_buckets(self) -> list[int]:
        """The row counts a prefill call runs at: 1, 2, 4, ... below ``max_prefill_rows``,
        and ``max_prefill_rows``."""
        return list(self._prefill_row_buckets)

    def _compute_prefill_row_buckets(self) -> tuple[int, ...]:
        return tuple(sorted({self._prefill_rows(n) for n in range(1, self.max_prefill_rows + 1)}))

    def _prefill_rows(self, n: int) -> int:
        return min(1 << (n - 1).bit_length(), self.max_prefill_rows)

    def row_buckets(self) -> list[int]:
        """The row counts a decode dispatch runs at: powers of two (multiples of the
        mesh's batch shards) from ``min_decode_rows`` up, and ``num_slots``."""
        return list(self._row_buckets)

    def _compute_row_buckets(self) -> tuple[int, ...]:
        out, n = [], max(1, min(self.min_decode_rows, self.num_slots))
        while n < self.num_slots:
            b = bucket_batch(n, self.mesh)
            if b >= self.num_slots:
                break
            if b not in out:
                out.append(b)
            n = b + 1
        return (*out, self.num_slots)

    def window_buckets(self) -> list[int]:
        """The attention windows a decode dispatch runs at: 64, 96, 128, 192, 256, ...
        (powers of two and 1.5x them, so a window pads by at most a third) below
        ``cache_len``, and ``cache_len``."""
        return list(self._window_buckets)

    def _compute_window_buckets(self) -> tuple[int, ...]:
        out, n = [], 64
        while n < self.cache_len:
            out += [w for w in (n, n * 3 // 2) if w < self.cache_len]
            n *= 2
        return (*out, self.cache_len)

    def _window(self, steps: int, first_slot: int) -> int:
        need = self._ptr + steps - first_slot
        return next(w for w in self._window_buckets if w >= need)

    def _decode_groups(self, steps: int) -> list[tuple[list[int], list[bool], int]]:
        """This round's decode dispatches: (rows, held, window) each, run in order.

        Every row attends over one window shared by its dispatch, as wide as its oldest
        row's history; one long request would widen it for all. When the estimated cost
        (``_dispatch_cost``) says so, the live rows split in two by age: the young rows
        with a narrow window, the old ones with a wide one. Rows are padded to a row bucket
        with free rows, or, for the first dispatch only, with rows of the second (held, see
        ``_decode``: the second rewrites their new slots after the first)."""
        live = sorted((i for i, s in enumerate(self._slots) if s is not None),
                      key=lambda i: self._slots[i].first_slot)  # oldest first
        free = [i for i, s in enumerate(self._slots) if s is None]
        windows = [self._window(steps, self._slots[i].first_slot) for i in live]
        bucket = lambda n: next(b for b in self._row_buckets if b >= n)  # noqa: E731
        best = (self._dispatch_cost(bucket(len(live)), windows[0]), None)
        for j in range(1, len(live)):
            if windows[j] == windows[0]:
                continue
            cost = (self._dispatch_cost(bucket(j), windows[0])
                    + self._dispatch_cost(bucket(len(live) - j), windows[j]))
            if cost < 0.85 * best[0]:
                best = (cost, j)
        single = [(live + free[: bucket(len(live)) - len(live)], [False] * bucket(len(live)),
                   windows[0])]
        if best[1] is None:
            return single
        j = best[1]
        old, young = live[:j], live[j:]
        for first, second, w_first, w_second in ((old, young, windows[0], windows[j]),
                                                 (young, old, windows[j], windows[0])):
            pad_second = bucket(len(second)) - len(second)
            if pad_second > len(free):
                continue  # the second dispatch can pad only with free rows
            spare = free[pad_second:]
            pad_first = bucket(len(first)) - len(first)
            borrowed = second[: max(0, pad_first - len(spare))]
            first_rows = first + spare[:pad_first] + borrowed
            if len(first_rows) < bucket(len(first)):
                continue  # too few rows to pad the first dispatch
            self.stats["decode_split_rounds"] += 1
            self.stats["decode_held_rows"] += len(borrowed)
            return [(first_rows, [r in borrowed for r in first_rows], w_first),
                    (second + free[:pad_second], [False] * bucket(len(second)), w_second)]
        return single

    @staticmethod
    def _dispatch_cost(rows: int, window: int) -> float:
        """Relative cost of one decode dispatch (fitted on the CPU tiny model: per row, the
        window's attention plus projections worth about 96 slots; a fixed dispatch cost)."""
        return rows * (window + 96) + 640

    def _compact_cache(self):
        live = [s.first_slot for s in self._slots if s is not None]
        lowest = min(live) if live else self._ptr
        shift = min(lowest, self._ptr - self.max_block)
        if shift <= 0:
            raise RuntimeError(
                f"the KV cache is full (cache_len {self.cache_len}); raise cache_len"
            )
        self._state = _compact(self._state, np.int32(shift))
        self._ptr -= shift
        for s in self._slots:
            if s is not None:
                s.first_slot -= shift
        self.stats["compactions"] += 1

    # ------------------------------------------------------------ results
    def _emit(self, row: int, items, device_done: bool = False) -> bool:
        """Append tokens to the row's request; finish it when done. True when finished."""
        slot = self._slots[row]
        r = slot.request
        for t, lp, top in items:
            r.tokens.append(t)
            r.logprobs.append(lp)
            r.top.append(top)
        if items and r.on_event and not r.cancelled:
            r.on_event("tokens", items)
        s = r.sampling
        finished = device_done or (items and items[-1][0] in slot.stop_ids)
        finished = finished or len(r.tokens) >= s.max_new_tokens
        if not finished and s.stop_strings and items:
            text = tok_lib.decode_continuation(self.engine.tokenizer, r.prompt, r.tokens)
            finished = tok_lib.find_stop_string(text, s.stop_strings) is not None
        if finished:
            self._release(row)
            self._complete(r, slot.stop_ids)
        return bool(finished)

    def _release(self, row: int):
        with self._lock:
            self._slots[row] = None

    def _complete(self, r: Request, stop_ids):
        count = len(r.tokens)
        top_n = int(r.top_logprobs)
        host = {
            "n_gen": np.asarray([count]),
            "tokens": np.asarray([r.tokens], np.int64).reshape(1, count),
            "logprobs": np.asarray([r.logprobs], np.float64).reshape(1, count),
        }
        if top_n:
            host["top_ids"] = np.asarray([t[0] for t in r.top], np.int64).reshape(1, count, TOP_N)
            host["top_lps"] = np.asarray([t[1] for t in r.top], np.float64).reshape(
                1, count, TOP_N
            )
        r.result = self.engine._completion(0, r.prompt, r.sampling, stop_ids, host, top_n)
        r.finished_at = time.perf_counter()
        self.stats["finished"] += 1
        if r.on_event:
            r.on_event("done", r.result)
        r.done_event.set()
