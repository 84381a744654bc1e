"""lm-eval's ``local-completions`` model against the server over HTTP gives the results of
the in-process ``eurollm_jax`` backend on a local log-likelihood task and a generation task
(the server's /tokenize endpoint is lm-eval's ``tokenizer_backend=remote``)."""

import numpy as np
import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("fastapi")
pytestmark = pytest.mark.torch

from tests.inference.test_lm_eval import GEN_PROMPTS, MC_DOCS, _write_tasks  # noqa: E402


@pytest.mark.slow
def test_local_completions_over_http_equals_in_process_backend(tmp_path, engine, jax_model, tokenizer):
    pytest.importorskip("tenacity", reason="lm-eval's API models need lm-eval[api] (tenacity)")
    import lm_eval
    import lm_eval.models.openai_completions  # noqa: F401  (registers local-completions)
    from lm_eval.tasks import TaskManager

    from eurollm_jax.inference.lm_eval_backend import EuroLLMJaxLM
    from eurollm_jax.inference.server import ServerConfig, running_server

    mc_rows = [{"question": q, "choices": c, "label": i % len(c)} for i, (q, c) in enumerate(MC_DOCS)]
    gen_rows = [{"prompt": p, "answer": "x"} for p in GEN_PROMPTS]
    _write_tasks(str(tmp_path), {"mc": mc_rows, "gen": gen_rows, "roll": [{"text": "a b"}]})
    tasks = ["tiny_mc", "tiny_gen"]

    def evaluate(model, **kw):
        out = lm_eval.simple_evaluate(
            model=model,
            tasks=tasks,
            task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False),
            log_samples=True,
            bootstrap_iters=0,
            **kw,
        )
        return out["results"], out["samples"]

    # lm-eval's API models send contexts without BOS: the in-process backend does the same
    local_res, local_samples = evaluate(
        EuroLLMJaxLM(model=jax_model, tokenizer=tokenizer, add_bos_token=False, max_length=200),
        batch_size=8,
    )
    with running_server(engine, ServerConfig(model_name="tiny", max_batch_size=8)) as url:
        http_res, http_samples = evaluate(
            "local-completions",
            model_args=(
                f"model=tiny,base_url={url}/v1/completions,tokenizer_backend=remote,"
                "num_concurrent=4,max_retries=1,tokenized_requests=True,max_length=200"
            ),
            batch_size=1,
        )
    assert http_res["tiny_mc"]["acc,none"] == pytest.approx(local_res["tiny_mc"]["acc,none"])
    assert http_res["tiny_gen"]["exact_match,none"] == local_res["tiny_gen"]["exact_match,none"]
    for task in tasks:
        a = sorted(local_samples[task], key=lambda s: (s["doc_id"]))
        b = sorted(http_samples[task], key=lambda s: (s["doc_id"]))
        assert len(a) == len(b) == (len(MC_DOCS) if task == "tiny_mc" else len(GEN_PROMPTS))
        for sa, sb in zip(a, b):
            if task == "tiny_mc":  # (log-likelihood, is_greedy) per choice
                np.testing.assert_allclose(
                    [r[0][0] for r in sa["resps"]], [r[0][0] for r in sb["resps"]], atol=1e-4
                )
                assert [r[0][1] for r in sa["resps"]] == [r[0][1] for r in sb["resps"]]
            else:
                assert sa["resps"] == sb["resps"], (sa["resps"], sb["resps"])


@pytest.mark.slow
def test_local_completions_wire_format(engine, jax_model, tokenizer):
    """lm-eval's own payloads and parsers (LocalCompletionsAPI) on the server's answers equal
    the in-process backend's log-likelihoods and generations (no tenacity needed)."""
    import types

    import httpx
    from lm_eval.api.instance import Instance
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    from eurollm_jax.inference.lm_eval_backend import EuroLLMJaxLM
    from eurollm_jax.inference.server import ServerConfig, running_server

    local = EuroLLMJaxLM(model=jax_model, tokenizer=tokenizer, add_bos_token=False, max_length=200)
    fake_self = types.SimpleNamespace(model="tiny", _max_gen_toks=256)
    pairs = [(q, " " + c) for q, cs in MC_DOCS[:3] for c in cs]
    ll_reqs = [Instance("loglikelihood", {}, p, i) for i, p in enumerate(pairs)]
    want_ll = local.loglikelihood(ll_reqs)
    gen_reqs = [
        Instance("generate_until", {}, (p, {"until": ["\n", "."], "max_gen_toks": 6}), i)
        for i, p in enumerate(GEN_PROMPTS)
    ]
    want_gen = local.generate_until(gen_reqs)
    with running_server(engine, ServerConfig(model_name="tiny", max_batch_size=8)) as url:
        with httpx.Client(base_url=url, timeout=120) as client:
            def tok(text):
                r = client.post("/tokenize", json={"prompt": text, "add_special_tokens": False})
                return r.json()["tokens"]

            for (ctx, cont), (want_lp, want_greedy) in zip(pairs, want_ll):
                whole = tok(ctx + cont)
                ctx_ids = tok(ctx)
                payload = LocalCompletionsAPI._create_payload(fake_self, [whole], generate=False)
                out = client.post("/v1/completions", json=payload).json()
                (lp, greedy), = LocalCompletionsAPI.parse_logprobs(out, [whole], [len(ctx_ids)])
                assert lp == pytest.approx(want_lp, abs=1e-4) and greedy == want_greedy
            for prompt, want in zip(GEN_PROMPTS, want_gen):
                payload = LocalCompletionsAPI._create_payload(
                    fake_self, [tok(prompt)], generate=True,
                    gen_kwargs={"until": ["\n", "."], "max_gen_toks": 6, "do_sample": False},
                    eos="</s>",
                )
                out = client.post("/v1/completions", json=payload).json()
                assert LocalCompletionsAPI.parse_generations(out) == [want]
