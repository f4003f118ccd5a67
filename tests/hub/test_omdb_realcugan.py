"""A Real-CUGAN record of the OpenModelDB catalogue end to end (the catalogue's
``real-cugan`` and ``cugan`` ids): listed as runnable, converted from the .pth without
PyTorch in the graph path, upscaled on each engine, equal to spandrel's network."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

import spandrel_src
import srzoo
from test_omdb import folder_mirror, omdb, record, run_json_list  # noqa: F401  (fixtures)


@pytest.mark.parametrize("backend", ["onnxruntime:cpu", "openvino:cpu", "opencv:cpu"])
def test_cugan_record_matches_spandrel_on_each_engine(omdb, shared_dir, srzoo_env, backend):  # noqa: F811
    """A 2x Real-CUGAN "pro" .pth (random weights, saved by torch) as a ``cugan`` record on a
    23x31 crop (odd: the graph pads to even sides and crops): equal to spandrel's UpCunet2x
    to one grey level on ONNX Runtime, OpenVINO and cv2.dnn (OpenCV 5; 4.x: one line)."""
    torch = pytest.importorskip("torch")
    if backend.startswith("openvino"):
        pytest.importorskip("openvino")
    torch.manual_seed(4)
    net = spandrel_src.load("RealCUGAN/__arch/upcunet_v3.py")["UpCunet2x"](in_channels=3, out_channels=3,
                                                                            pro=True).eval()
    with torch.no_grad():  # an output in about [0.3, 0.6]: small last convs around mid-grey
        for bottom in (net.unet1.conv_bottom, net.unet2.conv_bottom):
            bottom.weight.mul_(0.1)
            bottom.bias.fill_(0.0)
        net.unet1.conv_bottom.bias.fill_(0.5)
    f = omdb.folder / "2x-cugan-test.pth"
    torch.save(net.state_dict(), f)
    data = f.read_bytes()
    omdb({"2x-srzoo-test-cugan": record(omdb.records["1x-BroadcastToStudio-SPAN"], "pth", len(data),
                                        hashlib.sha256(data).hexdigest(), ["https://example.org/2x-cugan-test.pth"],
                                        scale=2, size=None, architecture="cugan")})
    rows = {r["name"]: r for r in json.loads(run_json_list())}
    assert rows["omdb:2x-srzoo-test-cugan"]["runnable"] == "yes"
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "butterfly.png"))[80:103, 40:71]  # 23x31: odd
    try:
        out = srzoo.upscale(img, "omdb:2x-srzoo-test-cugan", 2, backend=backend)
    except srzoo.SrzooError as e:  # cv2.dnn 4.x cannot import the run-time padding: one line
        assert backend == "opencv:cpu" and cv2.__version__.startswith("4.")
        assert "\n" not in str(e) and "onnxruntime:cpu" in str(e)
        return
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1), np.float32)[None] / 255)
        ref = net(x)[0].numpy()
    assert 0.0 < ref.min() and ref.max() < 1.0 and ref.std() > 0.05  # a real, unclipped signal
    ref = (ref * 255).round().astype(np.uint8).transpose(1, 2, 0)[:, :, ::-1]
    assert out.shape == (46, 62, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
    rec = json.loads(next((srzoo_env / "derived").glob("omdb-2x-srzoo-test-cugan-x2-*/record.json")).read_text())
    assert rec["info"]["arch"] == "realcugan" and rec["info"]["pro"] is True
