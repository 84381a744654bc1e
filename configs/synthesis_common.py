"""Shared by the synthesis configs: the typed defaults of ``eurollm_jax.synthesis.config``
(``SynthesisConfig``) as a ConfigDict, the command-line surface of ``launch.synthesize``."""

from configs.filter_default import section_config
from eurollm_jax.synthesis.config import SynthesisConfig


def synthesis_config(pipeline: str, **section_overrides):
    """The defaults with ``job.pipeline`` set; ``section_overrides`` replace single fields."""
    config = section_config(SynthesisConfig())
    config.job.pipeline = pipeline
    for section, values in section_overrides.items():
        config[section].update(values)
    return config
