"""Continuous batching (inference.continuous.Scheduler) against sequential generation and
transformers, and the OpenAI surface over real HTTP with the official ``openai`` client."""

import time

import numpy as np
import pytest

from eurollm_jax.inference import SamplingParams
from eurollm_jax.inference.continuous import Scheduler
from tests.inference.conftest import hf_greedy, random_prompts

pytestmark = pytest.mark.torch  # the fixtures build a transformers model


@pytest.fixture(scope="module")
def scheduler(engine):
    # 8 slots for 32 requests: rows are reused; a short cache forces compactions; decode
    # dispatches run at 2, 4 or 8 rows (the live ones)
    sch = Scheduler(
        engine, num_slots=8, decode_steps=4, cache_len=280, prefill_chunk=32,
        prefix_cache_tokens=2048, prefix_block=16, min_decode_rows=2,
    )
    yield sch
    sch.close()


def test_32_concurrent_mixed_length_greedy_equals_sequential_and_transformers(
    scheduler, engine, hf_model
):
    rng = np.random.default_rng(1)
    lengths = rng.integers(2, 70, size=32).tolist()  # some prompts prefill in 32-token chunks
    budgets = rng.integers(1, 24, size=32).tolist()
    prompts = random_prompts(lengths, seed=2)
    sampling = [SamplingParams(max_new_tokens=n) for n in budgets]
    outs = scheduler.generate_ids(prompts, sampling)
    for i in (0, 5, 17):  # transformers, one prompt at a time
        want = hf_greedy(hf_model, [prompts[i]], budgets[i])[0]
        got = list(outs[i]) + ([outs[i].stop] if outs[i].finish_reason == "stop" else [])
        assert got == want, i
    seq = engine.generate_ids(prompts, sampling)  # today's engine, batched statically
    for i, (a, b) in enumerate(zip(outs, seq)):
        assert list(a) == list(b) and a.finish_reason == b.finish_reason, i
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=2e-5)
    m = scheduler.metrics()
    assert m["running_slots"] == 0 and m["queue_length"] == 0
    assert m["compactions"] > 0  # the write pointer wrapped and rows were shifted
    # the draining tail ran in smaller row buckets than the 8 slots
    assert scheduler.row_buckets()[0] < 8
    assert m["decode_row_steps"] < m["decode_dispatches"] * 8 * scheduler.decode_steps


def test_old_and_young_rows_decode_in_two_dispatches_with_the_same_tokens(engine):
    """Two long prompts beside six short ones: one shared window would be as wide as the
    long prompts' history for every row, so each round runs the six young rows (padded
    with the two old ones, held) at a narrow window, then the old two at the wide one.
    Greedy tokens and logprobs stay those of the static engine."""
    sch = Scheduler(engine, num_slots=8, decode_steps=4, min_decode_rows=2)
    try:
        prompts = random_prompts([200, 190] + [6, 9, 12, 5, 10, 8], seed=11)
        budgets = [40, 36] + [30, 28, 24, 30, 26, 22]
        sampling = [SamplingParams(max_new_tokens=n, ignore_eos=True) for n in budgets]
        outs = sch.generate_ids(prompts, sampling)
        m = sch.metrics()
    finally:
        sch.close()
    seq = engine.generate_ids(prompts, sampling)
    for i, (a, b) in enumerate(zip(outs, seq)):
        assert list(a) == list(b) and len(a) == budgets[i], i
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=2e-5)
    assert m["decode_split_rounds"] > 0 and m["decode_held_rows"] > 0, m
    # the split paid for itself in attended slots: fewer than one window for all rows
    assert m["decode_slot_steps"] < m["decode_row_steps"] * 512


def test_prefill_rows_and_decode_windows_pad_to_their_buckets(scheduler):
    """A prefill of 3 prompts computes 4 rows (not max_prefill_rows); a decode window
    pads by less than half (64, 96, 128, 192, ...), and the widest is the whole cache."""
    assert scheduler.max_prefill_rows == 8
    assert scheduler.prefill_row_buckets() == [1, 2, 4, 8]
    assert [scheduler._prefill_rows(n) for n in (1, 2, 3, 5, 8)] == [1, 2, 4, 8, 8]
    windows = scheduler.window_buckets()
    assert windows == [64, 96, 128, 192, 256, 280]  # cache_len 280
    assert all(b / a <= 1.5 for a, b in zip(windows, windows[1:]))
    scheduler.generate_ids(random_prompts([5, 6, 7], seed=3),
                           [SamplingParams(max_new_tokens=2)] * 3)
    m = scheduler.metrics()
    assert m["prefills"] <= m["prefill_rows"] < m["prefills"] * scheduler.max_prefill_rows


def test_short_prompts_of_different_widths_share_a_prefill_call(scheduler):
    """Calls cost a fixed part plus rows x width: 10- and 20-token prompts (widths 16 and
    32) run as one 2-row call at 32; a 200-token prompt (224) stays alone, since padding
    the two short ones to 224 costs more than its own call saves."""
    from eurollm_jax.inference.continuous import Request

    a, b, c = (Request(p, SamplingParams(max_new_tokens=1))
               for p in random_prompts([10, 20, 200], seed=4))
    groups = {("plain", 224): [(c, None)], ("plain", 16): [(a, None)], ("plain", 32): [(b, None)]}
    plan = scheduler._plan_prefills(groups)
    assert [[r for r, _ in part] for part in plan] == [[a, b], [c]]
    many = {("plain", 16): [(a, None)] * 11}  # more than max_prefill_rows: 8 + 3
    assert [len(part) for part in scheduler._plan_prefills(many)] == [8, 3]


@pytest.mark.slow
def test_sampling_stops_and_penalties_match_the_engine(scheduler, engine):
    prompts = random_prompts([5, 12, 30], seed=4)
    sampling = [
        SamplingParams(max_new_tokens=12, temperature=1.0, seed=7, stream=0),
        SamplingParams(max_new_tokens=12, temperature=0.8, top_k=20, top_p=0.9, seed=7, stream=1),
        SamplingParams(max_new_tokens=12, stop_token_ids=(9, 17, 33), ignore_eos=True),
    ]
    got = scheduler.generate_ids(prompts, sampling, top_logprobs=3)
    want = [engine.generate_ids([p], [s], top_logprobs=3)[0] for p, s in zip(prompts, sampling)]
    for a, b in zip(got, want):  # same per-row random streams, whatever shares the decode
        assert list(a) == list(b) and a.finish_reason == b.finish_reason
        assert [t[0][:3] for t in a.top_logprobs] == [t[0][:3] for t in b.top_logprobs]
    # a large frequency penalty forbids repeats under greedy decoding
    from eurollm_jax.inference.continuous import Request

    reqs = [
        scheduler.submit(
            Request(p, SamplingParams(max_new_tokens=20, ignore_eos=True), frequency_penalty=100.0)
        )
        for p in prompts
    ]
    for r in reqs:
        toks = list(r.wait(120))
        assert len(toks) == 20 and len(set(toks)) == 20


@pytest.mark.slow
def test_prefix_cache_reuses_a_shared_prefix(scheduler, engine):
    head = random_prompts([48], seed=9)[0]
    prompts = [head + random_prompts([n], seed=20 + n)[0][1:] for n in (3, 6, 9, 12)]
    sampling = [SamplingParams(max_new_tokens=6)] * 4
    before = scheduler.metrics()["prefix_cache"]["hit_tokens"]
    first = scheduler.generate_ids(prompts[:1], sampling[:1])
    rest = scheduler.generate_ids(prompts[1:], sampling[1:])
    after = scheduler.metrics()["prefix_cache"]["hit_tokens"]
    assert after - before >= 3 * 48  # 48 = 3 blocks of 16 tokens, each later prompt
    want = engine.generate_ids(prompts, sampling)
    assert [list(x) for x in first + rest] == [list(x) for x in want]


def test_cancel_frees_the_slot(scheduler):
    from eurollm_jax.inference.continuous import Request

    r = scheduler.submit(Request(random_prompts([4])[0], SamplingParams(max_new_tokens=150, ignore_eos=True)))
    deadline = time.time() + 60
    while not r.tokens:
        assert time.time() < deadline
        time.sleep(0.01)
    r.cancel()
    with pytest.raises(RuntimeError, match="cancelled"):
        r.wait(60)
    assert len(r.tokens) < 150
    assert scheduler.metrics()["running_slots"] == 0


def test_bad_requests_are_refused(scheduler):
    from eurollm_jax.inference.continuous import Request

    with pytest.raises(ValueError, match="empty"):
        scheduler.submit(Request([], SamplingParams()))
    with pytest.raises(ValueError, match="max_seq_len"):
        scheduler.submit(Request([1] * 200, SamplingParams(max_new_tokens=100)))
    with pytest.raises(ValueError, match="vocabulary"):
        scheduler.submit(Request([1, 10_000], SamplingParams()))


def test_a_failing_step_fails_its_requests_and_the_scheduler_keeps_serving(scheduler, monkeypatch):
    """One broken decode (e.g. an id the tokenizer cannot decode) must not take the server
    down: the requests in flight get the error, later requests are served."""
    real = scheduler._decode_once
    calls = {"n": 0}

    def broken_once():
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("decode blew up")
        return real()

    monkeypatch.setattr(scheduler, "_decode_once", broken_once)
    prompt = random_prompts([6], seed=9)[0]
    with pytest.raises(RuntimeError, match="decode blew up"):
        scheduler.generate_ids([prompt], [SamplingParams(max_new_tokens=4)])
    (out,) = scheduler.generate_ids([prompt], [SamplingParams(max_new_tokens=4)])
    assert len(out) == 4 or out.finish_reason == "stop"
    m = scheduler.metrics()
    assert m["step_errors"] == 1 and m["running_slots"] == 0
