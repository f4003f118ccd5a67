"""srzoo.train: seeded determinism, resume == uninterrupted, ONNX == torch in cv2.dnn,
the bicubic skip, and the `srzoo train` CLI. Tiny runs (a few steps on a few patches).
Needs PyTorch (the CI installs torch==2.13.0 for these)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from srzoo.cli import main  # noqa: E402
from srzoo.evaluate.metrics import imresize  # noqa: E402
from srzoo.train import TrainConfig, build_model, export_onnx, onnx_bytes, train  # noqa: E402
from srzoo.train.models import bicubic_phase_kernels  # noqa: E402


@pytest.fixture(scope="module")
def data(shared_dir: Path) -> list[str]:
    t91 = shared_dir / "datasets" / "T91"
    return [str(t91 / f"t{i}.png") for i in (1, 2, 3, 5, 8, 13)]


def _cfg(data: list[str], **kw) -> TrainConfig:
    base = dict(scale=2, data=data, arch="tiny", epochs=3, steps_per_epoch=4, batch=4, patch=16,
                seed=7, val_count=1, threads=1)
    base.update(kw)
    return TrainConfig(**base)


def _state_bytes(model) -> bytes:
    return b"".join(v.detach().numpy().tobytes() for v in model.state_dict().values())


def test_same_seed_same_bytes_other_seed_differs(data: list[str]) -> None:
    a = train(_cfg(data), progress=False, log=None)
    b = train(_cfg(data), progress=False, log=None)
    c = train(_cfg(data, seed=8), progress=False, log=None)
    assert _state_bytes(a.model) == _state_bytes(b.model)
    assert onnx_bytes(a.model) == onnx_bytes(b.model)
    assert _state_bytes(a.model) != _state_bytes(c.model)
    assert [h["val_psnr"] for h in a.history] == [h["val_psnr"] for h in b.history]


def test_resume_equals_uninterrupted(data: list[str], tmp_path: Path) -> None:
    full = train(_cfg(data), checkpoint=tmp_path / "full.ckpt", progress=False, log=None)
    ck = tmp_path / "cut.ckpt"
    part = train(_cfg(data), checkpoint=ck, progress=False, log=None, stop_after_epoch=1)
    assert len(part.history) == 1
    logs: list[str] = []
    resumed = train(_cfg(data), checkpoint=ck, resume=True, progress=False, log=logs.append)
    assert any("resumed" in line and "after epoch 1" in line for line in logs)
    assert _state_bytes(resumed.model) == _state_bytes(full.model)
    assert resumed.history[-1]["val_psnr"] == full.history[-1]["val_psnr"]
    # different settings refuse the checkpoint
    from srzoo import SrzooError

    with pytest.raises(SrzooError, match="different settings"):
        train(_cfg(data, lr=5e-4), checkpoint=ck, resume=True, progress=False, log=None)


@pytest.mark.parametrize("arch,scale", [("espcn-res", 3), ("resblock", 4), ("srcnn", 2)])
def test_onnx_in_cv2_dnn_equals_torch(arch: str, scale: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(arch, scale).eval()
    for p in model.parameters():  # not the initial weights: some real non-zero residual
        p.data.add_(0.01 * torch.randn_like(p))
    pre = model.spec.kind == "pre"
    info = export_onnx(model, tmp_path / "m.onnx", pre_upsample=pre, scale=scale)
    assert info["max_abs_diff"] <= 1e-4
    net = cv2.dnn.readNetFromONNX(str(tmp_path / "m.onnx"))
    rng = np.random.default_rng(1)
    x = rng.random((1, 1, 29 * (scale if pre else 1), 53 * (scale if pre else 1)), dtype=np.float32)
    net.setInput(x)
    got = net.forward()
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert got.shape == (1, 1, x.shape[2] * (1 if pre else scale), x.shape[3] * (1 if pre else scale))
    assert np.abs(got - want).max() <= 1e-4
    assert hashlib.sha256((tmp_path / "m.onnx").read_bytes()).hexdigest() == info["sha256"]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_skip_is_matlab_bicubic_inside(shared_dir: Path, scale: int) -> None:
    """The global skip starts as exact MATLAB-bicubic upscaling (away from borders)."""
    img = cv2.imread(str(shared_dir / "datasets/T91/t1.png"), cv2.IMREAD_GRAYSCALE).astype(np.float64)
    k = bicubic_phase_kernels(scale, 5)
    phases = np.stack([cv2.filter2D(img, -1, kk, borderType=cv2.BORDER_REFLECT) for kk in k])
    h, w = img.shape
    up = phases.reshape(scale, scale, h, w).transpose(2, 0, 3, 1).reshape(h * scale, w * scale)
    ref = imresize(img, scale)
    m = 3 * scale
    assert np.abs(up[m:-m, m:-m] - ref[m:-m, m:-m]).max() < 1e-9


def test_cli_train_writes_onnx_manifest_and_log(data: list[str], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "mine_x2.onnx"
    argv = ["train", "-s", "2", "--data", *data, "--arch", "tiny", "--epochs", "2", "--steps", "3",
            "--batch", "4", "--patch", "16", "--val-count", "1", "--threads", "1", "-o", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "epoch 2/2" in text and "val PSNR" in text and f"wrote {out}" in text
    entry = (tmp_path / "mine_x2.onnx.toml").read_text()
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert f'sha256 = "{sha}"' in entry and 'name = "mine_x2"' in entry
    log = json.loads((tmp_path / "mine_x2.onnx.log.json").read_text())
    assert [h["epoch"] for h in log["history"]] == [1, 2]
    # the manifest entry works as written, with the file's folder as mirror
    (tmp_path / "models").mkdir()
    out.rename(tmp_path / "models" / out.name)
    assert 'urls = ["https://example.invalid/mine_x2.onnx"]' in entry
    monkeypatch.setenv("SRZOO_REGISTRY", str(tmp_path / "mine_x2.onnx.toml"))
    monkeypatch.setenv("SRZOO_MIRROR", str(tmp_path / "models"))
    import srzoo

    lr = cv2.imread(data[0])
    sr = srzoo.upscale(lr, "mine_x2", 2)
    assert sr.shape == (lr.shape[0] * 2, lr.shape[1] * 2, 3)
    # a second run refuses to overwrite the checkpoint without --resume
    assert main(argv) == 1
    assert "--resume" in capsys.readouterr().err


def test_init_copies_matching_weights_across_scales(data: list[str], tmp_path: Path) -> None:
    x2 = train(_cfg(data, epochs=1), checkpoint=tmp_path / "x2.ckpt", progress=False, log=None)
    logs: list[str] = []
    x3 = train(_cfg(data, scale=3, epochs=1, steps_per_epoch=1, lr=1e-9, init=str(tmp_path / "x2.ckpt")),
               progress=False, log=logs.append)
    a, b = x2.model.state_dict(), x3.model.state_dict()
    assert torch.allclose(a["features.0.weight"], b["features.0.weight"], atol=1e-6)
    assert b["tail.weight"].shape[0] == 9 and a["tail.weight"].shape[0] == 4
    assert any("tail.weight" in line and "skip.weight" in line for line in logs)


def test_cli_train_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "-s", "2", "--data", str(tmp_path / "nope"), "-o", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such folder" in err[0] and "Traceback" not in err[0]
    assert main(["train", "-s", "2", "--data", str(tmp_path), "-o", str(tmp_path / "m.pt")]) == 1
    assert "must be an .onnx file" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("loss", ["l2", "ms-ssim", "l1+ms-ssim"])
def test_other_losses_train(data: list[str], loss: str) -> None:
    from srzoo.train.losses import make_loss

    res = train(_cfg(data, loss=loss, epochs=1, steps_per_epoch=3, patch=24), progress=False, log=None)
    assert 0.0 < res.history[0]["loss"] < 1.0 and np.isfinite(res.history[0]["val_psnr"])
    x = torch.rand(2, 1, 48, 48)
    assert float(make_loss(loss)(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(make_loss(loss)(x, 1 - x)) > 0.05
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("gan")
