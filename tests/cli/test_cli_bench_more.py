"""``srzoo bench`` (srzoo/cli/bench.py) beyond tests/evaluate/test_bench.py: every option
reaching the run and the recorded command line, the output-path checks' exact lines, the
default dataset, ``--plot``, ``--gallery``'s backend and line, and the progress bar on a
real terminal (a pty)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from srzoo.cli import main
from srzoo.cli.bench import _Bar
from srzoo.evaluate.compare import compare
from diskfaults import mount_tmpfs, umount
from suite import Terminal, one_error_line, run_cli


@pytest.fixture(scope="module")
def two_sets(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two one-image datasets, ``Alpha`` (a 48x48 crop of Set5's bird) and ``beta`` (butterfly)."""
    root = tmp_path_factory.mktemp("bench-sets")
    out = []
    for folder, name in (("Alpha", "bird.png"), ("beta", "butterfly.png")):
        d = root / folder
        d.mkdir()
        img = cv2.imread(str(shared_dir / "datasets" / "Set5" / name))
        assert cv2.imwrite(str(d / name), img[40:88, 30:78])
        out.append(d)
    return out[0], out[1]


# --------------------------------------------------------------------------- options
def test_every_option_reaches_the_run_and_the_recorded_command(two_sets, tmp_path, capsys):
    alpha, beta = two_sets
    code, out, err = run_cli(capsys, "bench", "--models", "nearest", "--scales", "2,3",
                             "--dataset", f" {alpha}, {beta}", "--protocol", "opencv", "--repeat", "2",
                             "--warmup", "0", "--threads", "1,default", "--precisions", "fp32",
                             "--per-image", "--json", str(tmp_path / "r.json"), "-q")
    assert (code, out, err) == (0, "", "")
    doc = json.loads((tmp_path / "r.json").read_text())
    s = doc["settings"]
    assert s["command"] == (f"srzoo bench --models nearest --scales 2,3 --backends auto --dataset "
                            f"{alpha},{beta} --protocol opencv --repeat 2 --warmup 0 --threads 1,default "
                            "--precisions fp32 --per-image")
    assert doc["protocol"] == "opencv"
    assert (s["scales"], s["threads"], s["precisions"], s["repeat"], s["warmup"]) == \
        ([2, 3], [1, "default"], ["fp32"], 2, 0)
    assert s["datasets"] == {"Alpha": str(alpha), "beta": str(beta)}
    rows = doc["results"]
    assert sorted((r["dataset"], r["scale"], r["backend"], str(r["threads"]), r["repeat"], r["warmup"],
                   r["status"]) for r in rows) == sorted(
        (d, sc, "auto@fp32", t, 2, 0, "ok") for d in ("Alpha", "beta") for sc in (2, 3)
        for t in ("1", "default"))
    for r in rows:  # --per-image: one entry per image, the row's own numbers
        (one,) = r["per_image"]
        assert one["image"] == {"Alpha": "bird.png", "beta": "butterfly.png"}[r["dataset"]]
        assert (one["psnr"], one["ssim"]) == (r["psnr"], r["ssim"])
    # protocol opencv (cv2.resize degradation, all channels), nearest x2 of the bird crop:
    # recorded once; protocol matlab gives 33.55 dB on the same crop
    bird2 = [r for r in rows if (r["dataset"], r["scale"]) == ("Alpha", 2)]
    assert [round(r["psnr"], 3) for r in bird2] == [31.729, 31.729]


def test_scale_one_is_refused_by_the_benchmark_not_the_parser(capsys):
    """``--scales 1`` parses (a positive integer) and is refused with the benchmark's own line."""
    code, out, err = run_cli(capsys, "bench", "--models", "nearest", "--scales", "1")
    assert (code, out) == (1, "")
    assert one_error_line(err) == "srzoo: error: scales must be integers >= 2, got [1]"


def test_default_dataset_is_set5(models_env, tmp_path, capsys):
    code, out, err = run_cli(capsys, "bench", "--models", "nearest", "--scales", "4", "--repeat", "1",
                             "--warmup", "0", "--json", str(tmp_path / "r.json"), "-q")
    assert (code, out, err) == (0, "", "")
    doc = json.loads((tmp_path / "r.json").read_text())
    assert list(doc["settings"]["datasets"]) == ["set5"]
    assert doc["settings"]["command"] == ("srzoo bench --models nearest --scales 4 --backends auto "
                                          "--dataset set5 --protocol matlab --repeat 1 --warmup 0")
    (row,) = doc["results"]
    assert (row["dataset"], row["images"], row["status"]) == ("set5", 5, "ok")


# --------------------------------------------------------------------------- output paths
def test_report_path_under_a_file_names_the_file(tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    code, out, err = run_cli(capsys, "bench", "--models", "nearest", "--json", str(blocker / "sub" / "r.json"))
    assert (code, out) == (1, "")
    assert one_error_line(err) == \
        f"srzoo: error: --json {blocker}/sub/r.json: cannot write: {blocker} is a file, not a folder"
    code, out, err = run_cli(capsys, "bench", "--models", "nearest", "--csv", str(blocker / "r.csv"))
    assert one_error_line(err) == f"srzoo: error: --csv {blocker}/r.csv: cannot write: Not a directory"
    assert blocker.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_report_path_in_a_read_only_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    if os.geteuid() == 0:  # root writes anywhere: a read-only mount refuses root too
        if not mount_tmpfs(ro, "ro,size=64k"):
            pytest.skip("cannot mount a read-only tmpfs")
    else:
        ro.mkdir()
        ro.chmod(0o555)
    try:
        code, out, err = run_cli(capsys, "bench", "--models", "nearest", "--markdown", str(ro / "new" / "r.md"))
        assert (code, out) == (1, "")
        assert one_error_line(err) == \
            f"srzoo: error: --markdown {ro}/new/r.md: cannot write: cannot create folders in {ro}"
    finally:
        if os.geteuid() == 0:
            umount(ro)
        else:
            ro.chmod(0o755)


def test_failed_run_keeps_an_old_report_and_leaves_no_new_one(tmp_path, capsys):
    old = tmp_path / "old.json"
    old.write_text('{"old": 1}')
    code, out, err = run_cli(capsys, "bench", "--models", "no-such-model", "--json", str(old),
                             "--csv", str(tmp_path / "new.csv"))
    assert (code, out) == (1, "")
    assert "unknown model 'no-such-model'" in one_error_line(err)
    assert old.read_text() == '{"old": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]


# --------------------------------------------------------------------------- --plot
def test_plot_is_written(two_sets, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code, out, err = run_cli(capsys, "bench", "--models", "nearest", "--scales", "2", "--dataset",
                             str(two_sets[0]), "--repeat", "1", "--warmup", "0", "-q",
                             "--plot", str(tmp_path / "p.png"))
    assert (code, out, err) == (0, "", "")
    img = cv2.imread(str(tmp_path / "p.png"))  # one panel: 5.2 x 4.2 in at 110 dpi
    assert img is not None and img.shape == (462, 572, 3)


def test_plot_without_matplotlib_fails_before_the_run(two_sets, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    code, out, err = run_cli(capsys, "bench", "--models", "nearest", "--scales", "2", "--dataset",
                             str(two_sets[0]), "--json", str(tmp_path / "r.json"),
                             "--plot", str(tmp_path / "p.png"))
    assert (code, out) == (1, "")
    assert one_error_line(err) == "srzoo: error: --plot needs matplotlib: pip install 'srzoo[plot]'"
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- --gallery
def test_gallery_runs_on_the_first_backend(two_sets, tmp_path, capsys):
    alpha = two_sets[0]
    gal = tmp_path / "gal"
    code, out, err = run_cli(capsys, "bench", "--models", "nearest", "--scales", "2", "--dataset", str(alpha),
                             "--backends", "cpu,cuda", "--repeat", "1", "--warmup", "0", "--gallery", str(gal))
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == f"gallery: 1 grids in {gal}/alpha"
    assert sorted(p.name for p in (gal / "alpha").iterdir()) == ["bird_x2.png"]
    want = compare(alpha / "bird.png", "nearest", 2, backend="cpu").grid
    assert np.array_equal(cv2.imread(str(gal / "alpha" / "bird_x2.png")), want)
    # the first backend cannot run here: the gallery takes the first one that ran (CUDA is
    # unavailable on this machine: checked, not mocked)
    try:
        from srzoo.runtime.upscaler import Upscaler

        Upscaler("nearest", 2, backend="cuda")
        pytest.skip("CUDA runs here")
    except Exception:
        pass
    code, out, err = run_cli(capsys, "bench", "--models", "nearest", "--scales", "2", "--dataset", str(alpha),
                             "--backends", "cuda,cpu", "--repeat", "1", "--warmup", "0",
                             "--gallery", str(tmp_path / "gal2"))
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == f"gallery: 1 grids in {tmp_path / 'gal2'}/alpha"
    assert np.array_equal(cv2.imread(str(tmp_path / "gal2" / "alpha" / "bird_x2.png")), want)
    # no backend ran: one line, after the table, and no gallery folder
    code, out, err = run_cli(capsys, "bench", "--models", "nearest", "--scales", "2", "--dataset", str(alpha),
                             "--backends", "cuda", "--repeat", "1", "--warmup", "0", "-q",
                             "--gallery", str(tmp_path / "gal3"))
    assert code == 1
    assert one_error_line(err) == "srzoo: error: --gallery: no backend of --backends cuda ran here; nothing to draw"
    assert not (tmp_path / "gal3").exists()


# --------------------------------------------------------------------------- progress bar
FRAME = re.compile(r"^(?:(?P<desc>.+): )?\s*(?P<pct>\d+)%\|.*\| (?P<n>\d+)/(?P<total>\d+) "
                   r"\[[^\]]*, (?:\?|\s*\d+\.\d\d)img/s\]$")


def frames(text: str) -> list[tuple[str | None, int, int, int]]:
    """(description, n, total, width) of each bar drawn; fails on anything that is not a bar."""
    out = []
    for fr in text.split("\r")[1:-1]:
        fr = fr.rstrip(" ")  # a shorter frame is padded to the previous one's length
        if not fr:
            continue  # the clearing of the line at close (leave=False)
        m = FRAME.match(fr)
        assert m, repr(fr)
        out.append((m["desc"], int(m["n"]), int(m["total"]), len(fr)))
    return out


def test_bar_on_a_terminal(tqdm_clock, monkeypatch):
    term = Terminal(80)
    monkeypatch.setattr(sys, "stderr", term.file)
    bar = _Bar(quiet=False)
    bar(0, 4, "ds a x2 cpu")
    bar(1, 4, "ds a x2 cpu")
    bar(2, 4, "ds a x2 cpu")
    term.resize(60)  # the terminal narrows: the next frame follows it
    bar(2, 4, "ds b x2 cpu")  # a new run starts: its name shows with its first image done
    bar(4, 4, "ds b x2 cpu")
    bar.close()
    text = term.text()
    # tqdm draws one column short of the terminal's width
    assert frames(text) == [(None, 0, 4, 79), ("ds a x2 cpu", 0, 4, 79), ("ds a x2 cpu", 1, 4, 79),
                            ("ds a x2 cpu", 2, 4, 79), ("ds b x2 cpu", 4, 4, 59)]
    assert text.startswith("\r") and text.endswith("\r") and "\n" not in text  # cleared, not left
    assert text.split("\r")[-2] == " " * 59  # the last frame is blanked out


def test_bar_quiet_or_not_a_terminal_writes_nothing(tqdm_clock, monkeypatch, tmp_path):
    term = Terminal(80)
    monkeypatch.setattr(sys, "stderr", term.file)
    bar = _Bar(quiet=True)
    bar(0, 2, "x")
    bar(2, 2, "x")
    bar.close()
    assert term.text() == ""
    with open(tmp_path / "err.txt", "w") as f:
        monkeypatch.setattr(sys, "stderr", f)
        bar = _Bar(quiet=False)
        bar(0, 2, "x")
        bar(2, 2, "x")
        bar.close()
    assert (tmp_path / "err.txt").read_text() == ""


def test_bench_bar_on_a_terminal_only(two_sets, tqdm_clock, monkeypatch, capsys):
    args = ["bench", "--models", "nearest", "--scales", "2,3", "--dataset", str(two_sets[0]),
            "--repeat", "1", "--warmup", "0"]
    # not a terminal (pytest captures): the table, and nothing on stderr
    code, out, err = run_cli(capsys, *args)
    assert code == 0 and err == "" and "| Alpha | nearest | x2 | auto → interpolation:cpu |" in out
    term = Terminal(100)
    monkeypatch.setattr(sys, "stderr", term.file)
    assert main(args) == 0
    assert frames(term.text()) == [(None, 0, 2, 99), ("Alpha nearest x2 auto", 0, 2, 99),
                                   ("Alpha nearest x2 auto", 1, 2, 99),
                                   ("Alpha nearest x3 auto", 2, 2, 99)]
    assert "| Alpha | nearest | x3 | auto → interpolation:cpu |" in capsys.readouterr().out
    term = Terminal(100)
    monkeypatch.setattr(sys, "stderr", term.file)
    assert main(args + ["-q"]) == 0
    assert term.text() == "" and capsys.readouterr().out == ""


def test_gallery_of_the_matlab_baseline_alone(two_sets, tmp_path, capsys):
    """``--models bicubic-matlab``: the gallery shows it beside the HR crop (it stopped with
    "compare needs at least one model (-m a,b,c)" after the run: the baseline was left out of
    the list handed to compare, which adds it by itself everywhere else)."""
    alpha = two_sets[0]
    gal = tmp_path / "gal"
    code, out, err = run_cli(capsys, "bench", "--models", "bicubic-matlab", "--scales", "2", "--dataset",
                             str(alpha), "--repeat", "1", "--warmup", "0", "-q", "--gallery", str(gal))
    assert (code, out, err) == (0, "", "")
    grid = cv2.imread(str(gal / "alpha" / "bird_x2.png"))
    one = compare(alpha / "bird.png", "bicubic-matlab", 2)
    assert [t.name for t in one.tiles] == ["HR (reference)", "bicubic-matlab"]
    assert np.array_equal(grid, one.grid)
