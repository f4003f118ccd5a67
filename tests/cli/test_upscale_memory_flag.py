"""``srzoo upscale --memory SIZE``: the budget of :func:`srzoo.upscale`'s ``memory=``
from the command line; a bad size is one ``srzoo: error:`` line."""

from __future__ import annotations

import json

import cv2
import numpy as np

import srzoo
from srzoo.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_memory_flag_tiles_like_the_api_and_bad_sizes_are_one_line(models_env, shared_dir,
                                                                   tmp_path, capsys):
    img = cv2.imread(str(shared_dir / "datasets" / "Set14" / "baboon.png"))[:96, :120]
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), img)
    store = models_env / "autotune.json"
    store.unlink(missing_ok=True)
    # a 64 KB budget: the input is too large for it, so the model's memory per pixel is
    # measured (kept in autotune.json) and the image is cut into tiles that fit
    code, out, err = _run(capsys, "upscale", str(src), "-m", "espcn", "-s", "2", "-o",
                          str(tmp_path / "a.png"), "--memory", "64K", "--backend", "opencv:cpu")
    assert code == 0, err
    recs = json.loads(store.read_text())
    assert any(k.startswith("memory-") and v["model"] == "espcn" for k, v in recs.items())
    got = cv2.imread(str(tmp_path / "a.png"))
    want = srzoo.upscale(img, "espcn", 2, backend="opencv:cpu", memory="64K")
    whole = srzoo.upscale(img, "espcn", 2, backend="opencv:cpu", memory=0)
    assert got.shape == (192, 240, 3)
    assert np.array_equal(got, want)
    assert np.abs(got.astype(int) - whole).max() <= 1  # tiles keep the receptive field
    for bad in ("lots", "2 GB please", "-1"):
        code, out, err = _run(capsys, "upscale", str(src), "-m", "espcn", "-o",
                              str(tmp_path / "b.png"), "--memory", bad)
        assert code != 0
        assert err.count("\n") == 1 and err.startswith("srzoo: error: --memory"), err
        assert "2G or 500M" in err and "Traceback" not in err
        assert not (tmp_path / "b.png").exists()
