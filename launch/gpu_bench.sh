#!/usr/bin/env bash
# Every GPU goal in one prepared run on a fresh NVIDIA host (docs/performance.md):
#   bash launch/gpu_bench.sh [--out DIR] [--wheels DIR] [--tiny]
# 1. checks the Python modules the benchmarks import; a missing one is installed from
#    --wheels (a folder of wheels: GPU hosts here have no network; e.g. grain, ml_collections,
#    array_record, tensorflow_datasets as cp312 manylinux wheels) or, without --wheels, from
#    the package index;
# 2. runs python -m launch.gpu_bench (forward+backward, train step, decode, GPU-only tests)
#    and writes DIR/gpu_bench.json (default DIR: ./gpu_bench_out).
# The repository is used in place (PYTHONPATH), not installed. Exit status: gpu_bench's.
set -euo pipefail
cd "$(dirname "$0")/.."
out=gpu_bench_out wheels="" tiny=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --wheels) wheels=$2; shift 2 ;;
    --tiny) tiny=(--tiny); shift ;;
    *) echo "unknown argument $1 (use --out DIR, --wheels DIR, --tiny)" >&2; exit 2 ;;
  esac
done
python=${PYTHON:-python3}
# module -> pip name
declare -A need=([jax]=jax [flax]=flax [optax]=optax [orbax.checkpoint]=orbax-checkpoint
  [grain]=grain [ml_collections]=ml-collections [absl]=absl-py [sentencepiece]=sentencepiece
  [array_record]=array_record [tensorflow_datasets]=tensorflow-datasets [pytest]=pytest
  [zstandard]=zstandard [pyarrow]=pyarrow)
missing=()
for mod in "${!need[@]}"; do
  "$python" -c "import $mod" 2>/dev/null || missing+=("${need[$mod]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[gpu_bench.sh] installing: ${missing[*]}"
  if [ -n "$wheels" ]; then
    "$python" -m pip install -q --no-index --find-links "$wheels" "${missing[@]}"
  else
    "$python" -m pip install -q "${missing[@]}"
  fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$python" -m launch.gpu_bench --out "$out" "${tiny[@]}"
