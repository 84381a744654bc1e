"""Session fixtures: the real demo corpus and a small tokenizer trained on it."""

import pytest

from eurollm_jax.data import demo_corpus
from eurollm_jax.tokenizer import Tokenizer, TokenizerTrainConfig, jsonl_corpus, train_tokenizer

DEMO_VOCAB = 2_000


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_corpus")
    demo_corpus.build(str(out))
    return out


@pytest.fixture(scope="session")
def demo_tokenizer(demo_dir, tmp_path_factory) -> Tokenizer:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.model"
    tok, _ = train_tokenizer(
        jsonl_corpus([str(demo_dir / "train.jsonl")]), str(path),
        TokenizerTrainConfig(vocab_size=DEMO_VOCAB, num_threads=2, char_budget=600_000),
    )
    return Tokenizer.load(str(path))
