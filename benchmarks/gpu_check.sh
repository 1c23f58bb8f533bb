#!/usr/bin/env bash
# The GPU figures of issue #14 in one prepared run, on a machine with no network (README "GPU").
#
#   here:  .venv/bin/python benchmarks/gpu_bundle.py --pack .gpu     # 48 MiB, git-ignored
#   there: bash benchmarks/gpu_check.sh                               # with .gpu carried; results in $OUT
#
# 1. the summarizer's training throughput, our Trainer settings vs plain defaults and vs ours without
#    bf16 autocast (tokens/s, MFU);
# 2. sentiment, grouped 5-fold CV on the real Fine Food rows (sentiment_recipes.py):
#    first the `gpu` profile (2,000 steps, batches of 32), seed 42; then the `cpu` profile's recipes
#    `stars` and `last` (each also scored +thr) on the GPU with training seeds 42, 7 and 11
#    (comparable with the CPU runs of the README; RECIPES and SEEDS change them).
# THROUGHPUT_CAP, GPU_PROFILE_CAP and CPU_PROFILE_CAP (seconds, 0 = none) cap each part; the CV
# rewrites its --json after every split, so a part stopped at its cap keeps its finished splits.
# shellcheck source=benchmarks/gpu_setup.sh
source "$(dirname "$0")/gpu_setup.sh"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
"$PY" -c "import torch, transformers, pandas; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
'transformers', transformers.__version__, 'pandas', pandas.__version__)"

stamp unpack
"$PY" benchmarks/gpu_bundle.py --unpack "$BUNDLE" --models models

stamp throughput
# shellcheck disable=SC2086  # THROUGHPUT_VARIANTS and THROUGHPUT_ARGS are word lists
capped "${THROUGHPUT_CAP:-0}" "$OUT/throughput.log" "$PY" benchmarks/train_throughput.py --random-init \
    --variants ${THROUGHPUT_VARIANTS:-ours defaults ours-fp32} ${THROUGHPUT_ARGS:-} --json "$OUT/throughput.json"

CV=("$PY" benchmarks/sentiment_recipes.py --clean-rows "$BUNDLE/clean_rows.parquet" --folds 5)

# The issue's figures first (the gpu profile), then the cpu profile's recipes on the GPU.
stamp "sentiment gpu profile"
# shellcheck disable=SC2086  # CV_ARGS is a word list
capped "${GPU_PROFILE_CAP:-0}" "$OUT/cv_gpu_profile.log" "${CV[@]}" --recipes last --tag gpu-profile \
    --set train.profile=gpu ${CV_ARGS:-} --json "$OUT/cv_gpu_profile.json"

stamp "sentiment cpu profile on the GPU"
# shellcheck disable=SC2086  # RECIPES, SEEDS and CV_ARGS are word lists
capped "${CPU_PROFILE_CAP:-0}" "$OUT/cv_cpu_profile.log" "${CV[@]}" --recipes ${RECIPES:-stars last} \
    --tag gpu-cpuprofile --train-seeds ${SEEDS:-42 7 11} ${CV_ARGS:-} --json "$OUT/cv_cpu_profile.json"
stamp done
