#!/usr/bin/env bash
# The batch-64 recipe against the batch-16 recipe at equal images seen: does a GPU-sized batch (with
# its learning rate scaled) cost quality?
#
#   OUT=runs/batch-quality bash benchmarks/batch_recipe_quality.sh
#   DATA=my_parts SPLIT= EVALUATOR=runs/my-evaluator OUT=... bash benchmarks/batch_recipe_quality.sh
#
# Trains photos-cpu-64 (batch 16, 8000 steps) and gpu-64 (batch 64, 2000 steps, learning rates x2,
# EMA over the same number of images) side by side on the same data and split, then evaluates both at
# half way (64000 images seen, before the guide: steps 4000 and 1000) and at the end (128000 images)
# with the same evaluator, samples and metrics. Each run folder keeps every checkpoint. Running the
# script again continues unfinished runs from their latest checkpoints and skips finished
# evaluations; each evaluation's figures are appended to $OUT/results.jsonl as soon as they exist.
# On a CPU set THREADS to half the cores (the two trainings run at once); on a GPU leave DEVICE=auto.
set -uo pipefail
OUT=${OUT:-runs/batch-quality}
DATA=${DATA:-demo}
SPLIT=${SPLIT-checkpoints/vise-parts/split.json}  # empty: each run makes its own split (seed 0)
EVALUATOR=${EVALUATOR:-checkpoints/vise-parts/evaluator}
METRICS=${METRICS:-cas,fid,prdc}
N_PER_CLASS=${N_PER_CLASS:-200}
THREADS=${THREADS:-1}
DEVICE=${DEVICE:-auto}
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
split_args=()
[ -n "$SPLIT" ] && split_args=(--split "$SPLIT")

train() {  # recipe run_name
    python -m gan_studio train --recipe "$1" --data "$DATA" --out "$OUT/$2" --device "$DEVICE" \
        --keep 1000 "${split_args[@]}" > "$OUT/train-$2.log" 2>&1
    echo "[$(date +%H:%M:%S)] train $2 rc=$?" >&2
}

evaluate() {  # run_name step label
    local ckpt; ckpt=$(printf "%s/%s/checkpoints/step_%07d" "$OUT" "$1" "$2")
    local report="$OUT/eval-$1-$3"
    [ -f "$report/metrics.json" ] && return 0
    [ -d "$ckpt" ] || { echo "no checkpoint $ckpt" >&2; return 1; }
    python -m gan_studio evaluate --ckpt "$ckpt" --evaluator "$EVALUATOR" --metrics "$METRICS" \
        --n-per-class "$N_PER_CLASS" --device "$DEVICE" --no-progress --out "$report" > "$report.log" 2>&1 || return 1
    python - "$1" "$2" "$3" "$report/metrics.json" >> "$OUT/results.jsonl" <<'PY'
import json, sys
run, step, label, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
m = json.load(open(path))
print(json.dumps({"run": run, "step": step, "at": label, "metrics": m}))
PY
    echo "[$(date +%H:%M:%S)] evaluated $1 at $3 (step $2)" >&2
}

train photos-cpu-64 b16 &
train gpu-64 b64 &
wait
evaluate b16 4000 half; evaluate b64 1000 half
evaluate b16 8000 end; evaluate b64 2000 end
echo "done: $OUT/results.jsonl" >&2
