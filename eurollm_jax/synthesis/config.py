"""The synthesis jobs' typed schema (``launch.synthesize``): every setting, its default, its check.

Sections of ``SynthesisConfig`` (key in brackets):

- [job] ``JobSection``: which pipeline (``euroblocks`` | ``xl_instruct`` | ``context``), the
  seed file(s) and the ``source`` name written into every SFT record;
- [llm] ``LLMSection``: which model answers (an OpenAI-compatible endpoint through the
  ``openai`` package, or a checkpoint / preset in this process) and the response cache;
- [runner] ``RunnerSection``: records per shard, local worker processes, progress;
- [euroblocks] ``EuroBlocksSection``, [xl_instruct] ``XLInstructSection``, [context]
  ``ContextSection``: the pipelines' own settings (only the chosen one is used);
- [dedup] ``filtering.DedupConfig`` (the filtering package's MinHash, reused).

Defaults of sampling lengths are for real instruct models; tests shrink them.
"""

from __future__ import annotations

import dataclasses

from eurollm_jax.filtering.dedup import DedupConfig
from eurollm_jax.languages import EU_LANGUAGES
from eurollm_jax.schema import Section

PIPELINES = ("euroblocks", "xl_instruct", "context")
LLM_BACKENDS = ("http", "engine")




@dataclasses.dataclass(frozen=True)
class JobSection(Section):
    pipeline: str = "euroblocks"  # euroblocks | xl_instruct | context
    seeds: str = ""  # seed JSONL file(s): a path, glob or comma-separated list
    source: str = ""  # the SFT records' "source" (mixture key); "" -> the pipeline's name

    def check(self, path):
        self.require_choice(path, "pipeline", PIPELINES)

    @property
    def source_name(self) -> str:
        return self.source or self.pipeline


@dataclasses.dataclass(frozen=True)
class LLMSection(Section):
    """Which model answers. ``http``: ``base_url`` of an OpenAI-compatible server
    (``python -m launch.serve``, vLLM, a hosted API); ``engine``: a params/HF ``checkpoint``
    (or a random ``preset`` for smoke tests) in this process, ``tokenizer`` its
    tokenizer.model."""

    backend: str = "http"  # http | engine
    base_url: str = ""
    model: str = "eurollm"  # the model name sent to the server; part of every cache key
    api_key: str = ""  # http: sent as a Bearer token (never read from the environment)
    concurrency: int = 16  # http: requests in flight per worker process
    timeout: float = 120.0
    max_retries: int = 2
    checkpoint: str = ""  # engine
    preset: str = ""  # engine: random weights of a model preset (smoke tests)
    tokenizer: str = ""  # engine: tokenizer.model ("" -> the checkpoint's own)
    cache_dir: str = ""  # "" -> OUTPUT/_work/llm_cache (a rerun sends no finished request)

    def check(self, path):
        self.require_choice(path, "backend", LLM_BACKENDS)
        self.require(path, self.concurrency > 0, "concurrency", "must be positive")
        self.require(path, self.timeout > 0, "timeout", "must be positive")
        self.require(path, self.max_retries >= 0, "max_retries", "must be >= 0")

    def check_backend(self, path: str = "llm") -> None:
        """What the chosen backend needs (checked when a job starts, not when a config loads)."""
        if self.backend == "http":
            self.require(path, self.base_url.startswith(("http://", "https://")), "base_url",
                         "backend=http needs the server's root, e.g. http://127.0.0.1:8000 "
                         "(`python -m launch.serve`)")
        else:
            self.require(path, bool(self.checkpoint or self.preset), "checkpoint",
                         "backend=engine needs a checkpoint directory (or a preset for a smoke "
                         "test)")


@dataclasses.dataclass(frozen=True)
class RunnerSection(Section):
    shard_size: int = 64  # records per shard: the unit of work, of resumption and of LLM batches
    num_workers: int = 1  # local worker processes (each builds its own LLM client)
    records_per_file: int = 10_000  # SFT output shard size (sft/part-NNNNN.jsonl)
    progress: bool = True  # progress lines with ETA on stderr

    def check(self, path):
        self.require(path, self.shard_size > 0, "shard_size", "must be positive")
        self.require(path, self.records_per_file > 0, "records_per_file", "must be positive")
        self.require(path, self.num_workers > 0, "num_workers", "must be positive")


@dataclasses.dataclass(frozen=True)
class EuroBlocksSection(Section):
    """seed prompts per language -> answers -> translation into languages that lack data ->
    judge score >= threshold -> language ID on both sides -> near-dedup -> ChatML records."""

    languages: tuple[str, ...] = EU_LANGUAGES  # the languages the data set should cover
    min_per_language: int = 1  # a language with fewer seed prompts than this gets translations
    translate_from: tuple[str, ...] = ("en",)  # pairs in these languages are translated
    answer_temperature: float = 0.7
    answer_max_tokens: int = 1024
    translate_max_tokens: int = 1024
    judge_max_tokens: int = 256
    judge_threshold: float = 7.0  # keep pairs whose judge score (1-10) is at least this
    langid_threshold: float = 0.5  # both sides must be identified as the expected language
    dedup_field: str = "prompt"  # MinHash over the prompt (or "pair": prompt + answer)
    system_prompt: str = ""  # optional system turn of the written SFT records

    def check(self, path):
        self.require(path, self.min_per_language >= 0, "min_per_language", "must be >= 0")
        self.require(path, 1.0 <= self.judge_threshold <= 10.0, "judge_threshold",
                     "must be in [1, 10] (the judge's scale)")
        self.require(path, 0.0 <= self.langid_threshold <= 1.0, "langid_threshold",
                     "must be in [0, 1]")
        self.require_choice(path, "dedup_field", ("prompt", "pair"))
        bad = [lang for lang in self.languages + self.translate_from if lang not in EU_LANGUAGES]
        self.require(path, not bad, "languages", f"unknown language codes {bad}; use the ISO "
                     f"639-1 codes of eurollm_jax.languages.EU_LANGUAGES")


@dataclasses.dataclass(frozen=True)
class XLInstructSection(Section):
    """target-language document -> English instruction (back-translation) -> target-language
    responses (``num_candidates`` seeds) -> refinement -> judge -> best candidate -> top K."""

    num_candidates: int = 3
    top_k: int = 8000  # per language, by judge score
    max_doc_chars: int = 4000  # the document is cut to this many characters in prompts
    instruction_max_tokens: int = 256
    response_temperature: float = 0.8
    response_max_tokens: int = 1024
    judge_max_tokens: int = 256
    min_score: float = 1.0  # candidates scored below this are dropped before the top K
    langid_threshold: float = 0.5  # the response must be in the document's language

    def check(self, path):
        self.require(path, self.num_candidates >= 1, "num_candidates", "must be >= 1")
        self.require(path, self.top_k >= 1, "top_k", "must be >= 1")
        self.require(path, self.max_doc_chars > 0, "max_doc_chars", "must be positive")


@dataclasses.dataclass(frozen=True)
class ContextSection(Section):
    """(question, answer) seeds per task -> the missing background context (parsed after
    ``marker``) -> + the contexts of ``num_distractors`` other samples of the task, shuffled ->
    the task's prompt template as the user turn, the gold answer as the assistant turn."""

    context_words: int = 2000  # asked-for length of each synthesized context
    min_context_words: int = 50  # shorter parsed contexts are dropped
    marker: str = "Context:"
    max_tokens: int = 4096
    temperature: float = 0.7
    num_distractors: int = 9
    seed: int = 0  # the distractor choice and shuffle (with the record id)
    # task -> template with {context} and {question} (defaults: pipelines.DEFAULT_TEMPLATES)
    templates: dict = dataclasses.field(default_factory=dict)
    tokenizer: str = ""  # optional tokenizer.model: the total length is also counted in tokens

    def check(self, path):
        self.require(path, self.context_words > 0, "context_words", "must be positive")
        self.require(path, self.num_distractors >= 0, "num_distractors", "must be >= 0")
        self.require(path, bool(self.marker.strip()), "marker", "must not be empty")
        for task, template in self.templates.items():
            ok = isinstance(template, str) and "{context}" in template and "{question}" in template
            self.require(path, ok, f"templates.{task}",
                         "a template must be a string with {context} and {question}")
            try:
                template.format(context="", question="")
            except (KeyError, IndexError, ValueError) as e:
                self.require(path, False, f"templates.{task}",
                             f"cannot be filled ({type(e).__name__}: {e}); write other literal "
                             f"braces as {{{{ and }}}}")


@dataclasses.dataclass(frozen=True)
class SynthesisConfig(Section):
    """One synthesis job (the module docstring lists the sections)."""

    job: JobSection = dataclasses.field(default_factory=JobSection)
    llm: LLMSection = dataclasses.field(default_factory=LLMSection)
    runner: RunnerSection = dataclasses.field(default_factory=RunnerSection)
    euroblocks: EuroBlocksSection = dataclasses.field(default_factory=EuroBlocksSection)
    xl_instruct: XLInstructSection = dataclasses.field(default_factory=XLInstructSection)
    context: ContextSection = dataclasses.field(default_factory=ContextSection)
    dedup: DedupConfig = dataclasses.field(default_factory=DedupConfig)

    def job_settings(self) -> dict:
        """What determines a job's work files (the fingerprint of ``_work/job.json``):
        everything but how it runs (workers, progress, the LLM transport); the model name
        stays (it keys the answers) and so does the shard size (it names the work files)."""
        d = self.to_dict()
        d["runner"] = {"shard_size": self.runner.shard_size}
        d["llm"] = {"model": self.llm.model}
        return d
