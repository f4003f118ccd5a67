#!/usr/bin/env bash
# Regenerate every committed precision/peers table (docs/precision.md) in one go:
#   bench/results/precision_set5.{md,json}    Set5 x4 PSNR and speed, fp32/bf16/fp16/int8
#   bench/results/peers_cpu.{md,json}          srzoo against ncnn, PyTorch, plain ONNX Runtime
#   bench/results/precision_memory.{md,json}   peak memory, fp32 against bf16/int8
# Run from anywhere; it works in the repository root. Needs srzoo[onnxruntime,openvino],
# torch (CPU) and ncnn in the Python given by $PYTHON (default: python), and ../shared
# beside the repository (models and the T91 calibration images are served from it
# through SRZOO_MIRROR; nothing is downloaded). A throw-away cache keeps the run
# independent of the user's cache: the first use of each reduced precision (the
# probe measurement, the int8 quantization) is part of the run.
#
# Measured: 39 min (precision_set5 303 s, peers_cpu 1576 s, precision_memory 463 s)
# on the 2-core development machine shared with other jobs (load average 11 at the
# start, 15-25 during peers; ncnn and PyTorch ran 10x slower than the issue's quiet
# numbers). Estimate for a quiet 2-core machine: 12-15 min, most of it the
# realesrgan-x4plus peers case (ncnn + PyTorch rounds, and its first int8 use,
# quantization included: 196 s under load).
# Each step prints its own wall time; the whole run's is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results
mkdir -p "$out"
SHARED="${SRZOO_SHARED:-../shared}"
export SRZOO_CACHE_DIR="${SRZOO_CACHE_DIR:-$(mktemp -d)}"
export SRZOO_MIRROR="$SHARED/models/opencv,$SHARED/models/carn,$SHARED/models/esrgan-ncnn,$SHARED/datasets/T91"
export SRZOO_MIRROR_ONLY=1
PY="${PYTHON:-python}"
THREADS="${THREADS:-2}"
start=$SECONDS
step() { echo "== $1: $(( SECONDS - t ))s" >&2; }

# 1. Set5 x4 (MATLAB protocol): PSNR and ms/img of each precision on both CPU engines
t=$SECONDS
"$PY" -m srzoo bench --models default,carn-m,espcn,fsrcnn --scales 4 \
  --backends openvino:cpu,onnxruntime:cpu --precisions fp32,bf16,fp16,int8 \
  --dataset "$SHARED/datasets/Set5" --threads "$THREADS" --repeat 3 \
  --json "$out/precision_set5.json" --markdown "$out/precision_set5.md" -q
step "precision_set5"

# 2. the peers, alternated in one process (ncnn, PyTorch fp32, plain ONNX Runtime, dnn_superres,
#    srzoo per backend and precision, srzoo auto)
t=$SECONDS
"$PY" bench/peers.py --threads "$THREADS" --precisions fp32,bf16,fp16,int8 --out "$out/peers_cpu"
step "peers_cpu"

# 3. peak memory, one fresh process per row
t=$SECONDS
"$PY" bench/precision_memory.py --precisions fp32,bf16,int8 --out "$out/precision_memory"
step "precision_memory"

echo "== all tables: $(( SECONDS - start ))s (load average now: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
