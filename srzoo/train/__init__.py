"""Training compact super-resolution networks with PyTorch (``pip install 'srzoo[train]'``).

* :mod:`.data` -- LR/HR patches with the standard degradation (MATLAB bicubic).
* :mod:`.models` -- post-/pre-upsampling networks by name (:data:`ARCHS`).
* :mod:`.losses` -- L1, L2, MS-SSIM, L1 + MS-SSIM.
* :mod:`.trainer` -- seeded, checkpointed, resumable loop with validation PSNR.
* :mod:`.export` -- ONNX for cv2.dnn, checked against torch, and a manifest entry.

The built-in models (``srzoo/builtin/``) were made with ``srzoo train``; the
commands, seed and logs are in ``srzoo/train/builtin/``.

Layer: beside :mod:`srzoo.jobs` and :mod:`srzoo.evaluate`; may import
:mod:`srzoo.runtime` and everything below it, not its siblings or the CLI.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ModuleNotFoundError as e:  # pragma: no cover - depends on the install
    from srzoo.errors import SrzooError

    raise SrzooError("srzoo.train needs PyTorch: pip install 'srzoo[train]'") from e

from srzoo.train.export import export_onnx, manifest_entry, onnx_bytes
from srzoo.train.losses import LOSSES, ms_ssim_torch
from srzoo.train.models import ARCHS, ArchSpec, build_model, macs_per_lr_pixel
from srzoo.train.trainer import TrainConfig, TrainResult, load_checkpoint, train

__all__ = ["ARCHS", "ArchSpec", "LOSSES", "TrainConfig", "TrainResult", "build_model", "export_onnx",
           "load_checkpoint", "macs_per_lr_pixel", "manifest_entry", "ms_ssim_torch", "onnx_bytes",
           "train"]
