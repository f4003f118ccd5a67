"""PyTorch checkpoints (``.pth``) to ONNX, without PyTorch.

The file is read by :mod:`srzoo.convert.torchload` (restricted unpickler),
the architecture is detected from the state dict (:mod:`srzoo.convert.arch`),
the graph is emitted by :mod:`srzoo.convert.onnxbuild` and checked against
PyTorch when installed, else against the numpy reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from srzoo.convert import Conversion, register
from srzoo.convert import arch as archs
from srzoo.convert.check import convert_arch
from srzoo.convert.torchload import load_state_dict
from srzoo.hub.untrusted import guarded


class TorchToONNX:
    name = "pytorch-onnx"
    version = "3"  # 3: CARN-M and RFDN graphs that cv2.dnn 4.x imports (onnxbuild.Graph.cat, resize_bilinear_like)
    source_formats = frozenset({"pytorch-pth"})

    @guarded("PyTorch checkpoint")
    def inspect(self, source: Path, scale: int | None = None, arch: str | None = None) -> dict[str, Any]:
        sd = load_state_dict(source)
        a = archs.detect(sd, scale, arch)
        return {"format": "pytorch-pth", "arch": a.describe(), "scale": a.scale,
                "scales": list(a.scales) or [a.scale], "color": a.color, "pre_upsample": a.pre_upsample,
                "tensors": len(sd), "params": int(sum(v.size for v in sd.values()))}

    @guarded("PyTorch checkpoint")
    def convert(self, source: Path, entry: Any, options: dict[str, Any]) -> Conversion:
        sd = load_state_dict(source)
        scale = options.get("scale") or (entry.scale if entry is not None else None)
        a = archs.detect(sd, scale, options.get("arch"))
        # the value range is the checkpoint's, not the architecture's (RFDN_AIM: 255): recorded only
        return convert_arch(sd, a, str(source), tol=float(options.get("tolerance", 1e-3)),
                            info={"range": float(options.get("range", 1.0))})


CONVERTER = register(TorchToONNX())
