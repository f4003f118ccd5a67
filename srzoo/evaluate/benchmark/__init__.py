"""The benchmark harness behind ``srzoo bench`` and :func:`srzoo.bench`.

For every model x scale x backend x dataset it measures

* quality -- mean PSNR and SSIM over the images, under a named protocol;
* speed -- model load time, then per image ``warmup`` untimed and ``repeat``
  timed calls of the model alone (decoding, degradation and scoring are not
  timed): median and 95th percentile milliseconds per image, and output
  megapixels per second.

Protocols
---------
``matlab`` (default; the protocol of the SR literature, see REFERENCE.md):
    HR cropped to a multiple of the scale; LR = MATLAB-compatible bicubic
    :func:`srzoo.evaluate.metrics.imresize` with antialiasing; PSNR/SSIM on the Y of
    MATLAB ``rgb2ycbcr`` (one-channel files as they are), ``scale`` pixels
    shaved from every border. Under this protocol the literature's "Bicubic"
    baseline is ``imresize(LR, scale)``, which is *not* the registry model
    ``bicubic`` (``cv2.INTER_CUBIC``, a = -0.75, what ``srzoo.upscale`` does).
    Both are reported: whenever ``bicubic`` is benchmarked under ``matlab``,
    the harness adds a row for the pseudo-model ``bicubic-matlab`` (backend
    ``numpy``: MATLAB ``imresize`` upsampling, the number to compare with
    published tables). ``bicubic-matlab`` may also be asked for by name.
``opencv`` (what OpenCV's ``dnn_superres_benchmark_quality`` sample does):
    HR cropped to a multiple of the scale, loaded as 3-channel BGR; LR =
    ``cv2.resize(HR, 1/scale)`` with its default ``INTER_LINEAR``; PSNR over
    all channels (``cv2.PSNR``) and SSIM averaged over channels, no shave.
    (OpenCV's quality module pads the SSIM window at the border; here the
    'valid' window is used in both protocols.)

Every result row carries the protocol name, and so does the report.

A one-channel image is fed to every model as 3-channel BGR (grey replicated)
and the output converted back with ``cv2.COLOR_BGR2GRAY`` before scoring, so
all models see the same input layout.
"""


from __future__ import annotations

from srzoo.evaluate.benchmark.protocols import (
                        DEFAULT_INTERPOLATION_SCALES,
                        IMAGE_SUFFIXES,
                        MATLAB_BICUBIC,
                        PROTOCOLS,
                        _degrade,
                        _load_images,
                        _MatlabBicubic,
                        _resolve_dataset,
                        _Sample,
                        _samples,
                        _score,
)
from srzoo.evaluate.benchmark.report import CSV_FIELDS, BenchReport, ProgressFn
from srzoo.evaluate.benchmark.runner import (
                        _cpu_name,
                        _percentile,
                        _plan,
                        _run_one,
                        _split,
                        bench,
                        machine_info,
                        parse_threads,
)

__all__ = ["bench", "BenchReport", "PROTOCOLS", "MATLAB_BICUBIC", "machine_info", "parse_threads"]
