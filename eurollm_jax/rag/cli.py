"""``python -m launch.rag index|retrieve|run|drag``: the command-line contract of the RAG stage.

  index     --corpus=FILE --retriever=bm25|e5|model --output=DIR
            [--backend=auto|exact|faiss --faiss_min=50000 --nprobe=16]
            [--checkpoint=DIR --tokenizer=FILE: the model retriever's LM]
  retrieve  --index=DIR --queries=FILE --k=5 --output=FILE [--scope=all|query|<lang>]
            results: one line per query, {"id", "hits": [{"doc_id", "score"}, ...]} best first;
            with --relevant_key=relevant (queries carrying relevant passage ids) it prints
            recall@k.
  run       --index=DIR --queries=FILE --output=DIR [--strategies=norag,monorag,trag,multirag,
            crossrag --k=5 --max_tokens=64 --format=jsonl|mkqa|mlqa|xor_tydi --languages=de,fr]
            generator: --endpoint=URL --model_name=NAME (OpenAI-compatible, e.g. launch.serve)
            or --checkpoint=DIR (in process); --translator_endpoint/--translator_model for a
            separate MT model; --cache_dir=DIR caches every LLM answer (reruns send nothing
            twice). Writes records.jsonl, results.json, table.md, table.png.
  drag      --index=DIR --queries=FILE --output=DIR --mode=eval|perturb|ablate|traces
            eval: DRAG answers and the parser's issue counts; perturb: DRAG (and plain
            --retrieval RAG) with none/shuffled/irrelevant documents; ablate: full,
            no_explanation, no_argumentation; traces: filtered traces -> OUT/sft.jsonl
            (--judge_endpoint/--judge_model for a separate judge).

Every command checks its inputs before it builds or generates anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from eurollm_jax import fileio
from eurollm_jax.rag import drag as drag_lib
from eurollm_jax.rag.corpus import read_passages, read_queries
from eurollm_jax.rag.index import BACKENDS, RETRIEVERS, build_index, load_index, recall_at_k
from eurollm_jax.rag.report import markdown_table, write_run
from eurollm_jax.rag.strategies import STRATEGIES, run_strategies


def _engine(checkpoint: str, tokenizer: str | None):
    from eurollm_jax.inference import Engine, load_for_inference

    model, tok = load_for_inference(checkpoint, tokenizer=tokenizer)
    if tok is None:
        raise SystemExit(f"{checkpoint}: no tokenizer.model there; pass --tokenizer=FILE")
    return Engine(model, tok)


def _client(args, prefix: str = ""):
    from eurollm_jax.llm import LLMClient

    endpoint = getattr(args, f"{prefix}endpoint", None)
    cache = os.path.join(args.cache_dir, prefix or "generator") if args.cache_dir else None
    if endpoint:
        name = getattr(args, f"{prefix}model") if prefix else args.model_name
        return LLMClient.from_endpoint(endpoint, name or "eurollm", concurrency=args.concurrency,
                                       cache_dir=cache)
    if prefix:
        return None
    if not args.checkpoint:
        raise SystemExit("no generator: pass --endpoint=URL (an OpenAI-compatible server) or "
                         "--checkpoint=DIR (in process)")
    return LLMClient.from_engine(_engine(args.checkpoint, args.tokenizer), cache_dir=cache)


def _load(args):
    engine = None
    meta_path = os.path.join(args.index, "index.json")
    if os.path.exists(meta_path) and fileio.read_json(meta_path)["retriever"] == "model" \
            and args.checkpoint:
        engine = _engine(args.checkpoint, args.tokenizer)
    return load_index(args.index, engine=engine)


def _queries(args):
    from eurollm_jax.rag import readers

    languages = args.languages.split(",") if getattr(args, "languages", None) else None
    fmt = getattr(args, "format", "jsonl")
    if fmt == "jsonl":
        queries = read_queries(args.queries)
        return [q for q in queries if languages is None or q.language in languages]
    return readers.read(fmt, args.queries, languages=languages,
                        limit=getattr(args, "limit", None))


def cmd_index(args) -> int:
    passages = read_passages(args.corpus)
    encoder = None
    if args.retriever == "model":
        if not args.checkpoint:
            raise SystemExit("--retriever=model needs --checkpoint=DIR (the LM to embed with)")
        from eurollm_jax.rag.encoders import ModelEncoder

        encoder = ModelEncoder(_engine(args.checkpoint, args.tokenizer),
                               layer=args.layer, source=os.path.abspath(args.checkpoint))
    start = time.perf_counter()
    index = build_index(passages, args.retriever, encoder=encoder, backend=args.backend,
                        faiss_min=args.faiss_min, nprobe=args.nprobe)
    index.save(args.output)
    print(json.dumps({"passages": len(passages), "scopes": {s: len(p) for s, p in
                                                             index.scopes.items()},
                      "retriever": args.retriever, "seconds": round(time.perf_counter() - start,
                                                                    3)}))
    return 0


def cmd_retrieve(args) -> int:
    queries = read_queries(args.queries)
    index = _load(args)
    if args.scope == "query":
        scope = [q.language for q in queries]
    else:
        scope = args.scope
    hits = index.search([q.text for q in queries], args.k, scope=scope,
                        languages=[q.language for q in queries])
    fileio.write_jsonl(args.output, [{"id": q.id, "hits": [h.to_dict() for h in hs]}
                                     for q, hs in zip(queries, hits)])
    summary = {"queries": len(queries), "k": args.k, "output": args.output}
    if args.relevant_key:
        rel = [q.extra.get(args.relevant_key) for q in queries]
        if any(r is None for r in rel):
            raise SystemExit(f"--relevant_key={args.relevant_key}: some queries lack that key")
        summary[f"recall@{args.k}"] = recall_at_k(hits, rel, args.k)
    print(json.dumps(summary))
    return 0


def cmd_run(args) -> int:
    strategies = [s for s in args.strategies.split(",") if s]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise SystemExit(f"--strategies: unknown {unknown}; choose from {','.join(STRATEGIES)}")
    queries = _queries(args)
    index = _load(args)
    generator = _client(args)
    translator = _client(args, "translator_")
    out = run_strategies(queries, index, generator, strategies=strategies,
                         translator=translator, k=args.k, max_tokens=args.max_tokens)
    result = write_run(args.output, out["records"],
                       {"translation": out["translation"], "usage": out["usage"],
                        "settings": {"k": args.k, "strategies": strategies,
                                     "retriever": index.retriever}})
    print(markdown_table(result["table"]))
    return 0


def cmd_drag(args) -> int:
    queries = _queries(args)
    index = _load(args)
    generator = _client(args)
    translator = _client(args, "translator_")
    common = dict(k=args.k, retrieval=args.retrieval, translator=translator,
                  max_tokens=args.max_tokens)
    if args.mode == "traces":
        judge = _client(args, "judge_") or generator
        out = drag_lib.make_traces(queries, index, generator, judge=judge, **common)
        from eurollm_jax.data.sft import validate_sft_record

        for i, r in enumerate(out["sft"]):
            validate_sft_record(r, where=f"drag trace {i}")
        os.makedirs(args.output, exist_ok=True)
        fileio.write_jsonl(os.path.join(args.output, "traces.jsonl"), out["records"])
        fileio.write_jsonl(os.path.join(args.output, "sft.jsonl"), out["sft"])
        fileio.write_json(os.path.join(args.output, "counts.json"), out["counts"])
        print(json.dumps(out["counts"]))
        return 0
    records = []
    if args.mode == "eval":
        records = drag_lib.run_drag(queries, index, generator, **common)
        for r in records:
            r["row"] = r["strategy"]
    elif args.mode == "ablate":
        for variant in drag_lib.VARIANTS:
            for r in drag_lib.run_drag(queries, index, generator, variant=variant, **common):
                records.append(dict(r, row=r["strategy"]))
    elif args.mode == "perturb":
        for name in drag_lib.PERTURBATIONS:
            perturb = drag_lib.make_perturbation(name, index, n_irrelevant=args.n_irrelevant,
                                                 seed=args.seed)
            for r in drag_lib.run_drag(queries, index, generator, perturb=perturb, **common):
                records.append(dict(r, row=f"drag/{name}"))
            plain = run_strategies(queries, index, generator, strategies=[args.retrieval],
                                   translator=translator, k=args.k,
                                   max_tokens=min(args.max_tokens, 64), perturb=perturb)
            records += [dict(r, row=f"{args.retrieval}/{name}") for r in plain["records"]]
    issues = drag_lib.count_issues([drag_lib.DragParse({}, r["answer"], r["issues"])
                                    for r in records if "issues" in r])
    result = write_run(args.output, records, {"parser_issues": issues, "mode": args.mode},
                       second=None, row_key="row")
    print(markdown_table(result["table"], second=None, row_label=args.mode))
    print(json.dumps({"parser_issues": issues}))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m launch.rag", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    def lm_flags(q):
        q.add_argument("--checkpoint", help="the LM (HF or Orbax dir) for in-process use")
        q.add_argument("--tokenizer", help="tokenizer.model (default: the checkpoint's)")

    def gen_flags(q):
        q.add_argument("--index", required=True)
        q.add_argument("--queries", required=True)
        q.add_argument("--output", required=True, help="output directory")
        q.add_argument("--format", default="jsonl", choices=("jsonl", "mkqa", "mlqa", "xor_tydi"))
        q.add_argument("--languages", help="comma-separated question languages to keep")
        q.add_argument("--limit", type=int, help="at most this many questions per language")
        q.add_argument("--k", type=int, default=5)
        q.add_argument("--endpoint", help="OpenAI-compatible server URL (e.g. launch.serve)")
        q.add_argument("--model_name", default="eurollm", help="model name sent to --endpoint")
        q.add_argument("--translator_endpoint")
        q.add_argument("--translator_model", default="eurollm")
        q.add_argument("--concurrency", type=int, default=8)
        q.add_argument("--cache_dir", help="persistent LLM answer cache")
        lm_flags(q)

    q = sub.add_parser("index", help="build and save an index")
    q.add_argument("--corpus", required=True)
    q.add_argument("--retriever", required=True, choices=RETRIEVERS)
    q.add_argument("--output", required=True)
    q.add_argument("--backend", default="auto", choices=BACKENDS)
    q.add_argument("--faiss_min", type=int, default=50_000)
    q.add_argument("--nprobe", type=int, default=16)
    q.add_argument("--layer", type=int, default=-1, help="model retriever: the pooled layer")
    lm_flags(q)

    q = sub.add_parser("retrieve", help="top-k passages per query")
    q.add_argument("--index", required=True)
    q.add_argument("--queries", required=True)
    q.add_argument("--k", type=int, default=5)
    q.add_argument("--output", required=True)
    q.add_argument("--scope", default="all",
                   help="all (mixed corpus), query (each query's language) or a language code")
    q.add_argument("--relevant_key", help="query key holding relevant ids: print recall@k")
    lm_flags(q)

    q = sub.add_parser("run", help="the RAG strategies and their table")
    gen_flags(q)
    q.add_argument("--strategies", default=",".join(STRATEGIES))
    q.add_argument("--max_tokens", type=int, default=64)

    q = sub.add_parser("drag", help="Dialectic RAG: eval, perturb, ablate, traces")
    gen_flags(q)
    q.add_argument("--mode", default="eval", choices=("eval", "perturb", "ablate", "traces"))
    q.add_argument("--retrieval", default="multirag", choices=("monorag", "trag", "multirag",
                                                                "crossrag"))
    q.add_argument("--max_tokens", type=int, default=512)
    q.add_argument("--n_irrelevant", type=int, default=2)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--judge_endpoint")
    q.add_argument("--judge_model", default="eurollm")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    if getattr(args, "k", 1) < 1:
        raise SystemExit(f"--k must be >= 1, got {args.k}")
    return {"index": cmd_index, "retrieve": cmd_retrieve, "run": cmd_run,
            "drag": cmd_drag}[args.command](args)
