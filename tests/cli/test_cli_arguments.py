"""Every argument error of every command: one ``srzoo: error:`` line, exit 1, no
traceback, nothing on stdout, nothing written; argparse's own usage errors (a
missing argument, a bad choice, a number that does not parse) exit 2 with the usage
and exactly one ``srzoo COMMAND: error:`` line.

Commands: upscale, list, fetch, cache, info, bench, convert, inspect, export,
catalog, train, compare, serve (the list is checked against the parser, so a new command
without a case here fails :func:`test_every_command_has_argument_error_cases`).
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import pytest

from srzoo.cli import build_parser, main

# (command line with {img} {txt} {tmp} {shared} placeholders, expected text of the error line)
ERRORS = [
    # upscale
    ("upscale {img} -m nearest -s 0", "scale must be a positive number, got 0"),
    ("upscale {img} -m nearest -s nan", "scale must be a positive number, got nan"),
    ("upscale {img} -m nearest -s 0.5", "scale 0.5 would shrink the image; srzoo only upscales"),
    ("upscale {img} -m espcn -s 7", "model 'espcn' has no x7; it has scales x2, x3, x4"),
    ("upscale {img} -m espcn --tile -1", "in.png: tile must be a positive number of pixels, got -1"),
    ("upscale {img} -m espcn --threads -1", "--threads must be at least 1, got -1"),
    ("upscale {img} -m espcn --threads 0 --jobs 2", "--threads must be at least 1, got 0"),
    ("upscale {img} -m nearest --width 0", "--width must be a positive whole number of pixels, got 0"),
    ("upscale {img} -m nearest --height -5", "--height must be a positive whole number of pixels, got -5"),
    ("upscale {img} -m nearest --jobs 0", "--jobs must be at least 1, got 0"),
    ("upscale {img} -m nearest --chunk 64 -s 1.5 -o {tmp}/o.zarr",
     "--chunk runs a model's own scale only (no --width/--height or fractional -s)"),
    ("upscale {img} {img} -m nearest --chunk 64 -o {tmp}/o.zarr", "--chunk takes one input"),
    ("upscale {img} -m nearest --chunk 64", "--chunk takes one input"),
    ("upscale {img} -m nearest --backend bogus", "unknown backend 'bogus'; valid backends: auto"),
    ("upscale {img} -m no-such-model", "unknown model 'no-such-model'. Run 'srzoo list' to see all."),
    ("upscale {tmp}/nope.png -m nearest", "nope.png: no such file or folder"),
    ("upscale {txt} -m nearest", "notes.txt: not an image OpenCV can decode"),
    # list
    ("list --arch esrgan", "--arch, --scale and --runnable filter a catalogue: add --catalog openmodeldb"),
    ("list --runnable", "filter a catalogue: add --catalog openmodeldb"),
    ("list --catalog nope", "unknown catalogue 'nope'; srzoo knows: openmodeldb"),
    # fetch
    ("fetch espcn --scale 2 --all", "give either --scale or --all, not both"),
    ("fetch espcn fsrcnn --from {txt}", "--from FILE adds one file: give exactly one model name"),
    ("fetch no-such-model", "unknown model 'no-such-model'"),
    ("fetch espcn -s 7", "model 'espcn' has no x7; it has scales x2, x3, x4"),
    # cache
    ("cache rm no-such-model", "unknown model 'no-such-model'"),
    ("cache verify no-such-model", "unknown model 'no-such-model'"),
    # info
    ("info --model no-such-model", "unknown model 'no-such-model'"),
    ("info --model espcn --backend bogus", "unknown backend 'bogus'"),
    ("info --model espcn --threads -2", "threads must be a positive integer or None, got -2"),
    # bench
    ("bench --models nearest --repeat 0", "--repeat must be >= 1 (timed runs per image), got 0"),
    ("bench --models nearest --warmup -1", "--warmup must be >= 0, got -1"),
    ("bench --models no-such-model", "unknown model 'no-such-model'"),
    ("bench --models nearest --dataset {tmp}/nonexistent", "dataset folder not found: "),
    # convert / inspect / export
    ("convert {tmp}/nope.pth", "nope.pth: cannot read the model file: No such file or directory"),
    ("convert {txt}", "notes.txt: unknown model format (srzoo reads PyTorch .pth"),
    ("convert {shared}/models/carn/carn_m.pth --arch bogus -o {tmp}/x.onnx",
     "unknown architecture 'bogus' (known: auto, rrdbnet"),
    ("inspect {tmp}/nope.pth", "nope.pth: cannot read the model file: No such file or directory"),
    ("inspect {txt}", "notes.txt: unknown model format"),
    ("export", "name a model to export (srzoo export espcn -s 4 -o espcn_x4.onnx) or pass --all-opencv -o DIR"),
    ("export --all-opencv espcn", "--all-opencv exports every dnn_superres model: give no NAME or --scale"),
    ("export --all-opencv", "--all-opencv needs -o DIR"),
    ("export no-such-model -o {tmp}/x.onnx", "unknown model 'no-such-model'"),
    ("export espcn -s 7 -o {tmp}/x.onnx", "model 'espcn' has no x7"),
    # catalog (offline: no network at test time)
    ("catalog update --revision 0123456789abcdef0123456789abcdef01234567",
     "needs the network and SRZOO_OFFLINE=1 forbids it"),
    # train (argument checks come before PyTorch is asked for anything but its presence)
    ("train --scale 2 --data {hr} -o {tmp}/x.txt", "x.txt: the output must be an .onnx file"),
    ("train --scale 2 --data {hr} -o {tmp}/x.onnx --arch bogus", "unknown --arch 'bogus'; choose one of"),
    ("train --scale 2 --data {hr} -o {tmp}/x.onnx --epochs 0", "--epochs must be >= 1, got 0"),
    ("train --scale 2 --data {hr} -o {tmp}/x.onnx --steps 0", "--steps must be >= 1, got 0"),
    ("train --scale 2 --data {hr} -o {tmp}/x.onnx --batch 0", "--batch must be >= 1, got 0"),
    ("train --scale 2 --data {hr} -o {tmp}/x.onnx --patch 4", "--patch must be >= 16, got 4"),
    ("train --scale 2 --data {hr} -o {tmp}/x.onnx --val-count -1", "--val-count must be >= 0, got -1"),
    ("train --scale 2 --data {hr} -o {tmp}/x.onnx --threads -1", "--threads must be >= 0, got -1"),
    ("train --scale 2 --data {hr} -o {tmp}/x.onnx --lr -1", "--lr must be a positive number, got -1"),
    ("train --scale 2 --data {hr} -o {tmp}/x.onnx --lr nan", "--lr must be a positive number, got nan"),
    ("train --scale 2 --data {tmp}/nonexistent -o {tmp}/x.onnx", "nonexistent: no such folder; pass folders"),
    # compare
    ("compare {img} --at 1 -o {tmp}/g.png", "--at expects X,Y (two whole numbers, e.g. --at 40,60), got '1'"),
    ("compare {img} -s 0 -o {tmp}/g.png", "--scale must be a whole number >= 1, got 0"),
    ("compare {img} --crop 0 -o {tmp}/g.png", "--crop must be a whole number >= 1, got 0"),
    ("compare {img} --zoom 0 -o {tmp}/g.png", "--zoom must be a whole number >= 1, got 0"),
    ("compare {img} --cols -1 -o {tmp}/g.png", "--cols must be a whole number >= 1, got -1"),
    ("compare {img} -m no-such-model -o {tmp}/g.png", "unknown model 'no-such-model'"),
    ("compare {tmp}/nope.png -o {tmp}/g.png", "nope.png: no such file"),
    # serve (each refused before anything binds a port)
    ("serve --port 0 --models no-such-model", "unknown model 'no-such-model'"),
    ("serve --port 0 --queue 0", "--queue must be > 0, got 0"),
    ("serve --port 0 --workers 0", "--workers must be at least 1, got 0"),
]

# argparse's own errors: exit 2, the usage, then one "srzoo COMMAND: error: ..." line
USAGE = [
    ("upscale", "upscale", "the following arguments are required: INPUT"),
    ("upscale {img} -s abc", "upscale", "argument -s/--scale: invalid float value: 'abc'"),
    ("upscale {img} --tile x", "upscale", "argument --tile: invalid int value: 'x'"),
    ("upscale {img} --quality x", "upscale", "argument --quality: invalid int value: 'x'"),
    ("upscale {img} --crf x", "upscale", "argument --crf: invalid int value: 'x'"),
    ("upscale {img} --on-corrupt maybe", "upscale", "argument --on-corrupt: invalid choice: 'maybe'"),
    ("list --scale x", "list", "argument --scale/-s: invalid int value: 'x'"),
    ("fetch", "fetch", "the following arguments are required: NAME"),
    ("cache", "cache", "the following arguments are required: action"),
    ("cache bogus", "cache", "argument action: invalid choice: 'bogus'"),
    ("info --threads x", "info", "argument --threads: invalid int value: 'x'"),
    ("info --model espcn -s x", "info", "argument --scale/-s: invalid int value: 'x'"),
    ("bench --scales 0", "bench", "argument --scales: expected positive integers, got '0'"),
    ("bench --scales x", "bench", "argument --scales: expected comma-separated integers, got 'x'"),
    ("bench --threads x", "bench", "argument --threads: threads must be a positive integer or 'default'"),
    ("bench --protocol bogus", "bench", "argument --protocol: invalid choice: 'bogus'"),
    ("convert", "convert", "the following arguments are required: INPUT"),
    ("convert {img} --scale x", "convert", "argument --scale: invalid int value: 'x'"),
    ("convert {img} --range x", "convert", "argument --range: invalid float value: 'x'"),
    ("inspect", "inspect", "the following arguments are required: FILE"),
    ("inspect {img} --scale x", "inspect", "argument --scale: invalid int value: 'x'"),
    ("export espcn -s x", "export", "argument -s/--scale: invalid int value: 'x'"),
    ("catalog bogus", "catalog", "argument action: invalid choice: 'bogus'"),
    ("train --scale 7 --data {hr} -o {tmp}/x.onnx", "train", "argument --scale/-s: invalid choice: 7"),
    ("train --scale 2 --data {hr} -o {tmp}/x.onnx --downscales 2", "train",
     "argument --downscales: factors must be in (0, 1], got '2'"),
    ("train --scale 2 -o {tmp}/x.onnx", "train", "the following arguments are required: --data"),
    ("compare", "compare", "the following arguments are required: image"),
    ("compare {img} -s x", "compare", "argument -s/--scale: invalid int value: 'x'"),
    ("bogus", None, "argument COMMAND: invalid choice: 'bogus'"),
]


@pytest.fixture
def where(tmp_path: Path, shared_dir: Path) -> dict[str, str]:
    work = tmp_path / "work"
    work.mkdir()
    img = work / "in.png"
    cv2.imwrite(str(img), cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:40, :48])
    (work / "notes.txt").write_text("not an image, not a model")
    return {"img": str(img), "txt": str(work / "notes.txt"), "tmp": str(work), "shared": str(shared_dir),
            "hr": str(shared_dir / "datasets/Set5")}


def argv(line: str, where: dict[str, str]) -> list[str]:
    return [part.format(**where) for part in line.split()]


def test_every_command_has_argument_error_cases():
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    covered = {line.split()[0] for line, _ in ERRORS} | {cmd for _, cmd, _ in USAGE if cmd}
    assert commands == covered == {"upscale", "list", "fetch", "cache", "info", "bench", "convert", "inspect",
                                   "export", "catalog", "train", "compare", "serve"}


@pytest.mark.parametrize("line,message", ERRORS, ids=[e[0].replace(" ", "_")[:60] for e in ERRORS])
def test_argument_error_is_one_line(line, message, where, models_env, capsys, monkeypatch):
    if line.startswith("train"):
        pytest.importorskip("torch")  # without it `srzoo train` says it needs PyTorch, first
    monkeypatch.setenv("SRZOO_OFFLINE", "1") if line.startswith("catalog") else None
    before = sorted(Path(where["tmp"]).rglob("*"))
    code = main(argv(line, where))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("srzoo: error: "), err
    assert message in lines[0]
    assert code == 1 and out == ""
    assert sorted(Path(where["tmp"]).rglob("*")) == before  # nothing written, nothing half-written


@pytest.mark.parametrize("line,command,message", USAGE, ids=[u[0].replace(" ", "_")[:60] for u in USAGE])
def test_usage_error_is_the_usage_and_one_error_line(line, command, message, where, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv(line, where))
    out, err = capsys.readouterr()
    assert e.value.code == 2 and out == "" and "Traceback" not in err
    prog = "srzoo" + (f" {command}" if command else "")
    errors = [ln for ln in err.splitlines() if re.match(r"srzoo( \w+)?: error: ", ln)]
    assert errors == [f"{prog}: error: {errors[0].split(': error: ', 1)[1]}"] if errors else False, err
    assert message in errors[0]
    assert err.startswith(f"usage: {prog} ")
