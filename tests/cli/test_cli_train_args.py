"""`srzoo train`'s argument checks, without PyTorch or any training: --downscales'
bounds, --lr, and the missing-PyTorch line (torch hidden from the process)."""

from __future__ import annotations

import sys

import pytest

from srzoo.cli import build_parser, main

BASE = ["train", "--scale", "2", "--data", "hr", "-o", "x.onnx"]


def _parse(*extra: str):
    return build_parser().parse_args(BASE + list(extra))


def test_defaults() -> None:
    a = _parse()
    assert (a.arch, a.loss, a.epochs, a.steps, a.batch, a.patch, a.lr, a.seed, a.val_count, a.threads) == (
        "espcn-res", "l1", 20, 200, 16, 32, 1e-3, 0, 4, 0)
    assert (a.init, a.checkpoint, a.resume, a.name, a.license, a.bundled, a.quiet) == (
        None, None, False, None, None, False, False)


def test_downscales_are_factors_in_zero_one() -> None:
    assert _parse().downscales == [1.0]
    assert _parse("--downscales", "1,0.8, 0.6,").downscales == [1.0, 0.8, 0.6]  # blanks ignored
    assert _parse("--downscales", "0.001").downscales == [0.001]


@pytest.mark.parametrize("text, why", [
    ("0", "factors must be in (0, 1], got '0'"),
    ("1.0001", "factors must be in (0, 1], got '1.0001'"),
    ("0.5,-0.5", "factors must be in (0, 1], got '0.5,-0.5'"),
    (",", "factors must be in (0, 1], got ','"),
    ("0.5;0.7", "expected comma-separated numbers, got '0.5;0.7'"),
])
def test_downscales_refused_with_one_line(text: str, why: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        _parse("--downscales", text)
    assert e.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == f"srzoo train: error: argument --downscales: {why}"


def test_without_pytorch_one_line_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails as if not installed
    assert main(BASE[:4] + [str(tmp_path), "-o", str(tmp_path / "x.onnx")]) == 1
    assert capsys.readouterr().err == ("srzoo: error: srzoo train needs PyTorch: pip install "
                                       "'srzoo[train]' (a CPU build is enough)\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("lr", ["0", "-1e-3", "nan", "inf"])
def test_lr_must_be_a_positive_number(lr: str, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    assert main(BASE[:4] + [str(tmp_path), "-o", str(tmp_path / "x.onnx"), f"--lr={lr}"]) == 1
    assert capsys.readouterr().err == f"srzoo: error: --lr must be a positive number, got {float(lr):g}\n"
    assert list(tmp_path.iterdir()) == []
