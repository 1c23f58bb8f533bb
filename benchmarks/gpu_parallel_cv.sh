#!/usr/bin/env bash
# Grouped 5-fold CV of recipes for several training seeds, one process per (recipe, seed, fold), all at
# once on one GPU: at the cpu profile's sizes a training step is launch-bound (README "GPU check"),
# so parallel processes fill the GPU. Each writes its own --json; merge them with
#   python benchmarks/sentiment_recipes.py --from-json $OUT/cv_stars_*.json --runs stars@TAG@seed42 ...
#
#   there: RECIPES="stars last" SEEDS="42 7 11" bash benchmarks/gpu_parallel_cv.sh     # with .gpu carried
# shellcheck source=benchmarks/gpu_setup.sh
source "$(dirname "$0")/gpu_setup.sh"
export OMP_NUM_THREADS=1
[ -d models/multilingual-e5-small ] || "$PY" benchmarks/gpu_bundle.py --unpack "$BUNDLE" --models models

# Each training writes a resumable checkpoint (≈ 630 MB) every 25 steps, two kept: on disk, 30 writers
# at once made a save take 7-9 s (stop 34). Work on tmpfs when it has room; JOBS caps the runs at once.
if [ -z "${TMPDIR:-}" ] && [ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')" -gt $((48 * 1024 * 1024)) ] 2>/dev/null; then
    export TMPDIR=/dev/shm
fi
echo "work files under ${TMPDIR:-/tmp}, at most ${JOBS:=15} runs at once"
stamp "CV ${RECIPES:=stars}, seeds ${SEEDS:=42 7 11}, folds ${FOLDS:=fold0 fold1 fold2 fold3 fold4}"
runs=()
for recipe in $RECIPES; do
  for seed in $SEEDS; do
    for fold in $FOLDS; do
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
        json="$OUT/cv_${recipe}_seed${seed}_${fold}.json"
        rm -f "$json"
        runs+=("$json")
        # shellcheck disable=SC2086  # CV_ARGS is a word list
        timeout -k 10 "${CAP:-0}" "$PY" benchmarks/sentiment_recipes.py --clean-rows "$BUNDLE/clean_rows.parquet" \
            --folds 5 --splits "$fold" --recipes "$recipe" --tag "${TAG:-gpu-cpuprofile}" --train-seeds "$seed" \
            ${CV_ARGS:-} --json "$json" > "${json%.json}.log" 2>&1 &
    done
  done
done
wait
# A run that finished its split wrote its --json; the rest failed or were stopped at CAP.
failed=0
for json in "${runs[@]}"; do [ -s "$json" ] || failed=$((failed + 1)); done
grep -H "macro-F1 .* steps)" "$OUT"/cv_*.log | sed "s|^$OUT/||" || true
stamp "done, $failed of ${#runs[@]} runs failed or were capped"
