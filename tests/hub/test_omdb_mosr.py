"""A MoSR record of the OpenModelDB catalogue end to end: listed as runnable, converted
from the .pth without PyTorch in the graph path, upscaled on each engine, equal to
spandrel's network (the pinned revision's 4x-mssim-mosr-pretrain has only a .pth; the
other four also publish an ONNX, one of them for a fixed 256x256 input)."""

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


@pytest.mark.parametrize("backend", ["onnxruntime:cpu", "openvino:cpu", "opencv:cpu"])
def test_mosr_record_matches_spandrel_on_each_engine(omdb, shared_dir, srzoo_env, backend):  # noqa: F811
    """A 2x MoSR .pth with the DySample upsampler (random weights, saved by torch) on a 23x31
    crop: equal to spandrel's MoSR to one grey level on ONNX Runtime and OpenVINO; cv2.dnn
    (OpenCV 5) too, and where its importer has no GridSample (4.x) one line naming the others."""
    torch = pytest.importorskip("torch")
    if backend.startswith("openvino"):
        pytest.importorskip("openvino")
    from test_arch_mosr import mosr_class, randomise

    net = randomise(mosr_class()(upscale=2, n_block=2, dim=16, upsampler="dys"), 5)
    with torch.no_grad():  # an output in about [0.2, 0.8]: a small end conv around mid-grey
        net.upsampler.end_conv.weight.mul_(0.05)
        net.upsampler.end_conv.bias.fill_(0.5)
    f = omdb.folder / "2x-mosr-test.pth"
    torch.save(net.state_dict(), f)
    data = f.read_bytes()
    omdb({"2x-srzoo-test-mosr": record(omdb.records["1x-BroadcastToStudio-SPAN"], "pth", len(data),
                                       hashlib.sha256(data).hexdigest(), ["https://example.org/2x-mosr-test.pth"],
                                       scale=2, size=None, architecture="mosr")})
    rows = {r["name"]: r for r in json.loads(run_json_list())}
    assert rows["omdb:2x-srzoo-test-mosr"]["runnable"] == "yes"
    img = cv2.imread(str(shared_dir / "datasets" / "Set5" / "butterfly.png"))[80:103, 40:71]  # 23x31: odd
    try:
        out = srzoo.upscale(img, "omdb:2x-srzoo-test-mosr", 2, backend=backend)
    except srzoo.SrzooError as e:
        assert backend == "opencv:cpu" and cv2.__version__.startswith("4.")
        assert "\n" not in str(e) and "onnxruntime:cpu" in str(e)
        return
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1), np.float32)[None] / 255)
        ref = net(x)[0].numpy()
    assert 0.0 < ref.min() and ref.max() < 1.0 and ref.std() > 0.03  # a real, unclipped signal
    ref = (ref * 255).round().astype(np.uint8).transpose(1, 2, 0)[:, :, ::-1]
    assert out.shape == (46, 62, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
    rec = json.loads(next((srzoo_env / "derived").glob("omdb-2x-srzoo-test-mosr-x2-*/record.json")).read_text())
    assert rec["info"]["arch"] == "mosr" and rec["info"]["upsampler"] == "dys"
