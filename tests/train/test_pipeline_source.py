"""Training from the production Grain pipeline (eurollm_jax.data) over a tokenized manifest:
phases switch the live mixture, and a resumed run continues exactly."""

import os

import numpy as np
import pytest

from eurollm_jax.fileio import read_jsonl
from eurollm_jax.train import train
from eurollm_jax.train.data import DataConfigError, make_iterator
from eurollm_jax.tokenizer import ByteTokenizer
from eurollm_jax.train.sources import udhr_texts
from tests.train.helpers import override, small_config

BYTES = ByteTokenizer()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    from eurollm_jax.data.synthetic import write_token_corpus

    texts = udhr_texts(("en", "de"))
    out = str(tmp_path_factory.mktemp("tokens"))
    write_token_corpus(
        out, {f"{lang}/udhr": [BYTES.encode(s) for s in sents] for lang, sents in texts.items()}
    )
    return out


def _config(manifest):
    config = small_config(steps=4)
    override(
        config,
        **{
            "checkpoint.every": 2,
            "data.source": "pipeline",
            "data.manifest": manifest,
            "train.phases": (
                {"name": "en", "steps": 2, "mixture": {"en/udhr": 1.0}},
                {"name": "de", "steps": 2, "mixture": {"de/udhr": 1.0}},
            ),
        },
    )
    return config


def test_phase_mixture_is_applied_to_the_live_pipeline(manifest):
    config = _config(manifest)
    it = make_iterator(config, mixture={"en/udhr": 1.0})
    en = BYTES.decode(next(it)["tokens"].ravel())
    it.set_mixture_weights({"de/udhr": 1.0})  # same iterator: sources continue where they were
    de = BYTES.decode(next(it)["tokens"].ravel())
    assert " the " in en and " the " not in de
    assert " und " in de or " die " in de or " der " in de


def test_a_phase_without_a_mixture_returns_to_data_mixture(manifest):
    config = override(_config(manifest), **{"data.mixture": {"de/udhr": 1.0}})
    it = make_iterator(config, mixture={"en/udhr": 1.0})
    assert it.mixture_weights == {"de/udhr": 0.0, "en/udhr": 1.0}
    assert it.default_mixture == {"de/udhr": 1.0, "en/udhr": 0.0}  # not the mixture argument
    next(it)
    phase_mixture = None  # a phase with no mixture of its own
    it.set_mixture_weights(phase_mixture or it.default_mixture)
    de = BYTES.decode(next(it)["tokens"][1:].ravel())  # row 0 may end an English document
    assert " the " not in de and (" und " in de or " die " in de or " der " in de)
    # no data.mixture: data.weighting ("proportional" to tokens) is the default
    plain = make_iterator(_config(manifest), mixture={"en/udhr": 1.0})
    assert set(plain.default_mixture) == {"de/udhr", "en/udhr"}
    assert all(w > 0 for w in plain.default_mixture.values())
    assert sum(plain.default_mixture.values()) == pytest.approx(1.0)


def test_pipeline_training_resumes_exactly(manifest, tmp_path):
    straight = train(_config(manifest), str(tmp_path / "straight"))
    assert straight.step == 4
    resumed = str(tmp_path / "resumed")
    assert train(override(_config(manifest), **{"train.stop_after": 3}), resumed).step == 3
    assert train(_config(manifest), resumed).step == 4
    a = read_jsonl(os.path.join(straight.workdir, "metrics.jsonl"))
    b = read_jsonl(os.path.join(resumed, "metrics.jsonl"))
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    assert [r["phase"] for r in b] == [0, 0, 1, 1]
    assert np.isfinite([r["loss"] for r in a]).all()


def test_pipeline_needs_a_manifest(tmp_path):
    config = small_config()
    config.data.source = "pipeline"
    with pytest.raises(DataConfigError, match="needs data.manifest"):
        train(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
