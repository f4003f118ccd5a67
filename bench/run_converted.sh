#!/usr/bin/env bash
# Reproduce bench/results/converted_* (see bench/converted.md). Runs from the repository root.
#
# 1. converts the real weights in ../shared/models with `srzoo convert`
#    (each checked against its source framework) into a temporary folder, with
#    a manifest of format-onnx entries named <model>-onnx;
# 2. runs `srzoo bench` (matlab protocol, CPU) on them with SRZOO_REGISTRY set.
# The RRDBNet models (23 and 6 blocks) are slow on a 2-core CPU: they run on
# Set5 only, once per image.
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
rm -f "$man"
conv() {  # conv NAME SOURCE [--scale S]: one ONNX file per source file and scale
  local name=$1 src=$2; shift 2
  local file="$work/$name-$(basename "$src")${2:+-x$2}.onnx"
  "$PY" -m srzoo convert "$src" -o "$file" --manifest "$man" --name "$name-onnx" "$@" \
    | tee -a "$out/converted_log.txt"
}
: > "$out/converted_log.txt"
conv srcnn $S/srcnn/3051crop_weight_200.h5
conv srcnn-915 $S/srcnn/m_model_adam_new30.h5
for s in 2 3 4; do conv vdsr $S/vdsr/model_epoch_50.pth --scale $s; done
for s in 2 3 4; do conv carn-m $S/carn/carn_m.pth --scale $s; done
conv rfdn $S/rfdn/RFDN_AIM.pth
conv srresnet $S/srgan/pre_generator.h5
conv srgan $S/srgan/gan_generator.h5
conv realesr-animevideov3 $S/esrgan/realesr-animevideov3.pth
for s in 2 3 4; do conv realesr-animevideov3-ncnn $S/esrgan-ncnn/realesr-animevideov3-x$s.param; done
conv realesrgan-x4plus-anime-ncnn $S/esrgan-ncnn/realesrgan-x4plus-anime.param
conv realesrgan-x4plus-ncnn $S/esrgan-ncnn/realesrgan-x4plus.param
export SRZOO_REGISTRY="$man"

"$PY" -m srzoo bench \
  --models bicubic,srcnn-onnx,srcnn-915-onnx,vdsr-onnx,carn-m-onnx,rfdn-onnx,srresnet-onnx,srgan-onnx,realesr-animevideov3-onnx,realesr-animevideov3-ncnn-onnx \
  --scales 2,3,4 --backends cpu --dataset set5,set14 --protocol matlab --repeat 3 --warmup 1 \
  --json "$out/converted_small.json" --csv "$out/converted_small.csv" --markdown "$out/converted_small.md" -q

"$PY" -m srzoo bench \
  --models realesrgan-x4plus-anime-ncnn-onnx,realesrgan-x4plus-ncnn-onnx \
  --scales 4 --backends cpu --dataset set5 --protocol matlab --repeat 1 --warmup 0 \
  --json "$out/converted_rrdb.json" --csv "$out/converted_rrdb.csv" --markdown "$out/converted_rrdb.md" -q
