"""``srzoo export``: the dnn_superres models as ONNX files plain OpenCV 5.1 loads.

The drop-in check runs ``cv2.dnn_superres`` itself (not srzoo) on the exported
file and compares with the committed references recorded by dnn_superres on
the original ``.pb`` (tests/data/dnn_superres, OpenCV 4.14). It needs a
dnn_superres that reads ONNX (OpenCV 5.1 and later: 4.x and 5.0 only read
``.pb`` there, and those builds are covered by the .pb itself).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

import srzoo
from cvref import DNN_SUPERRES_REFS, assert_near_upsample, refs_crop
from standin import _standin_dir, edsr_standin  # noqa: F401  (fixtures)
from srzoo.cli import main

REFS = DNN_SUPERRES_REFS
FAMILIES = [("espcn", "ESPCN", "espcn", s) for s in (2, 3, 4)] + \
    [("fsrcnn", "FSRCNN", "fsrcnn", s) for s in (2, 3, 4)] + \
    [("fsrcnn-small", "FSRCNN-small", "fsrcnn", s) for s in (2, 3, 4)] + \
    [("lapsrn", "LapSRN", "lapsrn", s) for s in (2, 4, 8)]


def _dnn_superres_reads_onnx(path: Path) -> bool:
    """Can this OpenCV's dnn_superres read the ONNX file ``path``? (5.1: yes;
    4.x and 5.0 parse every file as a TensorFlow GraphDef.)"""
    try:
        cv2.dnn_superres.DnnSuperResImpl_create().readModel(str(path))
        return True
    except cv2.error:
        return False


def test_export_writes_each_dnn_superres_model_as_a_drop_in(models_env, shared_dir, tmp_path, capsys):
    code = main(["export", "--all-opencv", "-o", str(tmp_path / "out"), "-q"])
    out, err = capsys.readouterr()
    # EDSR's .pb files are not in the local mirror: one line each, the others written
    assert code == 1 and err.count("srzoo: error: edsr x") == 3 and "3 of 15 model(s) not exported" in err
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(f"{f}_x{s}.onnx" for _, f, _, s in FAMILIES)
    assert 'setModel("lapsrn", 8)' in out
    for _, f, _, s in FAMILIES:
        m = onnx.load(str(tmp_path / "out" / f"{f}_x{s}.onnx"))
        onnx.checker.check_model(m)
        assert len(m.graph.output) == 1  # a pyramid keeps its own level only: what upsample() reads
    if not _dnn_superres_reads_onnx(tmp_path / "out" / "ESPCN_x2.onnx"):
        pytest.skip(f"cv2.dnn_superres {cv2.__version__} reads only .pb files (OpenCV < 5.1)")
    img = refs_crop(shared_dir)
    for name, f, algo, s in FAMILIES:
        sr = cv2.dnn_superres.DnnSuperResImpl_create()
        sr.readModel(str(tmp_path / "out" / f"{f}_x{s}.onnx"))
        sr.setModel(algo, s)
        ref = cv2.imread(str(REFS / f"{name}_x{s}.png"), cv2.IMREAD_COLOR)
        assert_near_upsample(sr.upsample(img), ref, f"{name} x{s}")
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        gref = cv2.imread(str(REFS / f"{name}_x{s}_grey.png"), cv2.IMREAD_UNCHANGED)
        out_g = sr.upsample(grey)
        assert np.abs(out_g.astype(int) - gref).max() <= 1, (name, s)


def test_edsr_export_is_a_drop_in_too(edsr_standin, tmp_path):
    """EDSR (here a stand-in with its structure, built as a GraphDef by
    tests/standin.py) is exported NCHW in and out (io.export_layout): OpenCV
    5.1's dnn_superres feeds and reads EDSR that way. Its upsample() on the
    exported file against srzoo's own output, which test_upscale.py checks
    against upsample() on the .pb where OpenCV reads .pb files."""
    import onnx

    done = srzoo.export("edsr", 2, tmp_path)
    assert done.path.name == "EDSR-standin_x2.onnx" and done.algorithm == "edsr"
    inp = onnx.load(str(done.path)).graph.input[0].type.tensor_type.shape.dim
    assert inp[1].dim_value == 3  # NCHW: channels second
    if not _dnn_superres_reads_onnx(done.path):
        pytest.skip(f"cv2.dnn_superres {cv2.__version__} reads only .pb files (OpenCV < 5.1)")
    img = np.random.default_rng(2).integers(0, 256, (23, 29, 3), dtype=np.uint8)
    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    sr.readModel(str(done.path))
    sr.setModel("edsr", 2)
    out = sr.upsample(img)
    assert out.shape == (46, 58, 3)
    assert np.abs(out.astype(int) - srzoo.upscale(img, "edsr", 2, backend="opencv:cpu")).max() <= 1


def test_export_api_and_refusals(models_env, tmp_path):
    done = srzoo.export("lapsrn", 4, tmp_path)
    assert done.path == tmp_path / "LapSRN_x4.onnx" and done.outputs == ("NCHW_output_4x",)
    assert done.algorithm == "lapsrn" and done.source == "graphdef-onnx"
    before = done.path.read_bytes()
    with pytest.raises(srzoo.SrzooError, match=r"LapSRN_x4.onnx: already exists; pass --force"):
        srzoo.export("lapsrn", 4, done.path)
    assert srzoo.export("lapsrn", 4, done.path, force=True).path.read_bytes() == before
    # never through a symlink or onto a device, even with force
    link = tmp_path / "link.onnx"
    link.symlink_to(os.devnull)
    with pytest.raises(srzoo.SrzooError, match=r"link.onnx: exists and is a symlink"):
        srzoo.export("espcn", 2, link, force=True)
    assert link.is_symlink() and os.readlink(link) == os.devnull
    with pytest.raises(srzoo.SrzooError, match=r"ending in .onnx"):
        srzoo.export("espcn", 2, tmp_path / "x.pb")
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary file left


def test_export_cli_errors_are_one_line(models_env, tmp_path, capsys):
    for argv, text in [(["export"], "name a model to export"),
                       (["export", "nope", "-o", str(tmp_path / "n.onnx")], "unknown model 'nope'"),
                       (["export", "--all-opencv"], "--all-opencv needs -o DIR"),
                       (["export", "espcn", "--all-opencv", "-o", str(tmp_path)], "give no NAME")]:
        code = main(argv)
        _, err = capsys.readouterr()
        assert code == 1 and err.count("\n") == 1 and text in err, (argv, err)


def test_export_of_a_published_onnx_is_the_file_itself(models_env, tmp_path):
    entry = srzoo.get_model("default", 2)
    done = srzoo.export("default", 2, tmp_path / "d.onnx")
    assert done.source == "published"
    bundled = Path(srzoo.__file__).parent / "builtin" / "srzoo_x2.onnx"
    assert done.path.read_bytes() == bundled.read_bytes()
    assert entry.format == "onnx"
