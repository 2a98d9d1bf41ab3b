#!/usr/bin/env bash
# One prepared run that produces the shipped demo checkpoint and the augmentation benchmarks.
#
#   WORK=runs/pipeline COIL=../shared/datasets/coil100_shapes20 bash benchmarks/gpu_pipeline.sh
#
# Phases run concurrently where they are independent (one GPU is far from saturated by these small
# models). Every training is stopped cleanly by SIGTERM after its time budget (it saves a checkpoint
# and the run records the steps it reached), so the whole pipeline fits a fixed wall-clock budget;
# the model card and BENCHMARKS.md report the steps actually trained, which reproduce the result
# with `--steps N`. Every phase has a hard time limit and everything that succeeded is kept even if a
# later phase fails. Copy results out of WORK as soon as they exist when the machine is leased by the
# minute (a first attempt on a leased GPU lost everything by tarring only at the very end).
set -uo pipefail
WORK=${WORK:-runs/pipeline}
COIL=${COIL:-../shared/datasets/coil100_shapes20}
T_SHIP=${T_SHIP:-300}        # seconds for the 128 px demo GAN that gets shipped
T_FEW=${T_FEW:-200}          # seconds for each few-shot 64 px GAN (demo, COIL)
T_BENCH=${T_BENCH:-260}      # seconds for each augmentation benchmark
EVAL_STEPS=${EVAL_STEPS:-3000}
BENCH_STEPS=${BENCH_STEPS:-1000}
BENCH_SEEDS=${BENCH_SEEDS:-3}
BENCH_RATIOS=${BENCH_RATIOS:-0.25,0.75,1.25}
FEW_DEMO=${FEW_DEMO:-25}     # real images per class in the few-shot benchmarks
FEW_COIL=${FEW_COIL:-12}
WIDTH=${WIDTH:-32}
BATCH=${BATCH:-32}
WORKERS=${WORKERS:-8}
GS="python -m gan_studio"
mkdir -p "$WORK/logs"
log() { echo "[$(date +%H:%M:%S)] $*"; }

log "demo data"
timeout "${T_DATA:-90}" $GS demo-data "$WORK/vise-parts" --per-class "${PER_CLASS:-200}" --size 128 --seed 0 --workers "$WORKERS" > "$WORK/logs/demo-data.log" 2>&1 || log "demo-data FAILED"
python benchmarks/coil100_split.py "$COIL" "$WORK/coil_split.json" > "$WORK/logs/coil-split.log" 2>&1 || log "coil split FAILED"

train() {  # name seconds args...
    local name=$1 seconds=$2; shift 2
    log "train $name (${seconds}s)"
    timeout -s TERM "$seconds" $GS train --out "$WORK/$name" --steps 1000000 --batch "$BATCH" --ngf "$WIDTH" --ndf "$WIDTH" \
        --sample-every 1000 --ckpt-every 1000 --no-progress "$@" > "$WORK/logs/train-$name.log" 2>&1
    log "train $name exit $?"
}
evaluator() {  # name args...
    local name=$1; shift
    log "evaluator $name"
    timeout "${T_EVAL:-120}" $GS train-evaluator --out "$WORK/$name" --steps "$EVAL_STEPS" --no-progress "$@" > "$WORK/logs/$name.log" 2>&1
    log "evaluator $name exit $?"
}

train vise128 "$T_SHIP" --data "$WORK/vise-parts" --res 128 &
P_SHIP=$!
train vise64-few "$T_FEW" --data "$WORK/vise-parts" --res 64 --train-per-class "$FEW_DEMO" &
P_FEW=$!
train coil64-few "$T_FEW" --data "$COIL" --split "$WORK/coil_split.json" --res 64 --train-per-class "$FEW_COIL" &
P_COIL=$!
(
    evaluator eval-vise128 --data "$WORK/vise-parts" --res 128
    evaluator eval-vise64 --data "$WORK/vise-parts" --res 64
    evaluator eval-coil64 --data "$COIL" --split "$WORK/coil_split.json" --res 64
) &
P_EVAL=$!

wait $P_FEW $P_COIL $P_EVAL
bench() {  # name run evaluator data few args...
    local name=$1 run=$2 eval=$3 data=$4 few=$5; shift 5
    log "bench $name (${T_BENCH}s)"
    timeout -s TERM "$T_BENCH" $GS augment-bench --ckpt "$WORK/$run" --data "$data" --evaluator "$WORK/$eval" \
        --out "$WORK/$name" --ratios "$BENCH_RATIOS" --seeds "$BENCH_SEEDS" --train-per-class "$few" \
        --steps "$BENCH_STEPS" --no-progress "$@" > "$WORK/logs/$name.log" 2>&1
    log "bench $name exit $?"
}
bench bench-vise vise64-few eval-vise64 "$WORK/vise-parts" "$FEW_DEMO" &
P_B1=$!
bench bench-coil coil64-few eval-coil64 "$COIL" "$FEW_COIL" &
P_B2=$!

wait $P_SHIP
log "evaluate vise128"
timeout "${T_REPORT:-120}" $GS evaluate --ckpt "$WORK/vise128" --evaluator "$WORK/eval-vise128" --n-per-class 200 --out "$WORK/report-vise128" \
    --no-progress > "$WORK/logs/evaluate-vise128.log" 2>&1 || log "evaluate FAILED"
STEP=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['step'])" "$WORK/vise128/status.json" 2>/dev/null || echo '?')
timeout 90 $GS package --run "$WORK/vise128" --evaluator "$WORK/eval-vise128" --report "$WORK/report-vise128" --out "$WORK/vise-parts-package" \
    --command "python -m gan_studio demo-data VISE --per-class 200 --size 128 --seed 0" \
    --command "python -m gan_studio train-evaluator --data VISE --out EVAL --res 128 --steps $EVAL_STEPS" \
    --command "python -m gan_studio evaluate --ckpt RUN --evaluator EVAL --n-per-class 200 --out REPORT" \
    > "$WORK/logs/package.log" 2>&1 || log "package FAILED"
log "vise128 reached step $STEP"
wait $P_B1 $P_B2
log "done"
