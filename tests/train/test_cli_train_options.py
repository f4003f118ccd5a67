"""Every `srzoo train` option reaches the run: real tiny trainings (a step or two on T91
patches), then the files they leave (the log's config, the manifest entry, the checkpoint's
place) and what they print are compared with the options given. Needs PyTorch."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from srzoo.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def data(shared_dir: Path) -> list[str]:
    t91 = shared_dir / "datasets" / "T91"
    return [str(t91 / f"t{i}.png") for i in (1, 2, 3, 5, 8, 13)]


@pytest.fixture(autouse=True)
def _torch_threads():
    before = torch.get_num_threads()  # --threads sets torch's process-wide count: put it back
    yield
    torch.set_num_threads(before)


def _tiny(data: list[str], out: Path, *extra: str) -> list[str]:
    return ["train", "-s", "2", "--data", *data, "--arch", "tiny", "--epochs", "1", "--steps", "1",
            "--batch", "2", "--patch", "16", "--val-count", "1", "--threads", "1", "-o", str(out), *extra]


def test_quiet_run_prints_nothing_and_defaults_are_the_documented_ones(
        data: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "Net X2.onnx"
    assert main(["train", "-s", "2", "--data", *data, "--arch", "tiny", "--epochs", "1", "--steps", "1",
                 "--batch", "2", "--patch", "16", "-q", "-o", str(out)]) == 0
    assert capsys.readouterr() == ("", "")  # -q: no log line, no progress bar
    # the checkpoint's default place: OUTPUT.ckpt beside the output
    assert (tmp_path / "Net X2.onnx.ckpt").is_file()
    log = json.loads((tmp_path / "Net X2.onnx.log.json").read_text())
    assert log["config"] == {
        "scale": 2, "data": data, "arch": "tiny", "loss": "l1", "epochs": 1, "steps_per_epoch": 1,
        "batch": 2, "patch": 16, "lr": 1e-3, "seed": 0, "val_count": 4, "downscales": [1.0],
        "init": None, "threads": 0, "lr_min_ratio": 0.01}
    entry = (tmp_path / "Net X2.onnx.toml").read_text()
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert entry == (
        '[[model]]\nname = "net-x2"\nscale = 2\nfile = "Net X2.onnx"\nformat = "onnx"\n'
        f"size = {out.stat().st_size}\n"
        f'sha256 = "{sha}"\n'
        'license = "unspecified (set the licence of your training images)"\n'
        'urls = ["https://example.invalid/Net X2.onnx"]  # placeholder: replace with where this file is published\n'
        'arch = "tiny"\ndescription = "srzoo train --arch tiny --loss l1 --seed 0"\n'
        'io = { color = "y", range = 1.0, layout = "nchw" }\n')


def test_every_option_reaches_the_config_manifest_and_output(
        data: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    init = tmp_path / "first.ckpt"
    assert main(_tiny(data, tmp_path / "first.onnx", "--checkpoint", str(init), "-q")) == 0
    capsys.readouterr()
    assert init.is_file() and not (tmp_path / "first.onnx.ckpt").exists()

    sub = tmp_path / "runs"
    sub.mkdir()
    out = tmp_path / "second.onnx"
    ck = sub / "x3.state"
    argv = ["train", "--scale", "3", "--data", *data, "-o", str(out), "--arch", "tiny", "--loss", "l2",
            "--epochs", "2", "--steps", "2", "--batch", "3", "--patch", "17", "--lr", "0.002",
            "--seed", "5", "--val-count", "2", "--downscales", "1,0.5", "--init", str(init),
            "--checkpoint", str(ck), "--threads", "1", "--name", "my-net", "--license", "CC0-1.0",
            "--bundled"]
    assert main(argv) == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    # --init: the x2 checkpoint's weights were copied into the x3 network
    assert lines[0] == f"initialised from {init} (new: tail.weight, tail.bias, skip.weight)"
    # --downscales 1,0.5: each of the 4 training files twice; --val-count 2: two held out
    assert lines[1].startswith("tiny x3: ") and lines[1].endswith(
        "8 training images (4 files), 2 validation; 4 steps")
    assert [ln.split(":")[0] for ln in lines[2:4]] == ["epoch 1/2", "epoch 2/2"]
    size, sha = out.stat().st_size, hashlib.sha256(out.read_bytes()).hexdigest()
    # the side files go beside the checkpoint, named after the output
    assert re.fullmatch(
        rf"wrote {re.escape(str(out))} \({size} bytes, sha256 {sha[:12]}…, cv2.dnn max \|d\| "
        rf"\d\.\de-\d\d\); validation PSNR \d+\.\d{{3}} dB; manifest entry in "
        rf"{re.escape(str(sub / 'second.onnx'))}.toml; \d+ s", lines[4])
    assert len(lines) == 5
    assert "epoch 1/2" in cap.err  # the progress bar (not -q)
    assert ck.is_file() and not (tmp_path / "second.onnx.ckpt").exists()
    log = json.loads((sub / "second.onnx.log.json").read_text())
    assert log["config"] == {
        "scale": 3, "data": data, "arch": "tiny", "loss": "l2", "epochs": 2, "steps_per_epoch": 2,
        "batch": 3, "patch": 17, "lr": 0.002, "seed": 5, "val_count": 2, "downscales": [1.0, 0.5],
        "init": str(init), "threads": 1, "lr_min_ratio": 0.01}
    assert [h["epoch"] for h in log["history"]] == [1, 2]
    assert log["export"]["sha256"] == sha
    assert (sub / "second.onnx.toml").read_text() == (
        '[[model]]\nname = "my-net"\nscale = 3\nfile = "second.onnx"\nformat = "onnx"\n'
        f'size = {size}\nsha256 = "{sha}"\nlicense = "CC0-1.0"\nbundled = true\nurls = []\n'
        'arch = "tiny"\ndescription = "srzoo train --arch tiny --loss l2 --seed 5"\n'
        'io = { color = "y", range = 1.0, layout = "nchw" }\n')
    assert torch.get_num_threads() == 1

    # --resume continues the finished checkpoint: nothing left to train, the same weights
    assert main(argv + ["--resume", "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == sha
    log2 = json.loads((sub / "second.onnx.log.json").read_text())
    assert log2["history"] == log["history"]


def test_an_existing_checkpoint_without_resume_is_refused_before_training(
        data: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ck = tmp_path / "mine.ckpt"
    ck.write_bytes(b"not ours")
    out = tmp_path / "m.onnx"
    assert main(_tiny(data, out, "--checkpoint", str(ck))) == 1
    assert capsys.readouterr() == (
        "", f"srzoo: error: {ck}: a checkpoint exists; add --resume to continue it, or remove it\n")
    assert ck.read_bytes() == b"not ours" and sorted(p.name for p in tmp_path.iterdir()) == ["mine.ckpt"]


def test_a_pre_upsampling_architecture_is_exported_and_described_as_one(
        data: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """srcnn works on the bicubic-upscaled image: the ONNX file takes the large image, and
    the manifest entry says pre_upsample = "bicubic" so srzoo feeds it that."""
    import onnx

    out = tmp_path / "s.onnx"
    t0 = time.perf_counter()
    assert main(["train", "-s", "3", "--data", *data, "--arch", "srcnn", "--epochs", "1", "--steps", "1",
                 "--batch", "2", "--patch", "16", "--val-count", "1", "--threads", "1", "-o", str(out)]) == 0
    took = time.perf_counter() - t0
    last = capsys.readouterr().out.splitlines()[-1]
    assert int(re.fullmatch(r"wrote .*; (\d+) s", last).group(1)) <= took + 1
    entry = (tmp_path / "s.onnx.toml").read_text()
    assert entry.endswith('arch = "srcnn"\ndescription = "srzoo train --arch srcnn --loss l1 --seed 0"\n'
                          'io = { color = "y", range = 1.0, layout = "nchw", pre_upsample = "bicubic" }\n')
    graph = onnx.load(str(out)).graph
    # no depth-to-space: the network keeps the size it is given (the bicubic x3 image)
    assert "DepthToSpace" not in {n.op_type for n in graph.node}
    text = (tmp_path / "s.onnx.log.json").read_text()
    assert text.startswith('{\n "config": {\n  "scale": 3,\n')  # indent 1
    assert json.loads(text)["export"]["max_abs_diff"] < 1e-4


def test_an_unknown_architecture_lists_the_known_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from srzoo.train import ARCHS

    assert main(["train", "-s", "2", "--data", str(tmp_path), "--arch", "nope", "-o", str(tmp_path / "m.onnx")]) == 1
    assert capsys.readouterr().err == (f"srzoo: error: unknown --arch 'nope'; choose one of "
                                       f"{', '.join(ARCHS)}\n")
    assert ", ".join(ARCHS) == "espcn-res, resblock, fsrcnn-res, espcn, srcnn, tiny"

