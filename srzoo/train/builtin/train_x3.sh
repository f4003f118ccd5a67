#!/bin/sh
# The command that made srzoo/builtin/srzoo_x3.onnx (run from the repository root;
# 'srzoo' is this checkout's CLI). Its console output is in train_x3.log, the
# settings and per-epoch history in srzoo_x3.onnx.log.json, the manifest entry it
# wrote in srzoo_x3.onnx.toml (copied into registry/builtin.toml).
exec srzoo train --scale 3 --data ../shared/datasets/T91 ../shared/datasets/BSD68 \
  --arch espcn-res --loss l1 --epochs 6 --steps 300 --batch 16 --patch 40 \
  --lr 1e-3 --seed 0 --val-count 4 --threads 1 --name default --bundled --license Apache-2.0 \
  --checkpoint build/train/x3.ckpt -o srzoo/builtin/srzoo_x3.onnx "$@"
