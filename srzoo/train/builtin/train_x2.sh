#!/bin/sh
# The command that made srzoo/builtin/srzoo_x2.onnx (run from the repository root).
exec srzoo train --scale 2 --data ../shared/datasets/T91 ../shared/datasets/BSD68 \
  --downscales 1,0.8,0.6 --arch espcn-res --loss l1 --epochs 40 --steps 300 --batch 16 --patch 40 \
  --lr 1e-3 --seed 0 --val-count 4 --threads 1 --name default --bundled \
  --checkpoint build/train/x2.ckpt -o srzoo/builtin/srzoo_x2.onnx "$@"
