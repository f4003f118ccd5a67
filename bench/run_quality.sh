#!/usr/bin/env bash
# Reproduce bench/results/ (see bench/quality.md). Runs from the repository root.
#
# Models come from the registry's upstream URLs unless SRZOO_MIRROR points at a
# copy (a local folder works), e.g. for the committed run:
#   SRZOO_MIRROR=../shared/models/opencv,../shared/datasets/Set5,../shared/datasets/Set14
# A throw-away cache keeps the run independent of the user's cache.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results
mkdir -p "$out"
export SRZOO_CACHE_DIR="${SRZOO_CACHE_DIR:-$(mktemp -d)}"
PY="${PYTHON:-python}"

# 1. every mirrored model at every scale it has, standard (matlab) protocol
"$PY" -m srzoo bench \
  --models espcn,fsrcnn,fsrcnn-small,lapsrn,nearest,bilinear,bicubic,lanczos \
  --scales 2,3,4,8 --backends cpu,cuda,opencl --dataset set5,set14 \
  --protocol matlab --repeat 3 --warmup 1 \
  --json "$out/quality_matlab.json" --csv "$out/quality_matlab.csv" \
  --markdown "$out/quality_matlab.md" --plot "$out/quality_matlab.png" -q

# 2. OpenCV's own protocol (cv2.resize degradation, all channels), x4 on Set14
#    with per-image numbers, to compare with OpenCV's published monarch.png table
"$PY" -m srzoo bench \
  --models espcn,fsrcnn,lapsrn,bicubic,nearest,lanczos --scales 4 --backends cpu \
  --dataset set14 --protocol opencv --repeat 3 --warmup 1 --per-image \
  --json "$out/quality_opencv_x4.json" --csv "$out/quality_opencv_x4.csv" \
  --markdown "$out/quality_opencv_x4.md" -q

# 3. single-threaded against OpenCV's default thread count, x4 on Set14
"$PY" -m srzoo bench \
  --models espcn,fsrcnn,fsrcnn-small,lapsrn,bicubic --scales 4 --backends cpu \
  --dataset set14 --threads 1,default --repeat 3 --warmup 1 \
  --json "$out/threads_x4.json" --csv "$out/threads_x4.csv" --markdown "$out/threads_x4.md" -q
