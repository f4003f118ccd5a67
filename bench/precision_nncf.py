#!/usr/bin/env python
"""OpenVINO's own quantizer (NNCF) on srzoo's models, against Set5 (why srzoo does not use it).

Usage: ``python bench/precision_nncf.py MODEL SCALE all|keep`` (``keep``: first and last
convolution left out, as srzoo.runtime.quantize does). Needs ``pip install nncf`` (not a
srzoo dependency). Calibrates on the same T91 network inputs as srzoo's int8
(:func:`srzoo.runtime.quantize.calibration_blobs`), quantizes with ``nncf.quantize``
(defaults), runs the result on openvino:cpu and prints the Set5 PSNR drop (Y, MATLAB
protocol) against fp32. Measured (nncf 3.4.0, OpenVINO 2026.4): built-in x4 ``all`` 1.94 dB
(srzoo's onnxruntime QDQ recipe: 0.02 dB); ESPCN x4 ``keep`` 0.12 dB; ESPCN/FSRCNN x4 ``all``
fail inside NNCF (``ValueError: cannot reshape array of size 256 into shape (16,1,1)``).

    SRZOO_CACHE_DIR=$(mktemp -d) SRZOO_MIRROR=../shared/models/opencv,../shared/datasets/T91 \\
        python bench/precision_nncf.py espcn 4 keep
"""
import glob
import math
import sys
import tempfile
import time
from pathlib import Path

import cv2
import nncf
import numpy as np
import openvino as ov

from srzoo.resample import imresize
from srzoo.runtime import quantize
from srzoo.runtime.engines import get_engine
from srzoo.runtime.engines.base import ResolvedBackend
from srzoo.runtime.pipeline import ModelPipeline
from srzoo.runtime.upscaler import Upscaler

name, s = sys.argv[1], int(sys.argv[2])
mode = sys.argv[3]
up = Upscaler(name, s, backend="openvino:cpu", threads=2)
runner = up.runner
files = quantize.calibration_files()
iname, blobs = quantize.calibration_blobs(up.entry, runner, files, 2)
model = ov.Core().read_model(str(runner.path))
kw = {}
if mode == "keep":
    convs = [op.get_friendly_name() for op in model.get_ordered_ops()
             if op.get_type_name() in ("Convolution", "ConvolutionBackpropData")]
    kw["ignored_scope"] = nncf.IgnoredScope(names=[convs[0], convs[-1]])
t = time.perf_counter()
q = nncf.quantize(model, nncf.Dataset(blobs), subset_size=len(blobs), **kw)
print("nncf s", round(time.perf_counter() - t, 1))
path = str(Path(tempfile.mkdtemp()) / "model.xml"); ov.save_model(q, path)
core = ov.Core()
cfg = {"INFERENCE_NUM_THREADS": 2, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
def y(a, sh):
    return cv2.cvtColor(a, cv2.COLOR_BGR2YCrCb)[sh:-sh, sh:-sh, 0].astype(np.float64)
eng = get_engine("openvino")
r8 = eng.load(up.entry, Path(path), ResolvedBackend("openvino", "cpu", precision="int8"), 2)
p8 = ModelPipeline(up.entry, r8, 2)
d = []
SET5 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "Set5"
for f in sorted(glob.glob(str(SET5 / "*.png"))):
    hr = cv2.imread(f)
    hr = hr[:hr.shape[0] // s * s, :hr.shape[1] // s * s]
    lr = np.clip(np.round(imresize(hr.astype(np.float64), 1/s)), 0, 255).astype(np.uint8)
    a = up(lr); b = p8.run(lr, (s,), tile=0)[s]
    pa = 10 * math.log10(255 ** 2 / np.mean((y(a, s) - y(hr, s)) ** 2))
    pb = 10 * math.log10(255 ** 2 / np.mean((y(b, s) - y(hr, s)) ** 2))
    d.append(pa - pb)
print(name, s, mode, "Set5 mean drop", round(float(np.mean(d)), 4), [round(x, 3) for x in d])
