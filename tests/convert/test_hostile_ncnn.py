"""Crafted ncnn models: the real realesr-animevideov3-x2 / realesrgan-x4plus .param files
edited line by line (their real .bin beside them). Each is refused with one line naming
the file and the layer, before weights are read or a probe allocated."""

from __future__ import annotations

import os
import re
import tracemalloc
from pathlib import Path

import pytest

from srzoo.convert import ncnn
from srzoo.convert.files import convert_file, inspect_file
import hostile_files as hf  # noqa: E402
from srzoo.errors import ModelLoadError

SMALL = "esrgan-ncnn/realesr-animevideov3-x2"
BIG = "esrgan-ncnn/realesrgan-x4plus"


@pytest.fixture
def edit(tmp_path, shared_dir):
    def make(fn, model: str = SMALL) -> Path:
        src = shared_dir / "models" / (model + ".param")
        lines = src.read_text().split("\n")
        lines = fn(lines)
        dst = tmp_path / Path(model).name
        (tmp_path / (dst.name + ".param")).write_text("\n".join(lines))
        os.symlink(shared_dir / "models" / (model + ".bin"), tmp_path / (dst.name + ".bin"))
        return tmp_path / (dst.name + ".param")
    return make


def sub(pattern: str, repl: str, count: int = 1):
    def fn(lines: list[str]) -> list[str]:
        text = "\n".join(lines)
        new = re.sub(pattern, repl, text, count=count, flags=re.M)
        assert new != text, pattern
        return new.split("\n")
    return fn


def refused(path: Path, *words: str) -> str:
    for fn in (inspect_file, lambda p: convert_file(p, p.with_suffix(".onnx"))):
        msg = hf.refusal(fn, path, ModelLoadError, *words)
    return msg


CASES = {
    "unknown blob": (sub(r"(Conv_2 +1 1) 56 ", r"\1 nosuch "), "reads blob 'nosuch'"),
    "cycle": (sub(r"(Conv_0 +1 1) input.1_splitncnn_1 ", r"\1 57 "), "reads blob '57'"),
    "no Input": (sub(r"^Input .*$", "Noop in0 1 1 x data"), "0 Input layers"),
    "zero channels": (sub(r"(Conv_0 .*) 0=64 ", r"\1 0=0 "), "parameter 0=0"),
    "zero kernel": (sub(r"(Conv_0 .*) 1=3 ", r"\1 1=0 "), "parameter 1=0"),
    "zero stride": (sub(r"(Conv_0 .* 1=3) ", r"\1 3=0 "), "parameter 3=0"),
    "float channels": (sub(r"(Conv_0 .*) 0=64 ", r"\1 0=6.4e1 "), "must be an integer"),
    "PixelShuffle 0": (sub(r"(DepthToSpace_35 .*) 0=4", r"\1 0=0"), "parameter 0=0"),
    "weight count mismatch": (sub(r"(Conv_0 .*) 6=1728", r"\1 6=1729"), "1729 weights"),
    "PReLU 0 slopes": (sub(r"(PRelu_1 .*) 0=64", r"\1 0=0"), "parameter 0=0"),
    "blob written twice": (sub(r"(PRelu_3 +1 1 57) 59 ", r"\1 56 "), "second time"),
    "Interp 1000": (sub(r"(Resize_37 .*) 1=4.000000e\+00 2=4.000000e\+00", r"\1 1=1000.0 2=1000.0"),
                    "scale 1000.0"),
    "Interp 0": (sub(r"(Resize_37 .*) 1=4.000000e\+00 2=4.000000e\+00", r"\1 1=0.0 2=0.0"), "scale 0.0"),
    "BinaryOp without inputs": (sub(r"^BinaryOp +Add_38 +2 1 106 111 112", "BinaryOp Add_38 0 1 112"),
                                "0 inputs"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_param_is_refused(edit, case):
    fn, words = CASES[case]
    refused(edit(fn), words)


def test_interp_scale_does_not_allocate(edit):
    """Interp 1=1000 made the verification probe allocate 32 GB: now refused from the
    parameters (the blob scales are computed on numbers, nothing allocated)."""
    p = edit(sub(r"(Resize_1177 .*) 1=2.000000e\+00 2=2.000000e\+00", r"\1 1=1000.0 2=1000.0"), BIG)
    tracemalloc.start()
    refused(p, "scale 1000.0")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200 << 20, peak  # the 33 MB .bin and its float32 copy, nothing more


def test_real_models_still_read(shared_dir):
    for m, scale in ((SMALL, 2), (BIG, 4)):
        info = inspect_file(shared_dir / "models" / (m + ".param"))
        assert info["scale"] == scale


def test_bin_of_another_model(tmp_path, shared_dir):
    p = tmp_path / "m.param"
    p.write_text((shared_dir / "models" / (SMALL + ".param")).read_text())
    (tmp_path / "m.bin").write_bytes((shared_dir / "models" / (SMALL + ".bin")).read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match=f"{tmp_path}/m.bin: ends after 5000 bytes"):
        inspect_file(p)


def test_param_as_a_fifo(tmp_path):
    p = tmp_path / "m.param"
    os.mkfifo(p)
    with pytest.raises(ModelLoadError, match="FIFO"):
        ncnn.load(p)
