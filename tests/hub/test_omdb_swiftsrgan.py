"""A Swift-SRGAN record of the OpenModelDB catalogue end to end: a ``.pth.tar`` checkpoint
holding ``{"model": state_dict}`` (the layout of the authors' release files, which this
machine cannot reach) listed as runnable, converted without PyTorch in the graph path and
upscaled, equal to spandrel's generator to one grey level."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo
from test_omdb import folder_mirror, omdb, record, run_json_list  # noqa: F401  (fixtures)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "convert"))


@pytest.mark.parametrize("backend", ["onnxruntime:cpu", "opencv:cpu"])
def test_swiftsrgan_record_matches_spandrel(omdb, shared_dir, srzoo_env, backend):  # noqa: F811
    torch = pytest.importorskip("torch")
    from test_arch_swiftsrgan import generator

    net = generator("x2", 4)
    f = omdb.folder / "2x-srzoo-test-swift.pth"  # the cache's name for it: the URL's ends in .pth.tar
    torch.save({"model": net.state_dict()}, f)
    data = f.read_bytes()
    omdb({"2x-srzoo-test-swift": record(omdb.records["1x-BroadcastToStudio-SPAN"], "pth", len(data),
                                        hashlib.sha256(data).hexdigest(), ["https://example.org/swift_srgan_2x.pth.tar"],
                                        scale=2, size=["16nf", "2nb"], architecture="swift-srgan")})
    rows = {r["name"]: r for r in json.loads(run_json_list())}
    assert rows["omdb:2x-srzoo-test-swift"]["runnable"] == "yes"
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "butterfly.png"))[80:103, 40:71]  # 23x31
    out = srzoo.upscale(img, "omdb:2x-srzoo-test-swift", 2, backend=backend)
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1), np.float32)[None] / 255)
        ref = net(x)[0].numpy()
    assert 0.0 < ref.min() and ref.max() < 1.0 and ref.std() > 0.05  # (tanh + 1) / 2: never clipped
    ref = (ref * 255).round().astype(np.uint8).transpose(1, 2, 0)[:, :, ::-1]
    assert out.shape == (46, 62, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
