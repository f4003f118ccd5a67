"""`srzoo inspect` and `srzoo export` on exact output: every line of a real file's facts
(text and --json), --scale/--arch reaching the reader, export's lines, refusals, -o, --force
and the per-model error count of --all-opencv."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from srzoo.cli import main
from srzoo.cli.convert import _fmt
from suite import Terminal


def test_fmt_of_counts_lists_and_other_dicts() -> None:
    assert _fmt({"b": 2, "a": 2, "c": 5}) == "c 5, a 2, b 2"  # by count, then by name
    assert _fmt({"a": 1.5, "b": "x"}) == '{"a": 1.5, "b": "x"}'
    assert _fmt([1, {"name": "x", "shape": [1, 2]}, "y"]) == "1; x [1, 2]; y"
    assert _fmt(None) == "None" and _fmt(7) == "7"


def test_inspect_lines_of_real_files(shared_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(shared_dir / "models" / "esrgan-ncnn" / "realesrgan-x4plus.param")]) == 0
    assert capsys.readouterr().out == (
        "format:       ncnn\n"
        "arch:         ncnn-rrdbnet x4 (float16=True, layers=999)\n"
        "scale:        4\n"
        "scales:       4\n"
        "color:        rgb\n"
        "pre_upsample: None\n"
        "layers:       Convolution 351, Concat 276, Split 276, Eltwise 92, Interp 2, BinaryOp 1, Input 1\n"
        "inputs:       data\n"
        "outputs:      output\n"
        "params:       16697987\n"
        "weights:      float16\n")
    carn = str(shared_dir / "models" / "carn" / "carn_m.pth")
    assert main(["inspect", carn, "--scale", "2"]) == 0  # the multi-scale CARN-M at x2
    out = capsys.readouterr().out.splitlines()
    assert out[1:4] == ["arch:         carn-m x2 (blocks=3, groups=4, multi_scale=True)",
                        "scale:        2", "scales:       2; 3; 4"]
    assert main(["inspect", carn, "--arch", "rfdn"]) == 1  # the architecture asked for is checked
    assert capsys.readouterr().err.startswith(f"srzoo: error: {carn}: the state dict (58 tensors: ")
    assert main(["inspect", "--json", str(shared_dir / "models" / "rfdn" / "RFDN_AIM.pth")]) == 0
    assert capsys.readouterr().out == (
        '{\n  "format": "pytorch-pth",\n  "arch": "rfdn x4 (blocks=4, features=50)",\n  "scale": 4,\n'
        '  "scales": [\n    4\n  ],\n  "color": "rgb",\n  "pre_upsample": null,\n  "tensors": 128,\n'
        '  "params": 433448\n}\n')


def test_export_lines_force_and_default_place(models_env, tmp_path: Path, monkeypatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "d.onnx"
    assert main(["export", "default", "-s", "2", "-o", str(d)]) == 0
    assert capsys.readouterr().out == f"{d}  (default x2, published; outputs output)\n"
    first = d.read_bytes()
    assert main(["export", "default", "-s", "2", "-o", str(d)]) == 1
    assert capsys.readouterr().err == (f"srzoo: error: {d}: already exists; pass --force (force=True) "
                                       "to replace it\n")
    d.write_bytes(b"stale")
    assert main(["export", "default", "-s", "2", "-o", str(d), "--force"]) == 0
    assert capsys.readouterr().out == f"{d}  (default x2, published; outputs output)\n"
    assert d.read_bytes() == first
    monkeypatch.chdir(tmp_path)  # no -o: the file's own name, here
    assert main(["export", "espcn", "-s", "2", "-q"]) == 0
    assert capsys.readouterr().out == 'ESPCN_x2.onnx  (espcn x2, graphdef-onnx; setModel("espcn", 2))\n'
    assert (tmp_path / "ESPCN_x2.onnx").is_file()


def test_all_opencv_refusals_are_exact_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    for argv, line in [
            (["export", "espcn", "--all-opencv", "-o", str(tmp_path)],
             "--all-opencv exports every dnn_superres model: give no NAME or --scale"),
            (["export", "--all-opencv", "-s", "2", "-o", str(tmp_path)],
             "--all-opencv exports every dnn_superres model: give no NAME or --scale"),
            (["export", "--all-opencv"], "--all-opencv needs -o DIR (the folder to write the files into)"),
            (["export", "--all-opencv", "-o", str(f)],
             f"{f}: is not a folder; --all-opencv writes one file per model into -o DIR"),
            (["export"], "name a model to export (srzoo export espcn -s 4 -o espcn_x4.onnx) or pass "
                         "--all-opencv -o DIR")]:
        assert main(argv) == 1
        assert capsys.readouterr() == ("", f"srzoo: error: {line}\n"), argv
    assert f.read_text() == "x"


def test_all_opencv_into_new_nested_and_existing_folders(models_env, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a" / "b"  # made, parents too
    assert main(["export", "--all-opencv", "-o", str(out), "-q"]) == 1
    o, err = capsys.readouterr()
    # EDSR's .pb files are not in the local mirror: one line each, then the count
    lines = err.splitlines()
    assert [ln.split(":")[1] for ln in lines[:3]] == [" error", " error", " error"]
    assert [ln.split(": ")[2] for ln in lines[:3]] == ["edsr x2", "edsr x3", "edsr x4"]
    assert lines[3:] == ["srzoo: 3 of 15 model(s) not exported"]
    assert len(o.splitlines()) == 12 and len(list(out.iterdir())) == 12
    assert main(["export", "--all-opencv", "-o", str(out), "-q", "--force"]) == 1  # the folder exists
    assert capsys.readouterr().err.splitlines()[-1] == "srzoo: 3 of 15 model(s) not exported"


def test_export_download_bar_on_a_terminal_unless_quiet(srzoo_env, tmp_path: Path, monkeypatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """stderr a real pty: a download shows its bar (the file's name, its bytes); with -q nothing
    is drawn, and stdout has the same line either way."""
    for quiet, name in ((False, "espcn"), (True, "fsrcnn")):
        term = Terminal(80)
        monkeypatch.setattr(sys, "stderr", term.file)
        out = tmp_path / f"{name}.onnx"
        assert main(["export", name, "-s", "2", "-o", str(out), *(["-q"] if quiet else [])]) == 0
        monkeypatch.setattr(sys, "stderr", sys.__stderr__)
        drawn = term.text()
        pb = {"espcn": "ESPCN_x2.pb", "fsrcnn": "FSRCNN_x2.pb"}[name]
        assert capsys.readouterr().out.startswith(f"{out}  ({name} x2, ")
        if quiet:
            assert drawn == ""
        else:
            assert f"{pb}: " in drawn and "100%" in drawn, drawn
