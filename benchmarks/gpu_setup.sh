# Sourced by the GPU scripts (gpu_check.sh, gpu_parallel_cv.sh): the repository root as working folder,
# OUT, BUNDLE and PY, an offline environment, `stamp`, `capped`, and the bundle's wheels installed
# (SKIP_WHEELS=1: use PY's own packages, e.g. the CPU dry run's venv from gpu_image.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
BUNDLE=${BUNDLE:-.gpu}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1
export TOKENIZERS_PARALLELISM=false
start=$(date +%s)
stamp() { echo "=== $1 ($(($(date +%s) - start)) s)"; }

# capped SECONDS LOG CMD...: CMD under a time cap (0 = none), its output in LOG, on stdout without
# progress bars; a CV stopped at its cap keeps every finished split in its --json.
capped() {
    local secs=$1 log=$2
    shift 2
    { timeout -k 10 "$secs" "$@" 2>&1 || echo "=== exit $? (124 = stopped at its ${secs} s cap)"; } |
        tee "$log" | sed '/it\/s\]/d'
}

stamp setup
if [ -z "${SKIP_WHEELS:-}" ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$BUNDLE"/wheels/*.whl
    export PYTHONPATH=/tmp/site:$PWD/src
fi
