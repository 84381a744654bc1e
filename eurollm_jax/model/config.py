"""The typed model configuration, the EuroLLM presets, the HF config mapping and dtype names.

``ModelConfig`` describes a Llama-architecture decoder exactly as EuroLLM uses it.
For a checkpoint on disk, ``ModelConfig.from_hf_config`` (its ``config.json``) is the
source of truth; the presets are for training from scratch and for planning.

``canonical_dtype`` turns any dtype spelling a JAX user passes ("bfloat16", jnp.float32,
np.float32, jnp.dtype("bfloat16"), np.dtype("float16"), "bf16") into the one string the
config stores; ``ModelConfig`` applies it to ``compute_dtype`` and ``param_dtype``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax.numpy as jnp
import numpy as np

ATTENTION_IMPLS = ("auto", "xla", "cudnn", "splash")
# RoPE frequency scaling of long-context checkpoints (transformers' rope_type names).
ROPE_SCALINGS = ("none", "linear", "dynamic", "llama3")
REMAT_POLICIES = (
    "none",  # keep every activation (fastest, most memory)
    "full",  # recompute the whole layer in the backward pass
    "dots",  # save matmul outputs without batch dims (dots_with_no_batch_dims_saveable)
    "dots_all",  # save every matmul output (dots_saveable)
    "qkv_proj",  # save only the named q/k/v/attention outputs
)
_DTYPES = {
    "float32": jnp.float32,
    "bfloat16": jnp.bfloat16,
    "float16": jnp.float16,
}
DTYPES = tuple(_DTYPES)
# Short spellings common on command lines and in other frameworks' configs.
_DTYPE_ALIASES = {"fp32": "float32", "f32": "float32", "bf16": "bfloat16", "fp16": "float16",
                  "f16": "float16", "half": "float16"}


class ConfigError(ValueError):
    """A model configuration that cannot describe a valid model."""


def canonical_dtype(dtype, *, what: str = "dtype") -> str:
    """The canonical name ("float32", "bfloat16" or "float16") of a dtype given as a string,
    a numpy/JAX scalar type (np.float32, jnp.bfloat16) or a dtype object (np.dtype,
    jnp.dtype). ``what`` names the argument in the error for anything else."""
    name = None
    if isinstance(dtype, str):
        key = dtype.strip().lower()
        key = _DTYPE_ALIASES.get(key, key)
        if key in _DTYPES:
            return key
    if dtype is not None and not isinstance(dtype, bool):
        try:
            name = np.dtype(jnp.dtype(dtype)).name
        except (TypeError, ValueError):
            name = None
    if name in _DTYPES:
        return name
    shown = f"{dtype!r}" + (f" ({name})" if name else "")
    raise ConfigError(
        f"{what}: unsupported dtype {shown}; use one of {list(DTYPES)} (as a string, "
        f"jnp.float32 / np.float32, or jnp.dtype('bfloat16'))"
    )


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of a Llama/EuroLLM decoder.

    Attributes:
      vocab_size: number of token ids (EuroLLM: 128,000).
      d_model: residual stream width (HF ``hidden_size``).
      num_layers: decoder layers.
      num_heads: query heads.
      num_kv_heads: key/value heads (grouped-query attention); must divide num_heads.
      head_dim: per-head width (HF ``head_dim``; default d_model // num_heads).
      ffn_dim: SwiGLU hidden width (HF ``intermediate_size``).
      rope_theta: RoPE base frequency.
      rope_scaling: RoPE frequency scaling, one of ROPE_SCALINGS (transformers' ``rope_type``):
        "none"; "linear" (positions divided by ``rope_scaling_factor``); "dynamic" (NTK:
        the base grows with the longest position of the call beyond
        ``rope_original_max_seq_len``); "llama3" (low frequencies divided by the factor,
        high ones kept, a smooth ramp between ``rope_low_freq_factor`` and
        ``rope_high_freq_factor``).
      rope_scaling_factor, rope_low_freq_factor, rope_high_freq_factor,
      rope_original_max_seq_len: the scaling's parameters (HF ``factor``,
        ``low_freq_factor``, ``high_freq_factor``, ``original_max_position_embeddings``).
      norm_eps: RMSNorm epsilon.
      tie_embeddings: share the token embedding with the LM head.
      max_seq_len: longest sequence the model is meant for (HF max_position_embeddings).
      compute_dtype: dtype of matmuls and activations ("bfloat16" by default). Any
        spelling ``canonical_dtype`` accepts; stored as its canonical string.
      param_dtype: dtype parameters are stored in ("float32" by default); likewise.
      scan_layers: run the stacked layers with ``lax.scan`` (one compiled layer) rather
        than a Python loop (unrolled). Parameters are stacked either way, so the
        checkpoint format does not depend on this flag.
      remat_policy: activation checkpointing per layer, one of REMAT_POLICIES.
      attention_impl: "xla" (reference, all platforms), "cudnn" (fused, NVIDIA GPUs),
        "splash" (Pallas splash attention, TPU), or "auto" (cudnn on GPU, splash on
        TPU, xla otherwise).
      context_parallel: attention when the mesh has a ``sequence`` axis > 1 (context
        parallelism, ``eurollm_jax.model.context_parallel``): "ring" (key/value blocks
        passed around the ring, online softmax) or "allgather" (keys/values gathered).
      context_load_balance: reorder tokens so that each sequence shard holds an early and
        a late chunk of the row (equal causal work); rows must then be a multiple of
        2 x the sequence axis.
      initializer_range: std of the normal initialiser (HF convention).
      bos_token_id, eos_token_id, pad_token_id: special ids written to HF configs.
    """

    vocab_size: int = 128_000
    d_model: int = 2048
    num_layers: int = 24
    num_heads: int = 16
    num_kv_heads: int = 8
    head_dim: int | None = None
    ffn_dim: int = 5632
    rope_theta: float = 10_000.0
    rope_scaling: str = "none"
    rope_scaling_factor: float = 1.0
    rope_low_freq_factor: float = 1.0
    rope_high_freq_factor: float = 4.0
    rope_original_max_seq_len: int = 0
    norm_eps: float = 1e-5
    tie_embeddings: bool = False
    max_seq_len: int = 4096
    compute_dtype: str = "bfloat16"
    param_dtype: str = "float32"
    scan_layers: bool = True
    remat_policy: str = "none"
    attention_impl: str = "auto"
    context_parallel: str = "ring"  # with a sequence mesh axis: ring | allgather
    context_load_balance: bool = True  # zigzag token order over the sequence axis
    initializer_range: float = 0.02
    bos_token_id: int = 1
    eos_token_id: int = 2
    pad_token_id: int | None = None

    def __post_init__(self):
        for name in ("compute_dtype", "param_dtype"):
            object.__setattr__(self, name, canonical_dtype(getattr(self, name), what=name))
        if self.head_dim is None:
            if self.num_heads <= 0 or self.d_model % self.num_heads:
                raise ConfigError(
                    f"d_model ({self.d_model}) is not divisible by num_heads ({self.num_heads}); "
                    f"set head_dim explicitly"
                )
            object.__setattr__(self, "head_dim", self.d_model // self.num_heads)
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        for name in ("vocab_size", "d_model", "num_layers", "num_heads", "num_kv_heads",
                     "head_dim", "ffn_dim", "max_seq_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(
                f"num_heads ({self.num_heads}) must be divisible by num_kv_heads "
                f"({self.num_kv_heads}) for grouped-query attention"
            )
        if self.head_dim % 2:
            raise ConfigError(f"head_dim must be even for RoPE, got {self.head_dim}")
        for name in ("compute_dtype", "param_dtype"):
            value = getattr(self, name)
            if canonical_dtype(value, what=name) != value:  # set around __post_init__
                raise ConfigError(f"{name} must be stored as its canonical name, got {value!r}")
        if self.remat_policy not in REMAT_POLICIES:
            raise ConfigError(f"remat_policy must be one of {REMAT_POLICIES}, got {self.remat_policy!r}")
        if self.attention_impl not in ATTENTION_IMPLS:
            raise ConfigError(
                f"attention_impl must be one of {ATTENTION_IMPLS}, got {self.attention_impl!r}"
            )
        if self.rope_theta <= 0 or self.norm_eps <= 0:
            raise ConfigError("rope_theta and norm_eps must be positive")
        if self.context_parallel not in ("ring", "allgather"):
            raise ConfigError(f"context_parallel must be 'ring' or 'allgather', got "
                              f"{self.context_parallel!r}")
        if self.rope_scaling not in ROPE_SCALINGS:
            raise ConfigError(f"rope_scaling must be one of {ROPE_SCALINGS}, got "
                              f"{self.rope_scaling!r}")
        if self.rope_scaling != "none":
            if not self.rope_scaling_factor > 0:
                raise ConfigError(f"rope_scaling_factor must be positive, got "
                                  f"{self.rope_scaling_factor}")
            if self.rope_scaling in ("dynamic", "llama3") and self.rope_original_max_seq_len <= 0:
                raise ConfigError(f"rope_scaling={self.rope_scaling!r} needs "
                                  "rope_original_max_seq_len (the pre-training context length)")
            if self.rope_scaling == "llama3" and not (
                    0 < self.rope_low_freq_factor < self.rope_high_freq_factor):
                raise ConfigError("llama3 RoPE scaling needs 0 < rope_low_freq_factor < "
                                  f"rope_high_freq_factor, got {self.rope_low_freq_factor} and "
                                  f"{self.rope_high_freq_factor}")

    # ------------------------------------------------------------------ helpers
    @property
    def dtype(self):
        return _DTYPES[self.compute_dtype]

    @property
    def weight_dtype(self):
        return _DTYPES[self.param_dtype]

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown model config fields {unknown}; known: {sorted(known)}")
        return cls(**dict(values))

    # Parameter and FLOP counts, from shapes alone (no allocation).
    def layer_param_count(self) -> int:
        d, hd = self.d_model, self.head_dim
        attn = d * hd * (2 * self.num_heads + 2 * self.num_kv_heads)
        mlp = 3 * d * self.ffn_dim
        return attn + mlp + 2 * d

    def param_count(self) -> int:
        embed = self.vocab_size * self.d_model
        head = 0 if self.tie_embeddings else embed
        return self.num_layers * self.layer_param_count() + embed + head + self.d_model

    def matmul_param_count(self) -> int:
        """Parameters that take part in matmuls per token (layers + LM head)."""
        return self.num_layers * (self.layer_param_count() - 2 * self.d_model) + (
            self.vocab_size * self.d_model
        )

    def train_flops_per_token(self, seq_len: int) -> float:
        """6 x matmul params + 6 x layers x seq x d_model for causal attention
        (docs/performance.md)."""
        return 6.0 * self.matmul_param_count() + 6.0 * self.num_layers * seq_len * self.num_heads * self.head_dim

    # ------------------------------------------------------------------ HF interop
    @classmethod
    def from_hf_config(cls, hf: Mapping[str, Any], **overrides) -> "ModelConfig":
        """Build from a transformers ``LlamaConfig`` dict (``config.json``).

        Anything the Llama architecture allows but EuroLLM's model does not implement
        (biases, other activations, RoPE scaling) is refused with a clear error rather
        than silently mis-loaded.
        """
        hf = dict(hf)
        model_type = hf.get("model_type", "llama")
        if model_type not in ("llama", "mistral"):
            raise ConfigError(f"unsupported model_type {model_type!r}; expected 'llama'")
        if hf.get("hidden_act", "silu") != "silu":
            raise ConfigError(f"unsupported hidden_act {hf.get('hidden_act')!r}; EuroLLM uses silu")
        if hf.get("attention_bias") or hf.get("mlp_bias"):
            raise ConfigError("checkpoints with attention_bias or mlp_bias are not supported")
        rope = _rope_from_hf(hf)
        if hf.get("sliding_window"):
            raise ConfigError("sliding-window attention is not supported")
        eos = hf.get("eos_token_id", 2)
        if isinstance(eos, (list, tuple)):
            eos = eos[0]
        num_heads = int(hf["num_attention_heads"])
        values = dict(
            vocab_size=int(hf["vocab_size"]),
            d_model=int(hf["hidden_size"]),
            num_layers=int(hf["num_hidden_layers"]),
            num_heads=num_heads,
            num_kv_heads=int(hf.get("num_key_value_heads") or num_heads),
            head_dim=int(hf.get("head_dim") or hf["hidden_size"] // num_heads),
            ffn_dim=int(hf["intermediate_size"]),
            **rope,
            norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
            max_seq_len=int(hf.get("max_position_embeddings", 4096)),
            initializer_range=float(hf.get("initializer_range", 0.02)),
            bos_token_id=int(hf.get("bos_token_id") if hf.get("bos_token_id") is not None else 1),
            eos_token_id=int(eos if eos is not None else 2),
            pad_token_id=hf.get("pad_token_id"),
        )
        values.update(overrides)
        return cls(**values)

    def to_hf_config(self, torch_dtype: str | None = None) -> dict[str, Any]:
        """A ``config.json`` dict that transformers' LlamaForCausalLM loads."""
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.d_model,
            "intermediate_size": self.ffn_dim,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            # dynamic NTK scales beyond max_position_embeddings: transformers reads the
            # pre-training length there
            "max_position_embeddings": (self.rope_original_max_seq_len
                                        if self.rope_scaling == "dynamic" else self.max_seq_len),
            "initializer_range": self.initializer_range,
            "rms_norm_eps": self.norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": self._rope_scaling_hf(),
            "attention_bias": False,
            "attention_dropout": 0.0,
            "mlp_bias": False,
            "tie_word_embeddings": self.tie_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
            "use_cache": True,
            "torch_dtype": torch_dtype or self.param_dtype,
        }

    def _rope_scaling_hf(self) -> dict[str, Any] | None:
        """The HF ``rope_scaling`` dict of this config (None: plain RoPE)."""
        if self.rope_scaling == "none":
            return None
        out: dict[str, Any] = {"rope_type": self.rope_scaling, "factor": self.rope_scaling_factor}
        if self.rope_scaling == "llama3":
            out.update(low_freq_factor=self.rope_low_freq_factor,
                       high_freq_factor=self.rope_high_freq_factor,
                       original_max_position_embeddings=self.rope_original_max_seq_len)
        return out


def _rope_from_hf(hf: Mapping[str, Any]) -> dict[str, Any]:
    """ModelConfig's RoPE fields from an HF config: legacy ``rope_theta`` + ``rope_scaling``
    or transformers 5's ``rope_parameters``. A scaling type not implemented here is refused."""
    params = hf.get("rope_parameters")
    scaling = dict(hf.get("rope_scaling") or {})
    if isinstance(params, Mapping):
        scaling = {**scaling, **params}
    theta = scaling.get("rope_theta", hf.get("rope_theta"))
    kind = scaling.get("rope_type", scaling.get("type")) or "default"
    out: dict[str, Any] = {"rope_theta": float(theta if theta is not None else 10_000.0)}
    if kind == "default":
        return out
    if kind not in ROPE_SCALINGS:
        raise ConfigError(
            f"RoPE scaling type {kind!r} ({scaling}) is not implemented; supported: "
            f"{', '.join(k for k in ROPE_SCALINGS if k != 'none')} (and plain RoPE)")
    if "factor" not in scaling:
        raise ConfigError(f"RoPE scaling {kind!r} has no 'factor': {scaling}")
    out.update(rope_scaling=kind, rope_scaling_factor=float(scaling["factor"]))
    if kind == "dynamic":
        out["rope_original_max_seq_len"] = int(hf.get("max_position_embeddings", 4096))
    if kind == "llama3":
        missing = [k for k in ("low_freq_factor", "high_freq_factor",
                               "original_max_position_embeddings") if k not in scaling]
        if missing:
            raise ConfigError(f"llama3 RoPE scaling lacks {missing}: {scaling}")
        out.update(rope_low_freq_factor=float(scaling["low_freq_factor"]),
                   rope_high_freq_factor=float(scaling["high_freq_factor"]),
                   rope_original_max_seq_len=int(scaling["original_max_position_embeddings"]))
    return out


# EuroLLM's shared choices: 8 KV heads, head_dim 128, vocabulary 128k, untied.
_EUROLLM = dict(vocab_size=128_000, num_kv_heads=8, head_dim=128, norm_eps=1e-5, tie_embeddings=False)

PRESETS: dict[str, ModelConfig] = {
    "eurollm-1.7b": ModelConfig(
        **_EUROLLM, d_model=2048, num_layers=24, ffn_dim=5632, num_heads=16,
        rope_theta=10_000.0, max_seq_len=4096,
    ),
    "eurollm-9b": ModelConfig(
        **_EUROLLM, d_model=4096, num_layers=42, ffn_dim=12288, num_heads=32,
        rope_theta=10_000.0, max_seq_len=4096,
    ),
    # Layer count: the 2512 model cards list 56 layers; other public write-ups say 54.
    # A real checkpoint's config.json (from_hf_config) always wins over this preset.
    "eurollm-22b": ModelConfig(
        **_EUROLLM, d_model=6144, num_layers=56, ffn_dim=16384, num_heads=48,
        rope_theta=1_000_000.0, max_seq_len=32_768,
    ),
    # ~7M parameters: the CPU benchmark and demo shape (docs/performance.md).
    "tiny": ModelConfig(
        vocab_size=8000, d_model=256, num_layers=4, num_heads=4, num_kv_heads=2, head_dim=64,
        ffn_dim=688, rope_theta=10_000.0, max_seq_len=512, tie_embeddings=False,
    ),
}


def get_preset(name: str, **overrides) -> ModelConfig:
    key = name.lower()
    if key not in PRESETS:
        raise ConfigError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[key].replace(**overrides) if overrides else PRESETS[key]
