#!/usr/bin/env bash
# The GPU figures of issue #14 in one prepared run, on a machine with no network (README "GPU").
#
#   here:  .venv/bin/python benchmarks/gpu_bundle.py --pack .gpu     # 48 MiB, git-ignored
#   there: bash benchmarks/gpu_check.sh                               # with .gpu carried; results in $OUT
#
# 1. the summarizer's training throughput, our Trainer settings vs plain defaults (tokens/s, MFU);
# 2. sentiment, grouped 5-fold CV on the real Fine Food rows (sentiment_recipes.py):
#    the `cpu` profile's recipes `last` and `stars` (each also scored +thr) on the GPU with
#    training seeds 42, 7 and 11 (comparable with the CPU runs of the README; RECIPES and SEEDS
#    change them), then the `gpu` profile (2,000 steps, batches of 32), seed 42.
# The CV rewrites its --json after every split, so a run stopped at the call's limit keeps its part.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
BUNDLE=${BUNDLE:-.gpu}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1
export TOKENIZERS_PARALLELISM=false
start=$(date +%s)
stamp() { echo "=== $1 ($(($(date +%s) - start)) s)"; }

stamp setup
if [ -z "${SKIP_WHEELS:-}" ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$BUNDLE"/wheels/*.whl
    export PYTHONPATH=/tmp/site:$PWD/src
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
"$PY" -c "import torch, transformers, pandas; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
'transformers', transformers.__version__, 'pandas', pandas.__version__)"

stamp unpack
"$PY" benchmarks/gpu_bundle.py --unpack "$BUNDLE" --models models

stamp throughput
"$PY" benchmarks/train_throughput.py --random-init ${THROUGHPUT_ARGS:-} --json "$OUT/throughput.json" 2>&1 |
    sed '/it\/s\]/d' | tee "$OUT/throughput.log"

CV=("$PY" benchmarks/sentiment_recipes.py --clean-rows "$BUNDLE/clean_rows.parquet" --folds 5)
stamp "sentiment cpu profile on the GPU"
# shellcheck disable=SC2086  # RECIPES and SEEDS are word lists
"${CV[@]}" --recipes ${RECIPES:-last stars} --tag gpu-cpuprofile --train-seeds ${SEEDS:-42 7 11} ${CV_ARGS:-} --json "$OUT/cv_cpu_profile.json" 2>&1 | tee "$OUT/cv_cpu_profile.log" |
    sed '/it\/s\]/d'

stamp "sentiment gpu profile"
"${CV[@]}" --recipes last --tag gpu-profile --set train.profile=gpu ${CV_ARGS:-} --json "$OUT/cv_gpu_profile.json" 2>&1 |
    tee "$OUT/cv_gpu_profile.log" | sed '/it\/s\]/d'
stamp done
