"""EuroBlocks-style SFT data
(``python -m launch.synthesize --config=configs/synthesis_euroblocks.py``).

Seed prompts per language (``--config.job.seeds=seeds.jsonl``, lines ``{"language": "de",
"prompt": "..."}``) -> answers from the instruct model at ``--config.llm.base_url`` ->
translations of the English pairs into every language of ``euroblocks.languages`` with fewer
than ``euroblocks.min_per_language`` seeds -> judge score >= ``euroblocks.judge_threshold`` ->
language ID of both sides -> MinHash near-dedup -> ChatML SFT records in OUTPUT/sft/.
Fields and defaults: ``eurollm_jax/synthesis/config.py``.
"""

from configs.synthesis_common import synthesis_config


def get_config():
    return synthesis_config("euroblocks", euroblocks={"min_per_language": 100})
