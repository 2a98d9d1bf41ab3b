#!/usr/bin/env bash
# The CPU run behind BENCHMARKS.md's shipped checkpoint and the earlier fixed-budget augmentation bench
# (docs/experiments/2026-11-28-augmentation-fixed-budget-bench.md), on the 2-core machine.
#
#   WORK=/work/runs COIL=../shared/datasets/coil100_shapes20 bash benchmarks/cpu_pipeline.sh
#
# Three trainings share the two cores (one thread each): the 64 px demo GAN that gets shipped, and
# the few-shot 64 px GANs on the demo data (25 per class) and on COIL-100 (12 per class, split by
# pose). (The mode-seeking runs of docs/experiments/2026-11-28-mode-seeking.md are the same commands with other --mode-seeking weights.) Each is stopped by SIGTERM after its time budget (it saves, and run.json records the step
# reached, which `package` writes into the model card as `--steps N`). When a few-shot GAN stops,
# its own few-shot evaluator (the same images, so the filtering arm learns nothing the GAN did not
# see) and its augmentation benchmark run. Then the shipped GAN is evaluated and packaged.
set -uo pipefail
WORK=${WORK:-runs/cpu-pipeline}
COIL=${COIL:-../shared/datasets/coil100_shapes20}
# Time budgets of the bench in docs/experiments/, which shared the cores with other work: the demo GANs
# reached the steps written there (the model card and `reproducible` commands give them exactly).
# The shipped GAN trains a fixed 5000 + 5000 guided steps instead (1.4 h of step time here on two
# threads).
T_FEW=${T_FEW:-1100}
T_COIL=${T_COIL:-1100}
BENCH="--ratios 0.5,1.25 --seeds 2 --steps 400 --batch 32"
GS="python -m gan_studio"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$WORK/logs"
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$WORK/logs/pipeline.log"; }

train() {  # name seconds args...
    local name=$1 seconds=$2; shift 2
    log "train $name (${seconds}s)"
    timeout -s TERM "$seconds" $GS train --out "$WORK/$name" --steps 1000000 --res 64 --batch 16 \
        --sample-every 500 --ckpt-every 500 --no-progress "$@" > "$WORK/logs/train-$name.log" 2>&1
    log "train $name exit $?"
}

python benchmarks/coil100_split.py "$COIL" "$WORK/coil_split.json"
# `--data demo` reads the cached demo data: render it once, before three trainings want it at once.
python -c "from gan_studio.data.demo import ensure_demo_dataset; ensure_demo_dataset()"
(
    # The shipped run (run X, shipped in commit 4ab5766, 2026-11-30): the auxiliary-classifier loss, mode
    # seeking 0.3, per-class groups of 8 in each batch (D sees a class's spread) and the pose MMD
    # for 5000 steps; then a guide classifier (ResNet-18, another network than the evaluator)
    # trained on the same split, which G's loss uses on rotated fakes at weight 0.5 to step 7500
    # and 1.0 to 9500, capped at 0.8 confidence to step 10000. The evaluator trains for 3000 steps.
    log "train vise64 (5000 + 5000 guided steps)"
    EVERY="--sample-every 250 --ckpt-every 250 --keep 40 --no-progress"
    $GS train --data demo --out "$WORK/vise64" --res 64 --steps 5000 --batch 16 --ngf 24 --ndf 24 --class-loss 1.0 \
        --mode-seeking 0.3 --class-groups 8 --pose-mmd 1 $EVERY > "$WORK/logs/train-vise64.log" 2>&1
    $GS train-evaluator --data demo --split "$WORK/vise64/split.json" --arch resnet18 --stem-stride 2 --res 64 \
        --steps 1200 --batch 64 --lr 0.002 --seed 7 --out "$WORK/guide-vise64" --no-progress
    $GS train --out "$WORK/vise64" --resume --steps 7500 $EVERY --guide "$WORK/guide-vise64" --guide-weight 0.5 \
        --guide-augment color,translation,rotation >> "$WORK/logs/train-vise64.log" 2>&1
    $GS train --out "$WORK/vise64" --resume --steps 9500 $EVERY --guide-weight 1.0 >> "$WORK/logs/train-vise64.log" 2>&1
    $GS train --out "$WORK/vise64" --resume --steps 10000 $EVERY --guide-confidence 0.8 >> "$WORK/logs/train-vise64.log" 2>&1
    $GS train-evaluator --data demo --split "$WORK/vise64/split.json" --res 64 --steps 3000 --out "$WORK/eval-vise64" --no-progress
    $GS evaluate --ckpt "$WORK/vise64" --evaluator "$WORK/eval-vise64" --n-per-class 200 --out "$WORK/report-vise64" --no-progress
    $GS package --run "$WORK/vise64" --evaluator "$WORK/eval-vise64" --report "$WORK/report-vise64" --out "$WORK/vise-parts" \
        --command "python -m gan_studio train-evaluator --data demo --split RUN/split.json --res 64 --steps 3000 --out EVAL" \
        --command "python -m gan_studio evaluate --ckpt RUN --evaluator EVAL --n-per-class 200 --out REPORT"
) &
(
    train vise64-few "$T_FEW" --data demo --ngf 16 --ndf 16 --train-per-class 25
    $GS train-evaluator --data demo --split "$WORK/vise64-few/split.json" --train-per-class 25 --res 64 --stem-stride 2 --steps 600 \
        --out "$WORK/eval-vise64-few" --no-progress
    $GS augment-bench --ckpt "$WORK/vise64-few" --data demo --evaluator "$WORK/eval-vise64-few" \
        --out "$WORK/bench-vise" $BENCH --no-progress
) &
(
    train coil64-few "$T_COIL" --data "$COIL" --split "$WORK/coil_split.json" --ngf 16 --ndf 16 --train-per-class 12
    $GS train-evaluator --data "$COIL" --split "$WORK/coil_split.json" --train-per-class 12 --res 64 --stem-stride 2 --steps 600 \
        --out "$WORK/eval-coil64-few" --no-progress
    $GS augment-bench --ckpt "$WORK/coil64-few" --data "$COIL" --evaluator "$WORK/eval-coil64-few" \
        --out "$WORK/bench-coil" $BENCH --no-progress
) &
wait
log "done"
