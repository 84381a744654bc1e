"""Command line of ``python -m launch.evaluate``: one subcommand per evaluation + ``report``.

    python -m launch.evaluate eurogest --checkpoint=DIR --data_dir=DIR --output=DIR \\
        [--languages=de,fr]
    python -m launch.evaluate lm_eval --checkpoint=DIR --tasks=arc,hellaswag,mmlu \\
        --languages=de,fr --data_dir=DIR --output=DIR
    python -m launch.evaluate mt --checkpoint=DIR --data_dir=FLORES --directions=en-de,de-en \\
        --output=DIR
    python -m launch.evaluate xl_alpacaeval --checkpoint=DIR --instructions=FILE --references=DIR \\
        --languages=de,fr --judge_url=http://host:8000 --judge_model=NAME --output=DIR
    python -m launch.evaluate report --registry=DIR [--out=FILE.md]

The checkpoint is a Hugging Face directory, an Orbax params directory or a training workdir
(``--preset=tiny`` evaluates random weights, for smoke tests). Each run writes its outputs
under ``--output`` and one record into the registry (``--registry``, default
``OUTPUT/registry``); rerunning a killed command with the same arguments skips the
(task, language) pairs it finished.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def _languages(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "y", "on"):
        return True
    if text.lower() in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--checkpoint", help="HF dir, Orbax params dir or training workdir")
    g.add_argument("--preset", help="a model preset with random weights (smoke tests)")
    g.add_argument("--tokenizer", help="tokenizer.model (default: next to the weights)")
    g.add_argument("--mesh", help='mesh shape "data,fsdp,tensor", e.g. 1,-1,1')
    g.add_argument("--compute_dtype", help="e.g. bfloat16 (default: the checkpoint's)")
    g.add_argument("--max_batch_size", type=int, default=64, help="rows per decode")
    p.set_defaults(model_required=required)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", required=True, help="output directory")
    p.add_argument("--registry", help="results registry directory (default OUTPUT/registry)")
    p.add_argument("--languages", help="comma-separated ISO 639-1 codes")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m launch.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("eurogest", help="EuroGEST gender-stereotype scores")
    _model_args(p)
    _common(p)
    p.add_argument("--data_dir", required=True, help="folder of <lang>.csv files")
    p.add_argument("--scaffolds", help="folder of <lang>.json scaffolds overriding evals/'s")
    p.add_argument("--rows_per_call", type=int, help="rows per scoring call (default: all)")
    p.add_argument("--max_batch_tokens", type=int, default=8192,
                   help="tokens per scoring batch (logits memory: tokens x vocab x 4 bytes)")

    p = sub.add_parser("lm_eval", help="the European benchmark set through lm-eval")
    _model_args(p)
    _common(p)
    p.add_argument("--tasks", required=True,
                   help="families (arc,hellaswag,mmlu,truthfulqa,gsm8k,belebele,xnli,xcopa,"
                        "xstorycloze,mgsm) and/or lm-eval task names")
    p.add_argument("--data_dir", help="DATA_DIR/<family>/<lang>/<split>.jsonl")
    p.add_argument("--num_fewshot", type=int, help="override the leaderboard shot counts")
    p.add_argument("--limit", type=int, help="documents per task (smoke tests)")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--max_length", type=int, help="context window (default the model's)")
    p.add_argument("--apply_chat_template", type=_bool, default=False)
    p.add_argument("--include_path", help="a folder of your own lm-eval task YAMLs")
    p.add_argument("--max_gen_toks", type=int,
                   help="generation budget of generative tasks (default the task's, else 256)")

    p = sub.add_parser("mt", help="machine translation: chrF and BLEU (sacrebleu), COMET")
    _model_args(p)
    _common(p)
    p.add_argument("--data_dir", required=True, help="FLORES-style files, one sentence a line")
    p.add_argument("--directions", help="e.g. en-de,de-en (default: en-X for --languages)")
    p.add_argument("--split", default="devtest")
    p.add_argument("--prompt_format", default="auto", choices=("auto", "chat", "base"))
    p.add_argument("--templates", help='JSON {"chat": ..., "base": ...} prompt templates')
    p.add_argument("--max_new_tokens", type=int, default=256)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--limit", type=int, help="sentences per direction (smoke tests)")
    p.add_argument("--comet_model", help="local COMET checkpoint (model.ckpt)")

    p = sub.add_parser("xl_alpacaeval", help="XL-AlpacaEval win rate with an LLM judge")
    _model_args(p, required=False)
    _common(p)
    p.add_argument("--instructions", required=True, help="AlpacaEval-format instructions")
    p.add_argument("--references", required=True, help="folder of <lang>.json[l] references")
    p.add_argument("--judge_url", required=True, help="OpenAI-compatible endpoint")
    p.add_argument("--judge_model", required=True)
    p.add_argument("--judge_api_key", default=os.environ.get("JUDGE_API_KEY"),
                   help="default $JUDGE_API_KEY")
    p.add_argument("--candidate_url", help="evaluate an endpoint instead of --checkpoint")
    p.add_argument("--candidate_model", default="eurollm")
    p.add_argument("--answer_prompt", help='JSON {"system": ..., "user": ...}')
    p.add_argument("--judge_prompt", help='JSON {"system": ..., "user": ...}')
    p.add_argument("--language_check", type=_bool, default=True)
    p.add_argument("--max_tokens", type=int, default=512)
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--limit", type=int)
    p.add_argument("--concurrency", type=int, default=8)

    p = sub.add_parser("report", help="the registry as one Markdown table")
    p.add_argument("--registry", required=True)
    p.add_argument("--out", help="write the table here (default: print it)")
    return parser


def _load(args):
    from eurollm_jax.evaluation.common import load_eval_model

    if (args.checkpoint is None) == (args.preset is None):
        if not args.model_required and args.checkpoint is None and args.preset is None:
            return None
        raise ValueError("give exactly one of --checkpoint=DIR or --preset=NAME")
    return load_eval_model(args.checkpoint, preset=args.preset, tokenizer=args.tokenizer,
                           mesh=args.mesh, compute_dtype=args.compute_dtype,
                           max_batch_size=args.max_batch_size)


def run(args) -> int:
    if args.command == "report":
        from eurollm_jax.evaluation.registry import report

        table = report(args.registry)
        if args.out:
            from eurollm_jax.fileio import write_text

            write_text(args.out, table)
        else:
            sys.stdout.write(table)
        return 0
    langs = _languages(args.languages)
    common = dict(output_dir=args.output, registry_dir=args.registry)
    if args.command == "eurogest":
        from eurollm_jax.evaluation.eurogest import discover_languages, markdown_table, run_eurogest

        discover_languages(args.data_dir)  # bad input fails before the model loads
        results = run_eurogest(_load(args), data_dir=args.data_dir, languages=langs or None,
                               scaffold_dir=args.scaffolds, rows_per_call=args.rows_per_call,
                               max_batch_tokens=args.max_batch_tokens,
                               **common)
        sys.stdout.write(markdown_table(results))
    elif args.command == "lm_eval":
        from eurollm_jax.evaluation.lm_eval_tasks import results_table, run_lm_eval

        out = run_lm_eval(_load(args), tasks=args.tasks, languages=langs,
                          data_dir=args.data_dir, num_fewshot=args.num_fewshot,
                          limit=args.limit, batch_size=args.batch_size,
                          max_length=args.max_length,
                          apply_chat_template=args.apply_chat_template,
                          gen_kwargs=({"max_gen_toks": args.max_gen_toks}
                                      if args.max_gen_toks else None),
                          task_include_path=args.include_path, **common)
        sys.stdout.write(results_table(out["scores"]))
    elif args.command == "mt":
        from eurollm_jax.evaluation.mt import run_mt

        results = run_mt(_load(args), data_dir=args.data_dir, directions=args.directions,
                         languages=langs, split=args.split, prompt_format=args.prompt_format,
                         templates_file=args.templates, max_new_tokens=args.max_new_tokens,
                         batch_size=args.batch_size, limit=args.limit,
                         comet_model=args.comet_model, **common)
        for d, r in results.items():
            print(f"{d}: BLEU {r['bleu']:.2f}  chrF {r['chrf']:.2f}"
                  + (f"  COMET {r['comet']:.4f}" if "comet" in r else ""))
    elif args.command == "xl_alpacaeval":
        from eurollm_jax.evaluation.xl_alpacaeval import run_xl_alpacaeval

        model = None if args.candidate_url else _load(args)
        results = run_xl_alpacaeval(
            model, instructions_file=args.instructions, references_dir=args.references,
            languages=langs, judge_url=args.judge_url, judge_model=args.judge_model,
            judge_api_key=args.judge_api_key, candidate_url=args.candidate_url,
            candidate_model=args.candidate_model, answer_prompt_file=args.answer_prompt,
            judge_prompt_file=args.judge_prompt, language_check=args.language_check,
            max_tokens=args.max_tokens, bootstrap=args.bootstrap, limit=args.limit,
            concurrency=args.concurrency, **common)
        for lang, r in results.items():
            wr = "n/a" if r["win_rate"] is None else f"{100 * r['win_rate']:.1f}%"
            ci = ("" if r["ci_low"] is None
                  else f" [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]")
            print(f"{lang}: win rate {wr}{ci}, unparsed judgments {r['unparsed_judgments']}, "
                  f"wrong-language answers {r['wrong_language']['candidate']}")
    return 0


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
