"""XL-Instruct cross-lingual SFT data (``python -m launch.synthesize
--config=configs/synthesis_xl_instruct.py``).

Target-language documents (``--config.job.seeds=docs.jsonl``, lines ``{"language": "de",
"text": "..."}``) -> an English instruction the document answers -> 3 target-language
candidates -> refinement -> judge -> the best candidate per document -> the top 8,000 per
language. Fields and defaults: ``eurollm_jax/synthesis/config.py`` (``XLInstructSection``).
"""

from configs.synthesis_common import synthesis_config


def get_config():
    return synthesis_config("xl_instruct")
