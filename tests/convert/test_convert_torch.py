"""PyTorch checkpoints: the restricted unpickler, architecture detection and
converted ONNX run by cv2.dnn against PyTorch modules written after the
upstream code (tests/torch_archs.py) with strictly loaded real weights.

Needs torch (the test extra does not install it; .ci/run does).
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from srzoo.convert import arch as archs  # noqa: E402
from srzoo.convert import converter_for, torchload  # noqa: E402
from srzoo.convert.files import convert_file  # noqa: E402

import torch_archs as ta  # noqa: E402
from cvref import run_onnx  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def image_probe(shared: Path, size: int = 40, channels: int = 3, name: str = "butterfly.png") -> np.ndarray:
    """An NCHW RGB (or Y) crop of a real Set5 image in [0,1]."""
    img = cv2.imread(str(shared / "datasets" / "Set5" / name))[60:60 + size, 80:80 + size]
    if channels == 1:
        y = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)[:, :, 0]
        return (y.astype(np.float32) / 255)[None, None]
    return (img[:, :, ::-1].astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()


def torch_out(module, x, *args):
    with torch.no_grad():
        return module.eval()(torch.from_numpy(x), *args).numpy()


def convert(path: Path, **options) -> "object":
    return converter_for("pytorch-pth").convert(path, None, options)


# ---------------------------------------------------------------- restricted unpickler
@pytest.mark.parametrize("rel", ["carn/carn_m.pth", "rfdn/RFDN_AIM.pth", "esrgan/realesr-animevideov3.pth"])
def test_restricted_loader_reads_what_torch_reads(shared_dir, rel):
    ours = torchload.load_state_dict(shared_dir / "models" / rel)
    ref = torch.load(shared_dir / "models" / rel, map_location="cpu", weights_only=True)
    ref = ref.get("params", ref)
    assert list(ours) == list(ref)
    for k, v in ref.items():
        assert ours[k].dtype == np.float32 and np.array_equal(ours[k], v.numpy()), k


def test_vdsr_whole_module_loads_without_running_its_classes(shared_dir):
    sd = torchload.load_state_dict(shared_dir / "models" / "vdsr" / "model_epoch_50.pth")
    assert "vdsr" not in sys.modules  # its module was never imported
    assert sorted(sd)[:2] == ["input.weight", "output.weight"]
    assert len(sd) == 20 and sd["residual_layer.17.conv.weight"].shape == (64, 64, 3, 3)
    m = ta.VDSR()
    m.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)


def _evil_reduce(callable_path: tuple[str, str], arg: str) -> bytes:
    """A protocol-2 pickle of {'w': CALLABLE(arg)}: what a crafted checkpoint does."""
    mod, name = callable_path
    return (b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01c" + mod.encode() + b"\n" + name.encode() + b"\nq\x02X"
            + len(arg).to_bytes(4, "little") + arg.encode() + b"q\x03\x85q\x04Rq\x05s.")


EVIL = [
    (("os", "system"), "touch {marker}"),
    (("posix", "system"), "touch {marker}"),
    (("builtins", "eval"), "open({marker!r}, 'w')"),
    (("builtins", "exec"), "open({marker!r}, 'w')"),
    (("builtins", "getattr"), "x"),
    (("builtins", "__import__"), "os"),
    (("subprocess", "Popen"), "touch {marker}"),
]


@pytest.mark.parametrize("layout", ["zip", "legacy"])
@pytest.mark.parametrize("target,arg", EVIL, ids=[".".join(t) for t, _ in EVIL])
def test_crafted_pickle_is_refused_and_nothing_runs(tmp_path, layout, target, arg):
    marker = tmp_path / "pwned"
    payload = _evil_reduce(target, arg.format(marker=str(marker)))
    assert pickle.loads is not None  # (the payload is never given to pickle itself)
    evil = tmp_path / "evil.pth"
    if layout == "zip":
        with zipfile.ZipFile(evil, "w") as z:
            z.writestr("evil/data.pkl", payload)
            z.writestr("evil/version", "3\n")
    else:
        head = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {}))
        evil.write_bytes(head + payload)
    with pytest.raises(torchload.UnsafeCheckpoint) as e:
        torchload.load(evil)
    msg = str(e.value)
    assert "\n" not in msg and f"{target[0]}.{target[1]}" in msg and str(evil) in msg
    assert not marker.exists()
    if layout != "zip" or target != ("os", "system"):
        return
    # the CLI: one line, exit 1, no output file, still nothing ran
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "srzoo", "convert", str(evil), "-o", str(tmp_path / "o.onnx")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "refused" in r.stderr and "Traceback" not in r.stderr
    assert not marker.exists() and not (tmp_path / "o.onnx").exists()


def test_not_a_checkpoint_is_one_clear_error(tmp_path):
    bad = tmp_path / "x.pth"
    bad.write_bytes(b"\x80\x02K\x05.")  # a pickle of 5, not the torch magic
    with pytest.raises(torchload.CheckpointError, match="not a PyTorch checkpoint"):
        torchload.load(bad)


# ---------------------------------------------------------------- real weights vs PyTorch
def test_vdsr_real_weights(shared_dir, tmp_path):
    path = shared_dir / "models" / "vdsr" / "model_epoch_50.pth"
    conv = convert(path, scale=3)
    assert conv.info["arch"] == "vdsr" and conv.info["color"] == "y" and conv.info["pre_upsample"] == "bicubic-matlab"
    assert conv.probe_error <= 1e-3 and conv.checked_against.startswith("torch")
    m = ta.VDSR()
    m.load_state_dict({k: torch.from_numpy(v) for k, v in torchload.load_state_dict(path).items()})
    x = image_probe(shared_dir, 48, 1)
    got = run_onnx(conv.onnx, x, tmp_path)
    assert np.abs(got - torch_out(m, x)).max() <= 1e-3


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_carn_m_one_checkpoint_three_scales(shared_dir, tmp_path, scale):
    path = shared_dir / "models" / "carn" / "carn_m.pth"
    conv = convert(path, scale=scale)
    assert conv.info["arch"] == "carn-m" and conv.info["scale"] == scale and conv.info["groups"] == 4
    m = ta.CARNM()
    m.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    x = image_probe(shared_dir, 32)
    got = run_onnx(conv.onnx, x, tmp_path)
    assert got.shape == (1, 3, 32 * scale, 32 * scale)
    assert np.abs(got - torch_out(m, x, scale)).max() <= 1e-3


def test_rfdn_real_weights(shared_dir, tmp_path):
    path = shared_dir / "models" / "rfdn" / "RFDN_AIM.pth"
    conv = convert(path)
    assert (conv.info["arch"], conv.info["scale"], conv.info["blocks"]) == ("rfdn", 4, 4)
    m = ta.RFDN()
    m.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    x = image_probe(shared_dir, 36)
    assert np.abs(run_onnx(conv.onnx, x, tmp_path) - torch_out(m, x)).max() <= 1e-3


def test_srvgg_real_weights(shared_dir, tmp_path):
    path = shared_dir / "models" / "esrgan" / "realesr-animevideov3.pth"
    conv = convert(path)
    assert (conv.info["arch"], conv.info["scale"], conv.info["convs"]) == ("srvgg", 4, 18)
    m = ta.SRVGGNetCompact(num_conv=16)
    m.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["params"], strict=True)
    x = image_probe(shared_dir, 32)
    assert np.abs(run_onnx(conv.onnx, x, tmp_path) - torch_out(m, x)).max() <= 1e-3


# ---------------------------------------------------------------- RRDBNet (small random, both layouts)
@pytest.mark.parametrize("scale,layout,legacy", [(4, "new", False), (4, "old", True), (2, "new", True), (1, "new", False)])
def test_rrdbnet_layouts_and_pixel_unshuffle(tmp_path, shared_dir, scale, layout, legacy):
    torch.manual_seed(scale)
    m = ta.RRDBNet(scale=scale, nf=8, nb=2, gc=4)
    sd = m.state_dict()
    if layout == "old":
        sd = ta.old_esrgan_keys(sd)
    path = tmp_path / "weights.pth"
    torch.save({"params_ema": sd} if layout == "new" else sd, path, _use_new_zipfile_serialization=not legacy)
    conv = convert(path)
    assert conv.info["arch"] == "rrdbnet" and conv.info["scale"] == scale and conv.info["blocks"] == 2
    assert conv.info["layout"] == layout and conv.info["unshuffle"] == {4: 1, 2: 2, 1: 4}[scale]
    x = image_probe(shared_dir, 32)
    got = run_onnx(conv.onnx, x, tmp_path)
    assert got.shape == (1, 3, 32 * scale, 32 * scale)
    assert np.abs(got - torch_out(m, x)).max() <= 1e-3


def test_architecture_comes_from_the_weights_not_the_name(shared_dir, tmp_path):
    fake = tmp_path / "RFDN_x4.pth"  # CARN-M weights under RFDN's name
    shutil.copy(shared_dir / "models" / "carn" / "carn_m.pth", fake)
    assert archs.detect(torchload.load_state_dict(fake)).name == "carn-m"


def test_unknown_state_dict_and_wrong_arch_are_clear_errors(tmp_path):
    from srzoo import SrzooError

    p = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(4, 3, 3, 3)}, p)
    with pytest.raises(SrzooError, match="not a known architecture"):
        convert(p)
    with pytest.raises(SrzooError, match="architecture 'rfdn'"):
        archs.detect(torchload.load_state_dict(p), arch="rfdn")


def test_conversion_is_deterministic(shared_dir, tmp_path):
    src = shared_dir / "models" / "carn" / "carn_m.pth"
    a = convert_file(src, tmp_path / "a.onnx", scale=2)
    b = convert_file(src, tmp_path / "b.onnx", scale=2)
    assert a.sha256 == b.sha256 and (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_numpy_reference_without_torch_agrees(shared_dir):
    """Without PyTorch the converter checks against srzoo's numpy reference: same verdict."""
    from srzoo.convert.check import convert_arch
    from srzoo.convert.reference import NumpyOps

    sd = torchload.load_state_dict(shared_dir / "models" / "rfdn" / "RFDN_AIM.pth")
    a = archs.detect(sd)
    conv = convert_arch(sd, a, "rfdn", ops=NumpyOps())
    assert conv.probe_error <= 1e-3 and conv.checked_against.startswith("numpy reference")
