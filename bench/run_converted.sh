#!/usr/bin/env bash
# Reproduce bench/results/converted_* (see bench/converted.md). Runs from the repository root.
#
# 1. converts the real weights in ../shared/models with `srzoo convert`
#    (each checked against its source framework) into a temporary folder, with
#    a manifest of format-onnx entries named <model>-onnx;
# 2. runs `srzoo bench` (matlab protocol, CPU) on them with SRZOO_REGISTRY set.
# Each image runs once, without warm-up (the CPU is 2 shared cores: VDSR alone is
# ~1.3 MFLOP per output pixel, minutes per scale on Set14); speeds are indicative.
# The RRDBNet models (23 and 6 blocks) run on Set5 only.
# `bench/run_converted.sh convert` stops after the conversions, `... bench` reuses
# them (same WORK folder).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results
mkdir -p "$out"
export SRZOO_CACHE_DIR="${SRZOO_CACHE_DIR:-$(mktemp -d)}"
export SRZOO_MIRROR="${SRZOO_MIRROR:-../shared/datasets/Set5,../shared/datasets/Set14}"
PY="${PYTHON:-python}"
S=../shared/models
work="${WORK:-$(mktemp -d)}"
man="$work/converted.toml"
step="${1:-all}"
conv() {  # conv NAME SOURCE [--scale S]: one ONNX file per source file and scale
  local name=$1 src=$2; shift 2
  local file="$work/$name-$(basename "$src")${2:+-x$2}.onnx"
  "$PY" -m srzoo convert "$src" -o "$file" --manifest "$man" --name "$name-onnx" "$@" \
    | tee -a "$out/converted_log.txt"
}
if [ "$step" != bench ]; then
rm -f "$man"
: > "$out/converted_log.txt"
conv srcnn $S/srcnn/3051crop_weight_200.h5
conv srcnn-915 $S/srcnn/m_model_adam_new30.h5
for s in 2 3 4; do conv vdsr $S/vdsr/model_epoch_50.pth --scale $s; done
for s in 2 3 4; do conv carn-m $S/carn/carn_m.pth --scale $s; done
conv rfdn $S/rfdn/RFDN_AIM.pth --range 255
conv srresnet $S/srgan/pre_generator.h5
conv srgan $S/srgan/gan_generator.h5
conv realesr-animevideov3 $S/esrgan/realesr-animevideov3.pth
for s in 2 3 4; do conv realesr-animevideov3-ncnn $S/esrgan-ncnn/realesr-animevideov3-x$s.param; done
conv realesrgan-x4plus-anime-ncnn $S/esrgan-ncnn/realesrgan-x4plus-anime.param
conv realesrgan-x4plus-ncnn $S/esrgan-ncnn/realesrgan-x4plus.param
fi
[ "$step" = convert ] && exit 0
export SRZOO_REGISTRY="$man"

b() {  # b OUTNAME BENCH-ARGS...
  local name=$1; shift
  "$PY" -m srzoo bench --backends cpu --protocol matlab --repeat 1 --warmup 0 "$@" \
    --json "$out/$name.json" --csv "$out/$name.csv" --markdown "$out/$name.md" -q
}
b converted_small --dataset set5,set14 --scales 2,3,4 \
  --models bicubic,srcnn-onnx,srcnn-915-onnx,carn-m-onnx,rfdn-onnx,srresnet-onnx,srgan-onnx,realesr-animevideov3-onnx,realesr-animevideov3-ncnn-onnx
b converted_vdsr --dataset set5,set14 --scales 2,3,4 --models vdsr-onnx
b converted_rrdb --dataset set5 --scales 4 --models realesrgan-x4plus-anime-ncnn-onnx,realesrgan-x4plus-ncnn-onnx
