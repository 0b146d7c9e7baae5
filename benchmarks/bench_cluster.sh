#!/usr/bin/env bash
# Issue 12's measurement: X-Maps of N pairs of a stored dataset in-process, with --workers 1 and with --workers 2
# (one thread each), one after the other in one run, each from an empty occlusion cache and a copy of the same
# SQLite database (results precomputed: `xfv precompute --dataset DATASET --xmaps 0`); then the stored maps are
# compared (benchmarks/compare_maps.py). Load average is printed before and after each mode.
#   usage: benchmarks/bench_cluster.sh DATABASE.db DATASET N [MODEL] [WORK_DIR]
set -euo pipefail
database=$1 dataset=$2 pairs=$3 model=${4:-dlib} work=${5:-$(mktemp -d)}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
models_cache=${XFV_CACHE_DIR:-$HOME/.cache/xfv}/models  # converted weights are shared, occlusions are not
copies=()
for mode in inproc w1 w2; do
  mkdir -p "$work/cache-$mode" && ln -sfn "$models_cache" "$work/cache-$mode/models"
  cp "$database" "$work/$mode.db" && copies+=("$work/$mode.db")
  case $mode in inproc) extra=();; w1) extra=(--workers 1);; w2) extra=(--workers 2);; esac
  echo "== $mode $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  XFV_CACHE_DIR="$work/cache-$mode" xfv precompute --dataset "$dataset" --model "$model" --threads 1 \
    --xmaps "$pairs" --db "sqlite:///$work/$mode.db" "${extra[@]}" 2>&1 | grep -v "^\s*$"
  echo "   load after $(cut -d' ' -f1-3 /proc/loadavg)"
done
python "$(dirname "$0")/compare_maps.py" "${copies[@]}"
