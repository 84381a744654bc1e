"""Attention kernels and their selection: every branch of ``select_kernel``, splash in Pallas
interpret mode at lengths that are not a multiple of its blocks (packed rows, GQA, under a
mesh, gradients), the cuDNN wrapper's mask arguments, the model routing through them, and
the real cuDNN call where a GPU is present."""

import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eurollm_jax.model import abstract_model, create_model
from eurollm_jax.model import attention as attn
from eurollm_jax.model import transformer as transformer_mod
from eurollm_jax.model.attention import (
    AttentionMask,
    select_kernel,
    splash_block_size,
    splash_padded_length,
    xla_attention,
)
from tests.model.helpers import attention_error_bound, small_config

ON_GPU = jax.devices()[0].platform == "gpu"


@pytest.fixture(autouse=True)
def fresh_log():
    """The kernel choice is logged once per shape per process: forget earlier tests'."""
    attn._LOGGED.clear()
    yield
    attn._LOGGED.clear()


def _qkv(b, t, h, kv, d, seed, dtype=jnp.float32):
    rng = np.random.RandomState(seed)
    return tuple(jnp.asarray(rng.randn(b, t, n, d), dtype) for n in (h, kv, kv))


def _packed_segments(b, t, seed):
    """Rows of 1-4 documents of random lengths, some ending in a padding segment 0."""
    rng = np.random.RandomState(seed)
    rows = []
    for r in range(b):
        cuts = np.sort(rng.choice(np.arange(1, t), size=rng.randint(0, 4), replace=False))
        seg = np.zeros(t, np.int32)
        for i, start in enumerate([0, *cuts]):
            seg[start:] = i + 1
        if r % 2:
            seg[t - max(1, t // 7):] = 0  # right padding, as scoring produces
        rows.append(seg)
    return jnp.asarray(np.stack(rows))


def _mask(b, t, segments=None):
    slots = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
    return AttentionMask(slots, slots, segments, segments)


# ----------------------------------------------------------------------------- selection
@pytest.mark.parametrize(
    "impl, platform, dtype, seq_len, kwargs, kernel, reason",
    [
        ("xla", "tpu", "bfloat16", 1024, {}, "xla", "attention_impl='xla'"),
        ("auto", "cpu", "float32", 1024, {}, "xla", "no fused kernel"),
        ("auto", "tpu", "bfloat16", 4096, {"has_cache": True}, "xla", "KV cache"),
        ("cudnn", "gpu", "bfloat16", 9, {"has_cache": True}, "xla", "KV cache"),
        ("auto", "gpu", "bfloat16", 640, {}, "cudnn", "causal, no mask"),
        ("auto", "gpu", jnp.bfloat16, 640, {"packed": True}, "cudnn", "dense segment mask"),
        ("auto", "cuda", "float16", 17, {}, "cudnn", "causal, no mask"),
        ("auto", "gpu", "float32", 640, {}, "xla", "needs bfloat16 or float16"),
        ("cudnn", "gpu", np.float32, 640, {}, "xla", "compute dtype is float32"),
        ("auto", "gpu", "bfloat16", 640, {"head_dim": 132}, "xla", "multiple of 8"),
        ("auto", "gpu", "bfloat16", 640, {"head_dim": 512}, "xla", "<= 256"),
        ("cudnn", "gpu", "bfloat16", 640, {"head_dim": 128}, "cudnn", "causal, no mask"),
        ("auto", "tpu", "bfloat16", 16, {}, "xla", "row of 16 < 128"),
        ("auto", "tpu", "float32", 127, {"packed": True}, "xla", "row of 127 < 128"),
        ("auto", "tpu", "bfloat16", 128, {}, "splash", "block 128"),
        ("auto", "tpu", "bfloat16", 640, {"packed": True}, "splash", "block 128"),
        ("auto", "tpu", "bfloat16", 768, {}, "splash", "block 384"),
        ("auto", "tpu", "bfloat16", 1152, {}, "splash", "block 384"),
        ("auto", "tpu", "bfloat16", 4096, {}, "splash", "block 512"),
        ("auto", "tpu", "bfloat16", 200, {}, "splash", "padded 200 -> 256, block 256"),
        ("auto", "tpu", "bfloat16", 1000, {}, "splash", "padded 1000 -> 1024, block 512"),
        # Explicit splash is honoured off TPU: AOT compilation for TPU runs on a CPU host.
        ("splash", "cpu", "bfloat16", 1536, {}, "splash", "block 512"),
        ("splash", "cpu", "bfloat16", 64, {}, "xla", "row of 64 < 128"),
    ],
)
def test_select_kernel(impl, platform, dtype, seq_len, kwargs, kernel, reason):
    got, why = select_kernel(impl, platform, dtype, seq_len, **kwargs)
    assert got == kernel
    assert reason in why


def test_select_kernel_errors():
    with pytest.raises(ValueError, match="needs an NVIDIA GPU.*'cpu'.*'auto'"):
        select_kernel("cudnn", "cpu", "bfloat16", 128)
    with pytest.raises(ValueError, match="unknown attention implementation 'flash'"):
        select_kernel("flash", "gpu", "bfloat16", 128)
    with pytest.raises(ValueError, match="unsupported dtype"):
        select_kernel("auto", "gpu", "int8", 128)


def test_splash_blocks_divide_every_padded_length():
    for t in range(1, 8193):
        padded = splash_padded_length(t)
        block = splash_block_size(padded)
        assert padded % 128 == 0 and 0 <= padded - t < 128
        assert padded % block == 0 and block % 128 == 0 and block <= 512
    with pytest.raises(ValueError, match="not a multiple of 128"):
        splash_block_size(200)


# ----------------------------------------------------------------------------- splash
@pytest.mark.parametrize("t", [16, 256, 640, 768])
def test_splash_interpret_matches_reference_packed_gqa(t):
    pytest.importorskip("jax.experimental.pallas.ops.tpu.splash_attention")
    b, h, kv, d = 2, 4, 2, 64
    q, k, v = _qkv(b, t, h, kv, d, seed=t)
    mask = _mask(b, t, _packed_segments(b, t, seed=t))
    got = jax.jit(lambda q, k, v: attn.splash_attention(q, k, v, mask, interpret=True))(q, k, v)
    want = jax.jit(lambda q, k, v: xla_attention(q, k, v, mask))(q, k, v)
    assert got.shape == (b, t, h, d)
    np.testing.assert_allclose(got, want, rtol=0, atol=attention_error_bound(q, k, v))


def test_splash_interpret_unpacked_rows_and_gradients():
    """No segment ids (the padding is then the only second segment) and the backward
    kernels (their block sizes must divide the padded length too)."""
    pytest.importorskip("jax.experimental.pallas.ops.tpu.splash_attention")
    b, t, h, kv, d = 1, 200, 4, 1, 64
    q, k, v = _qkv(b, t, h, kv, d, seed=7)
    mask = _mask(b, t)
    cot = jnp.asarray(np.random.RandomState(8).randn(b, t, h, d), jnp.float32)

    def loss(fn):
        def f(q, k, v):
            return jnp.sum(fn(q, k, v, mask) * cot)

        return jax.jit(jax.value_and_grad(f, (0, 1, 2)))

    (_, gs) = loss(functools.partial(attn.splash_attention, interpret=True))(q, k, v)
    (_, gx) = loss(xla_attention)(q, k, v)
    np.testing.assert_allclose(  # the forward output, unpacked and padded 200 -> 256
        jax.jit(lambda q, k, v: attn.splash_attention(q, k, v, mask, interpret=True))(q, k, v),
        xla_attention(q, k, v, mask), rtol=0, atol=attention_error_bound(q, k, v))
    # The backward pass recomputes the forward's probabilities and adds sums of the same
    # lengths (over keys for dq, over queries for dk/dv): four times the forward's
    # relative bound, on the scale of each gradient.
    rel = attention_error_bound(q, k, v) / float(jnp.abs(v).max())
    for a, x in zip(gs, gx):
        np.testing.assert_allclose(a, x, rtol=0, atol=4 * rel * float(jnp.abs(x).max()))


def test_splash_comparison_catches_a_segment_leak():
    """The fp32 bound is loose (worst case), yet far below what a masking error costs: the
    same kernel run without the segment ids on packed rows fails it."""
    pytest.importorskip("jax.experimental.pallas.ops.tpu.splash_attention")
    b, t, h, kv, d = 2, 256, 4, 2, 64
    q, k, v = _qkv(b, t, h, kv, d, seed=5)
    mask = _mask(b, t, _packed_segments(b, t, seed=5))
    leaky = jax.jit(lambda q, k, v: attn.splash_attention(q, k, v, _mask(b, t), interpret=True))
    err = float(jnp.abs(leaky(q, k, v) - xla_attention(q, k, v, mask)).max())
    assert err > 100 * attention_error_bound(q, k, v)


def test_splash_under_a_mesh_pads_inside_the_global_arrays():
    pytest.importorskip("jax.experimental.pallas.ops.tpu.splash_attention")
    from eurollm_jax.parallel import create_mesh

    mesh = create_mesh((2, 2, 2))
    b, t, h, kv, d = 4, 200, 4, 2, 64
    q, k, v = _qkv(b, t, h, kv, d, seed=3)
    mask = _mask(b, t, _packed_segments(b, t, seed=3))
    with jax.set_mesh(mesh):
        got = jax.jit(lambda q, k, v: attn.splash_attention(q, k, v, mask, interpret=True))(q, k, v)
    np.testing.assert_allclose(got, xla_attention(q, k, v, mask), rtol=0,
                               atol=attention_error_bound(q, k, v))


# ----------------------------------------------------------------------------- cuDNN wrapper
@pytest.fixture
def dpa_calls(monkeypatch):
    """jax.nn.dot_product_attention spied on and run by jax's xla path (no GPU here)."""
    calls = []
    real = jax.nn.dot_product_attention

    def spy(q, k, v, bias=None, mask=None, **kw):
        calls.append({"mask": mask, **kw})
        return real(q, k, v, bias, mask, **dict(kw, implementation=None))

    monkeypatch.setattr(jax.nn, "dot_product_attention", spy)
    return calls


def test_cudnn_wrapper_passes_no_mask_for_unpacked_rows(dpa_calls):
    b, t = 2, 24
    q, k, v = _qkv(b, t, 4, 2, 8, seed=0)
    seg = _packed_segments(b, t, seed=0)
    for mask in (_mask(b, t), _mask(b, t, seg)):
        got = attn.cudnn_attention(q, k, v, mask)
        np.testing.assert_allclose(got, xla_attention(q, k, v, mask), rtol=0,
                                   atol=attention_error_bound(q, k, v))
    unpacked, packed = dpa_calls
    assert unpacked["mask"] is None and unpacked["is_causal"] is True
    assert unpacked["implementation"] == "cudnn"
    assert packed["mask"].shape == (b, 1, t, t) and packed["mask"].dtype == jnp.bool_


# ----------------------------------------------------------------------------- model routing
@functools.lru_cache(maxsize=None)
def _reference(compute_dtype="float32"):
    return create_model(small_config(compute_dtype=compute_dtype), seed=2)


def _pair(impl, compute_dtype="float32"):
    """(model with attention_impl=impl, the same weights with xla)."""
    ref = _reference(compute_dtype)
    cfg = small_config(attention_impl=impl, compute_dtype=compute_dtype)
    return nnx.merge(nnx.graphdef(abstract_model(cfg)), nnx.state(ref)), ref


def _on(monkeypatch, platform):
    for mod in (attn, transformer_mod):
        monkeypatch.setattr(mod, "current_platform", lambda: platform)


def _ids(b, t, seed=0):
    return jnp.asarray(np.random.RandomState(seed).randint(0, 301, (b, t)), jnp.int32)


def test_model_on_gpu_routes_unpacked_rows_to_cudnn_without_a_mask(monkeypatch, dpa_calls, caplog):
    _on(monkeypatch, "gpu")
    model, ref = _pair("auto", compute_dtype="bfloat16")
    ids = _ids(2, 40)
    seg = _packed_segments(2, 40, seed=1)
    with caplog.at_level(logging.INFO, logger="eurollm_jax.model.attention"):
        out = model(ids)
        n_unpacked = len(dpa_calls)
        packed = model(ids, segment_ids=seg)
    assert 0 < n_unpacked < len(dpa_calls)
    assert all(c["mask"] is None for c in dpa_calls[:n_unpacked])
    assert all(c["mask"] is not None for c in dpa_calls[n_unpacked:])
    assert "attention kernel cudnn" in caplog.text and "causal, no mask" in caplog.text
    # bf16 activations: the reference with the same weights agrees to bf16 precision.
    for got, want in ((out, ref(ids)), (packed, ref(ids, segment_ids=seg))):
        err = float(jnp.abs(got - want).max())
        assert err <= 0.05 * float(jnp.abs(want).max()), err


def test_model_on_gpu_with_fp32_falls_back_to_reference_and_says_so(monkeypatch, dpa_calls, caplog):
    _on(monkeypatch, "gpu")
    for impl, level in (("auto", logging.INFO), ("cudnn", logging.WARNING)):
        attn._LOGGED.clear()
        caplog.clear()
        model, ref = _pair(impl)  # small_config computes in float32
        ids = _ids(2, 24)
        want = ref(ids)
        with caplog.at_level(logging.INFO, logger="eurollm_jax.model.attention"):
            got = model(ids)
        np.testing.assert_array_equal(got, want)
        assert not dpa_calls  # cuDNN never called
        (record,) = [r for r in caplog.records if r.name == "eurollm_jax.model.attention"]
        assert record.levelno == level
        assert "attention kernel xla" in record.message
        assert "needs bfloat16 or float16" in record.message and "float32" in record.message


def test_model_on_tpu_runs_splash_at_any_length_and_reference_for_short_rows(monkeypatch, caplog):
    pytest.importorskip("jax.experimental.pallas.ops.tpu.splash_attention")
    _on(monkeypatch, "tpu")
    ran = []
    real = attn.splash_attention

    def interpreted(q, k, v, mask):
        ran.append((q.shape[1], mask.packed, mask.precomputed is None))
        return real(q, k, v, mask, interpret=True)

    monkeypatch.setattr(attn, "splash_attention", interpreted)
    model, ref = _pair("auto")
    ids, seg = _ids(2, 200, seed=5), _packed_segments(2, 200, seed=5)
    want, want_short = ref(ids, segment_ids=seg), ref(ids[:, :16])
    with caplog.at_level(logging.INFO, logger="eurollm_jax.model.attention"):
        got = jax.jit(lambda m, x, s: m(x, segment_ids=s))(model, ids, seg)
        short = model(ids[:, :16])
    # fp32 end to end: kernels differ by reassociation only; a mask error is O(1).
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * float(jnp.abs(want).max()))
    np.testing.assert_array_equal(short, want_short)
    assert ran and all(r == (200, True, True) for r in ran)  # splash: no dense mask built
    assert "attention kernel splash" in caplog.text and "padded 200 -> 256" in caplog.text
    assert "attention kernel xla" in caplog.text and "row of 16 < 128" in caplog.text
    # once per shape: the second forward of a shape logs nothing new
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="eurollm_jax.model.attention"):
        model(ids[:, :16])
    assert "attention kernel" not in caplog.text


def test_explicit_cudnn_off_gpu_is_a_clear_error(monkeypatch):
    _on(monkeypatch, "cpu")
    model, _ = _pair("cudnn")
    with pytest.raises(ValueError, match="needs an NVIDIA GPU"):
        model(_ids(1, 8))


# ----------------------------------------------------------------------------- real cuDNN
gpu_only = pytest.mark.skipif(not ON_GPU, reason="the real cuDNN call needs an NVIDIA GPU")


@gpu_only
@pytest.mark.parametrize("packed", [False, True])
def test_real_cudnn_matches_reference_and_unpacked_hlo_has_no_dense_mask(packed):
    b, t, h, kv, d = 2, 640, 8, 2, 128
    q, k, v = _qkv(b, t, h, kv, d, seed=11, dtype=jnp.bfloat16)
    mask = _mask(b, t, _packed_segments(b, t, seed=11) if packed else None)
    fn = jax.jit(lambda q, k, v: attn.attention(q, k, v, mask, impl="auto"))
    hlo = fn.lower(q, k, v).compile().as_text()
    assert "cudnn" in hlo.lower()
    if not packed:
        assert f"pred[{b},1,{t},{t}]" not in hlo
    got = np.asarray(fn(q, k, v), np.float32)
    want = np.asarray(xla_attention(*(x.astype(jnp.float32) for x in (q, k, v)), mask))
    # bf16: probabilities and output each rounded once (2^-8 relative), plus fp32 terms.
    v_max = float(jnp.abs(v.astype(jnp.float32)).max())
    bound = 4 * 2.0**-8 * v_max + attention_error_bound(q, k, v)
    np.testing.assert_allclose(got, want, rtol=0, atol=bound)


@gpu_only
def test_real_gpu_fp32_model_runs_reference_kernel(caplog):
    model, ref = _pair("auto")  # float32 compute
    ids = _ids(2, 256)
    with caplog.at_level(logging.INFO, logger="eurollm_jax.model.attention"):
        got = model(ids)
    np.testing.assert_allclose(got, ref(ids), rtol=0, atol=1e-5 * float(jnp.abs(got).max()))
    assert "attention kernel xla" in caplog.text and "needs bfloat16 or float16" in caplog.text
