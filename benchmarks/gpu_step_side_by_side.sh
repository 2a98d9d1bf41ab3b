#!/usr/bin/env bash
# The training step on one GPU, side by side: the official FastGAN networks against ours at 256 px,
# batch 8, ngf = ndf = 64, and our recipes' steps at 64/128/256 px, batch 16 and 64, bf16 and fp32,
# eager and compiled (--compile on), each with the GPU's mean utilisation while it ran.
#
#   OFFICIAL=/path/to/FastGAN-pytorch OUT=/tmp/out bash benchmarks/gpu_step_side_by_side.sh
#
# GPU time is short, so every measurement is appended to $OUT/results.jsonl as soon as it exists
# (one JSON object per line, with "bench" naming the script and "gpu_util_mean" added), each under
# its own time limit, the cheap and decisive ones first; a failure is recorded and the rest goes on.
# The official code (GPL-3.0) is not part of this project: pass a clone of it (a folder the device
# machine can read, e.g. carried with the working tree); without one its rows are skipped.
set -uo pipefail
OUT=${OUT:-runs/gpu-step}
OFFICIAL=${OFFICIAL:-}
STEPS=${STEPS:-30}
LIMIT=${LIMIT:-240}  # seconds per measurement (a compile included)
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the benchmarks import gan_studio from here

measure() {  # name command... : run it, sample the GPU's utilisation, append its JSON line
    local name=$1; shift
    local util="$OUT/util-$name.csv" log="$OUT/log-$name.txt"
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 200 > "$util" 2>/dev/null &
    local sampler=$!
    local t0; t0=$(date +%s.%N)
    timeout "$LIMIT" "$@" > "$log" 2>&1
    local rc=$?
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
    python - "$name" "$rc" "$log" "$util" "$t0" >> "$RESULTS" <<'PY'
import json, sys, time
name, rc, log, util, t0 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
record = {"bench": name, "rc": rc, "wall_s": round(time.time() - t0, 1)}
for line in open(log, errors="replace"):  # the script's own JSON result: its last JSON line
    line = line.strip()
    if line.startswith("{") and line.endswith("}"):
        try:
            record["result"] = json.loads(line)
        except ValueError:
            pass
samples = []
for line in open(util, errors="replace"):
    try:
        samples.append([float(x) for x in line.split(",")])
    except ValueError:
        pass
if samples:
    busy = [s[0] for s in samples]
    record["gpu_util_mean"] = round(sum(busy) / len(busy), 1)
    record["gpu_mem_used_mb_max"] = max(s[1] for s in samples)
if rc != 0 or "result" not in record:
    record["log_tail"] = open(log, errors="replace").read()[-1500:]
print(json.dumps(record))
PY
    echo "[$(date +%H:%M:%S)] $name rc=$rc" >&2
}

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python -c "import torch, json; print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda, 'gpu': torch.cuda.get_device_name(0)}))" > "$OUT/env.json"

TT="python benchmarks/train_throughput.py --one --device cuda --steps $STEPS --warmup 3"
# 1. The anchor comparison: 256 px, batch 8, ngf = ndf = 64.
if [ -n "$OFFICIAL" ] && [ -f "$OFFICIAL/models.py" ]; then
    for precision in fp32 bf16; do
        measure "official-256-b8-$precision-mse" python benchmarks/anchor_fastgan_step.py --official-repo "$OFFICIAL" \
            --device cuda --precision "$precision" --recon mse --steps "$STEPS" --warmup 3
    done
fi
for precision in fp32 bf16; do
    measure "ours-256-b8-w64-$precision" $TT --res 256 --batch 8 --width 64 --d-widths fastgan --precision "$precision"
done
# 2. Our recipes' steps, eager and compiled side by side (compile_step.py alternates the two).
for recipe in photos-cpu-64 gpu-128 gpu-256; do
    for batch in 16 64; do
        for precision in bf16 fp32; do
            measure "compile-$recipe-b$batch-$precision" python benchmarks/compile_step.py --recipe "$recipe" \
                --batch "$batch" --precision "$precision" --device cuda --steps "$STEPS" --warmup 3
        done
    done
done
# 3. The anchor comparison with both sides compiled, and the official networks with their default
#    reconstruction loss (LPIPS, random backbone).
measure "ours-256-b8-w64-bf16-compiled" $TT --res 256 --batch 8 --width 64 --d-widths fastgan --precision bf16 \
    --set compile=on
if [ -n "$OFFICIAL" ] && [ -f "$OFFICIAL/models.py" ]; then
    measure "official-256-b8-bf16-mse-compiled" python benchmarks/anchor_fastgan_step.py --official-repo "$OFFICIAL" \
        --device cuda --precision bf16 --recon mse --steps "$STEPS" --warmup 6 --compile
    measure "official-256-b8-fp32-lpips" python benchmarks/anchor_fastgan_step.py --official-repo "$OFFICIAL" \
        --device cuda --recon lpips --steps "$STEPS" --warmup 3
fi
echo "done: $RESULTS" >&2
