"""EuroFilter annotation job (``--job=annotate``): an instruct LLM grades documents 0-5.

Every model call goes through the one LLM client, ``eurollm_jax.llm.LLMClient``.
backend "http": any OpenAI-compatible server (through the ``openai`` package), e.g.
``python -m launch.serve`` started on a EuroLLM instruct checkpoint: ``--config.annotate.base_url=http://127.0.0.1:8000``
(``mode``: "chat" for /v1/chat/completions, "completions" for /v1/completions).
backend "inprocess": the framework's engine in this process,
``--config.annotate.checkpoint=<dir> --config.annotate.tokenizer=<tokenizer.model>``.
The output file OUTPUT/annotations.jsonl is appended to and resumed. The ``annotate``
section's fields and defaults are defined in ``eurollm_jax/filtering/config.py``
(``AnnotateSection``).
"""

from configs.filter_default import filter_config, section_config
from eurollm_jax.filtering.config import AnnotateSection


def get_config():
    cfg = filter_config()
    cfg.annotate = section_config(AnnotateSection())
    return cfg
