"""Video (multi-frame) architectures of the catalogue are listed as not runnable, with why."""

from __future__ import annotations

from srzoo.hub.catalog import records


def _record(arch: str, rtype: str) -> records.Record:
    raw = {"name": "x", "author": "a", "license": "MIT", "tags": [], "description": "", "date": "2024-01-01",
           "architecture": arch, "size": None, "scale": 2, "inputChannels": 3, "outputChannels": 3,
           "resources": [{"platform": "onnx" if rtype == "onnx" else "pytorch", "type": rtype, "size": 10,
                          "sha256": "0" * 64, "urls": ["https://github.com/o/r/releases/download/v1/x." + rtype]}]}
    return records.parse_record("2x-test", raw)


def test_video_architectures_say_why():
    for arch, rtype in (("sofvsr", "pth"), ("tscunet", "onnx"), ("rife", "pth")):
        rec = _record(arch, rtype)
        assert rec.runnable == "no"
        why = rec.why_not_runnable()
        assert why.startswith("omdb:2x-test is a video model (") and arch in why and "single-image" in why


def test_image_architectures_unchanged():
    assert _record("realplksr", "pth").runnable == "yes"
    assert _record("dat", "pth").runnable == "yes"
    assert _record("spsr", "onnx").runnable == "onnx"
    assert _record("spsr", "pth").runnable == "yes"  # converted since issue 22 (srzoo.convert.arch.spsr)
    assert "no converter for ditn" in _record("ditn", "pth").why_not_runnable()
