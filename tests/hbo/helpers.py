"""Small HBO jobs: SFT files with bucketed sources and the tiny trainer config."""

import random
import string

from eurollm_jax.fileio import write_jsonl
from tests.train.helpers import override, small_config


def random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def conversation(prompt: str, answer: str, source: str) -> dict:
    return {"messages": [{"role": "user", "content": prompt},
                         {"role": "assistant", "content": answer}], "source": source}


def two_subset_records(seed: int = 0, per_bucket: int = 24) -> list[dict]:
    """Subset ``noise``: random answers in both buckets. Subset ``learn``: bucket 0 answers
    with one fixed sentence (learnable), bucket 1 with random text."""
    rng = random.Random(seed)
    out = []
    for j in range(2):
        for _ in range(per_bucket):
            out.append(conversation(random_text(rng, 6), random_text(rng, 20), f"noise/b{j}"))
    for _ in range(per_bucket):
        out.append(conversation("say it", "the cat sat on the mat.", "learn/b0"))
    for _ in range(per_bucket):
        out.append(conversation("say it", random_text(rng, 20), "learn/b1"))
    return out


def write_records(path, records) -> str:
    write_jsonl(str(path), records)
    return str(path)


def hbo_config(sft_file: str, *, steps=6, mesh=(2, 2, 2), **hbo):
    config = small_config(mesh=mesh, steps=steps)
    override(config, **{"data.source": "sft", "data.sft_file": sft_file,
                        "data.eval_fraction": 0.0, "train.seq_len": 64,
                        "checkpoint.every": 0, "eval.every": 0})
    import ml_collections

    config.hbo = ml_collections.ConfigDict(
        dict(dict(every=2, actor_steps=20, actor_lr=0.05, local_examples=4, plots=False), **hbo))
    return config
