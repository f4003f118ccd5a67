"""srzoo list / fetch / cache / info (srzoo/cli/models.py): the exact text of
``srzoo info`` from hand-made info dicts, one real ``srzoo info`` run with
remembered auto choices and --model, the ``srzoo list`` table and JSON, and
``srzoo cache ls / verify / rm`` on a real cache fed by the local mirror."""

from __future__ import annotations

import json
from pathlib import Path

from srzoo.cli import main
from srzoo.cli.models import format_info

# a reason long enough to wrap, with a hyphenated word near the margin and a URL longer than a line
REASON_CUDA = ("this onnxruntime has no CUDAExecutionProvider (has: cpu,azure): pip install "
               "'srzoo[onnxruntime-gpu]' with the CUDA 12 and cuDNN 9 libraries it names, see "
               "https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html#requirements-and-more")


def _row(name: str, usable: bool, reason: str = "", precisions: list | None = None) -> dict:
    engine, target = name.split(":")
    return {"name": name, "engine": engine, "target": target, "usable": usable, "reason": reason,
            "precisions": precisions or []}


def _gpu_info() -> dict:
    """A machine with OpenCL, CUDA DNN, the TF importer, a model asked for with --model."""
    return {
        "srzoo": "9.8.7", "python": "3.99.1", "numpy": "7.0.1", "platform": "Plan9-amd64",
        "opencv": "4.10.0", "cache_dir": "/c/srzoo",
        "capabilities": {
            "opencv_version": "4.10.0-pre01", "tf_importer": True, "classic_engine": True,
            "cpu_only_engine": False, "opencl": True, "opencl_device": "Intel(R) UHD 770",
            "cuda_dnn": True,
            "engines": {"onnxruntime": {"onnxruntime": "1.20.1-dev"},
                        "opencv": {"opencv": "4.10.0"},
                        "interpolation": {"opencv": "4.10.0", "numpy": "7.0.1"},
                        "ncnn": {"ncnn": "20240820-1", "vulkan": "1.3.275",
                                 "driver": "NVIDIA r550.54 with a name long enough to pass the margin"}}},
        "backends": [
            _row("opencv:cpu", True, precisions=["fp32"]),
            _row("onnxruntime:cuda", False, REASON_CUDA),
            _row("interpolation:cpu", True),
            _row("onnxruntime:rocm", False, "no ROCm"),
            _row("openvino:auto", True),
            _row("onnxruntime:cpu", True, precisions=["fp32", "int8"]),
            _row("onnxruntime:dml", False, "Windows only"),
            _row("onnxruntime:tensorrt", False, REASON_CUDA),
            _row("onnxruntime:qnn", False, "Windows only"),
            _row("ncnn:vulkan", True, precisions=["fp32", "fp16"]),
            _row("openvino:npu", False, "no NPU"),
            _row("onnxruntime:js", False, "Windows only"),
            _row("onnxruntime:cann", False, "no CANN"),
            _row("onnxruntime:coreml", False, "macOS only"),
            _row("onnxruntime:webgpu", False, "no WebGPU"),
            _row("onnxruntime:xnnpack", False, "no XNNPACK"),
        ],
        "auto": {
            "SRZOO_BACKEND": "opencv:cpu", "trials": "on",
            "static_order": " onnxruntime:cpu , opencv:cpu, js, onnxruntime:cuda, opencv:cuda, "
                            "openvino:gpu, openvino:cpu,",
            "model": "espcn x4 (backend='auto')", "chosen": "opencv:cpu",
            "why": "SRZOO_BACKEND names it (env) and it is usable here; the static order would have "
                   "taken onnxruntime:cpu first",
            "remembered": [
                {"model": "fsrcnn", "scale": 3, "class": "small", "threads": 4, "backend": "onnxruntime:cpu",
                 "times": "onnxruntime:cpu 9.0 ms, openvino:cpu 9.4 ms, opencv:cpu 11.3 ms"},
                {"model": "default", "scale": 2, "class": "large", "threads": None, "backend": "opencv:cpu",
                 "times": ""}],
        },
    }


GPU_HEAD = """\
espcn x4 (backend='auto') runs on opencv:cpu: SRZOO_BACKEND names it (env) and
it is usable here; the static order would have taken onnxruntime:cpu first

srzoo 9.8.7, Python 3.99.1, numpy 7.0.1
platform: Plan9-amd64
OpenCV 4.10.0-pre01: reads TensorFlow .pb; classic and new DNN engines; OpenCL
on Intel(R) UHD 770; CUDA DNN yes
cache: /c/srzoo

usable backends (auto's order; * never picked by auto):
  onnxruntime:cpu          onnxruntime 1.20.1 [fp32/int8]
  opencv:cpu               opencv 4.10.0
  interpolation:cpu        opencv 4.10.0, numpy 7.0.1
  openvino:auto*
  ncnn:vulkan*             ncnn 20240820, vulkan 1.3.275, driver NVIDIA r550.54

not usable here:
  onnxruntime: cuda, tensorrt
      this onnxruntime has no CUDAExecutionProvider (has: cpu,azure): pip
      install 'srzoo[onnxruntime-gpu]' with the CUDA 12 and cuDNN 9 libraries it
      names, see
      https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html#requirements-and-more
  onnxruntime: rocm
      no ROCm
"""

GPU_TAIL = """
auto:
  SRZOO_BACKEND: opencv:cpu
  trials: on
  static_order:  onnxruntime:cpu , opencv:cpu, js, onnxruntime:cuda,
  opencv:cuda, openvino:gpu, openvino:cpu,
  remembered: fsrcnn x3 small threads=4: onnxruntime:cpu (onnxruntime:cpu 9.0
  ms, openvino:cpu 9.4 ms, opencv:cpu 11.3 ms)
  remembered: default x2 large threads=None: opencv:cpu ()"""


def test_format_info_exact_text_folds_the_third_group_by_default():
    text = format_info(_gpu_info())  # all_groups defaults to False
    assert text == GPU_HEAD + """\
  openvino: npu
      no NPU
  onnxruntime: also dml, qnn, js, cann, coreml, webgpu, xnnpack (srzoo info
  --all says why)
""" + GPU_TAIL
    assert max(len(line) for line in text.splitlines() if "https://" not in line) <= 80


def test_format_info_all_groups_shows_every_reason():
    text = format_info(_gpu_info(), all_groups=True)
    assert text == GPU_HEAD + """\
  onnxruntime: dml, qnn, js
      Windows only
  openvino: npu
      no NPU
  onnxruntime: cann
      no CANN
  onnxruntime: coreml
      macOS only
  onnxruntime: webgpu
      no WebGPU
  onnxruntime: xnnpack
      no XNNPACK
""" + GPU_TAIL


def test_format_info_bare_minimum_no_capabilities_no_auto():
    info = {"srzoo": "1", "python": "3.12.0", "numpy": "2.0", "platform": "p", "opencv": "4.5.0",
            "cache_dir": "/x"}
    assert format_info(info).splitlines() == [
        "srzoo 1, Python 3.12.0, numpy 2.0", "platform: p", "OpenCV 4.5.0", "cache: /x", "", "auto:"]


def test_format_info_usable_backends_without_capabilities_or_auto():
    info = {"srzoo": "1", "python": "3.12.0", "numpy": "2.0", "platform": "p", "opencv": "4.5.0",
            "cache_dir": "/x", "backends": [_row("opencv:cpu", True), _row("interpolation:cpu", True)]}
    assert format_info(info).splitlines() == [
        "srzoo 1, Python 3.12.0, numpy 2.0", "platform: p", "OpenCV 4.5.0", "cache: /x", "",
        "usable backends (auto's order; * never picked by auto):", "  opencv:cpu*", "  interpolation:cpu",
        "", "auto:"]


def test_format_info_cpu_only_opencv_without_tf_importer():
    info = {"srzoo": "1", "python": "3.12.0", "numpy": "2.0", "platform": "p", "opencv": "5.1.0",
            "cache_dir": "/x",
            "capabilities": {"tf_importer": False, "cpu_only_engine": True, "classic_engine": True,
                             "opencl": False, "opencl_device": "", "cuda_dnn": False},
            "backends": [_row("opencv:cuda", False, "")],
            "auto": {"SRZOO_BACKEND": None, "trials": "", "static_order": "opencv:cpu"}}
    assert format_info(info).splitlines() == [
        "srzoo 1, Python 3.12.0, numpy 2.0", "platform: p",
        "OpenCV ?: no TensorFlow importer (the .pb models run from their derived ONNX);",
        "new DNN engine only (CPU); OpenCL not usable; CUDA DNN no",
        "cache: /x", "", "not usable here:", "  opencv: cuda", "", "", "auto:", "  static_order: opencv:cpu"]


def test_format_info_capabilities_without_the_optional_keys():
    info = {"srzoo": "1", "python": "3.12.0", "numpy": "2.0", "platform": "p", "opencv": "4.9.0",
            "cache_dir": "/x", "capabilities": {"opencv_version": "4.9.0"},
            "backends": [_row("opencv:cpu", True)], "auto": {"static_order": "opencv:cpu"}}
    assert format_info(info).splitlines() == [
        "srzoo 1, Python 3.12.0, numpy 2.0", "platform: p",
        "OpenCV 4.9.0: reads TensorFlow .pb; OpenCL not usable; CUDA DNN no",
        "cache: /x", "", "usable backends (auto's order; * never picked by auto):",
        "  opencv:cpu", "", "auto:", "  static_order: opencv:cpu"]


# ---- srzoo info: one real run -------------------------------------------------------------------
def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_real_run_remembered_choices_and_model(srzoo_env, capsys, monkeypatch):
    import cv2

    srzoo_env.mkdir(parents=True, exist_ok=True)
    (srzoo_env / "autotune.json").write_text(json.dumps({
        "k1": {"model": "espcn", "scale": 4, "class": "small", "threads": 2, "backend": "openvino:cpu",
               "times_ms": {"opencv:cpu": 12.345, "openvino:cpu": 3.04, "onnxruntime:cpu": 7.96}},
        "k2": "not a choice",
        "k3": {"model": "fsrcnn"}}))
    monkeypatch.setenv("SRZOO_BACKEND", "opencv:cpu")
    code, out, _ = run(capsys, "info", "--json", "--model", "default", "--threads", "1")
    info = json.loads(out)
    assert code == 0 and out.startswith('{\n  "srzoo": ')  # indent=2
    assert info["cache_dir"] == str(srzoo_env) and info["opencv"] == cv2.__version__
    assert info["auto"] == {
        "SRZOO_BACKEND": "opencv:cpu", "trials": "off (SRZOO_AUTOTUNE=0)",
        "static_order": info["auto"]["static_order"],
        "remembered": [
            {"model": "espcn", "scale": 4, "class": "small", "threads": 2, "backend": "openvino:cpu",
             "times": "openvino:cpu 3.0 ms, onnxruntime:cpu 8.0 ms, opencv:cpu 12.3 ms"},
            {"model": "fsrcnn", "scale": None, "class": None, "threads": None, "backend": None, "times": ""}],
        "model": "default x2 (backend='auto')", "chosen": "opencv:cpu", "why": "asked for"}
    assert "opencv:cpu" in info["auto"]["static_order"].split(", ")

    monkeypatch.delenv("SRZOO_BACKEND")
    code, out, _ = run(capsys, "info", "--model", "default", "-s", "3", "--backend", "opencv:cpu")
    lines = out.splitlines()
    assert code == 0 and lines[:2] == ["default x3 (backend='opencv:cpu') runs on opencv:cpu: asked for", ""]
    assert f"cache: {srzoo_env}" in lines
    assert lines[lines.index("auto:") + 1:] == [
        "  trials: off (SRZOO_AUTOTUNE=0)", lines[lines.index("auto:") + 2],
        "  remembered: espcn x4 small threads=2: openvino:cpu (openvino:cpu 3.0 ms,",
        "  onnxruntime:cpu 8.0 ms, opencv:cpu 12.3 ms)",
        "  remembered: fsrcnn xNone None threads=None: None ()"]
    assert lines[lines.index("auto:") + 2].startswith("  static_order: ")

    monkeypatch.setenv("SRZOO_AUTOTUNE", "1")  # trials on (no --model: nothing is measured)
    code, out, _ = run(capsys, "info", "--json")
    assert code == 0 and json.loads(out)["auto"]["trials"] == "on"


def test_info_all_lists_every_unusable_group(capsys):
    """``srzoo info`` folds an engine's third unusable group and later; --all shows them.
    Compared by the groups each prints, whatever this machine's backends are."""
    code, short, _ = run(capsys, "info")
    code_all, full, _ = run(capsys, "info", "--all")
    assert code == code_all == 0
    def heads(text):  # "  engine: target, ..." lines of the not-usable block
        block = text.partition("\nnot usable here:\n")[2].split("\n\nauto:")[0]
        return [ln for ln in block.splitlines() if ln.startswith("  ") and not ln.startswith("   ")
                and ": " in ln]
    engines = [h.split(":")[0].strip() for h in heads(full)]
    folded = sorted({e for e in engines if engines.count(e) > 2})
    assert [h.split(":")[0].strip() for h in heads(short) if ": also " in h] == folded
    assert not [h for h in heads(full) if ": also " in h]
    assert len(heads(full)) == len(heads(short)) - len(folded) + sum(engines.count(e) - 2 for e in folded)


def test_info_record_without_a_catalogue_says_how_to_get_one(srzoo_env, capsys):
    code, out, err = run(capsys, "info", "omdb:4x-nope")
    assert code == 1 and out == ""
    assert err.startswith("srzoo: error: the OpenModelDB catalogue ") and "srzoo catalog update" in err


# ---- srzoo list ---------------------------------------------------------------------------------
def _bare_manifest(tmp_path, monkeypatch):
    """A user manifest with one model that has no tags and no description."""
    man = tmp_path / "bare.toml"
    man.write_text('schema = 1\n\n[[model]]\nname = "zz-bare"\nscale = 2\nformat = "onnx"\n'
                   'license = "MIT"\nfile = "zz_bare_x2.onnx"\nsize = 2048\n'
                   f'sha256 = "{"ab" * 32}"\nurls = ["https://example.invalid/zz_bare_x2.onnx"]\n')
    monkeypatch.setenv("SRZOO_REGISTRY", str(man))


def test_list_table_cells_and_purpose_lines(srzoo_env, capsys, tmp_path, monkeypatch):
    _bare_manifest(tmp_path, monkeypatch)
    code, out, _ = run(capsys, "list", "[bcdz]*")
    table_, purpose = out.split("\n\n")
    rows = {(ln.split()[0], ln.split()[1]): ln.split()[2:] for ln in table_.splitlines()[2:]}
    assert code == 0
    assert rows[("bicubic", "any")] == ["-", "-", "interpolation", "Apache-2.0", "-", "baseline"]
    assert rows[("default", "x3")] == ["srzoo_x3.onnx", "161.5", "KiB", "onnx", "Apache-2.0", "built-in",
                                       "photo,fast,offline"]
    assert rows[("carn-m", "x4")] == ["carn_m.pth", "1.6", "MiB", "pytorch-pth", "(convert)", "MIT", "no",
                                      "photo,fast"]
    assert rows[("zz-bare", "x2")] == ["zz_bare_x2.onnx", "2.0", "KiB", "onnx", "MIT", "no", "-"]
    # purpose lines: described names only, aligned on the longest of them ("bilinear", "zz-bare" has none)
    assert purpose.splitlines() == [
        "bicubic   Bicubic (cv2.INTER_CUBIC, a = -0.75); the standard SR baseline.",
        "bilinear  Bilinear (cv2.INTER_LINEAR).",
        "carn-m    Lightweight cascading residual network on RGB, x2-x4: good quality for its speed.",
        "default   srzoo's built-in model: compact post-upsampling CNN on Y, runs with OpenCV alone"]


def test_list_without_any_description_prints_no_purpose_block(srzoo_env, capsys, tmp_path, monkeypatch):
    _bare_manifest(tmp_path, monkeypatch)
    code, out, _ = run(capsys, "list", "zz-*")
    assert code == 0 and len(out.splitlines()) == 3 and "\n\n" not in out


def test_list_json_indent_and_derived(srzoo_env, capsys):
    code, out, _ = run(capsys, "list", "--json", "[cd]*")
    rows = {(r["name"], r["scale"]): r for r in json.loads(out)}
    assert code == 0 and out.startswith('[\n  {\n    "name": ')
    assert rows[("carn-m", 2)]["derived"] is True and rows[("carn-m", 2)]["cached"] is False
    assert rows[("default", 2)]["derived"] is False and rows[("default", 2)]["cached"] is True


def test_list_catalogue_filters_without_catalog_are_refused(srzoo_env, capsys):
    for extra in (["--arch", "esrgan"], ["--scale", "4"], ["--runnable"]):
        code, out, err = run(capsys, "list", *extra)
        assert (code, out) == (1, "")
        assert err == ("srzoo: error: --arch, --scale and --runnable filter a catalogue: "
                       "add --catalog openmodeldb\n")
    code, _, err = run(capsys, "list", "--catalog", "nope")
    assert code == 1 and err == "srzoo: error: unknown catalogue 'nope'; srzoo knows: openmodeldb\n"


# ---- srzoo cache ls / verify / rm on a real cache ------------------------------------------------
def _cells(out: str) -> list[list[str]]:
    """The rows of a table printed by srzoo (cells are separated by two spaces or more)."""
    import re

    return [re.split(r"\s{2,}", ln.strip()) for ln in out.splitlines()[2:]]


def _two_member_manifest(tmp_path, shared_dir):
    """srcnn-arc x2 and x3: two members of one local tar.gz (built byte-identical every time)."""
    import gzip
    import hashlib
    import io
    import tarfile

    data = (shared_dir / "models" / "srcnn" / "m_model_adam_new30.h5").read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name in ("pkg/weights/srcnn.h5", "pkg/weights/srcnn3.h5"):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            t.addfile(info, io.BytesIO(data))
    arc = tmp_path / "weights.tar.gz"
    arc.write_bytes(gzip.compress(buf.getvalue(), mtime=0))
    sha = hashlib.sha256(arc.read_bytes()).hexdigest()
    man = tmp_path / "m.toml"
    man.write_text("schema = 1\n" + "".join(
        f'[[model]]\nname = "srcnn-arc"\nscale = {s}\nformat = "keras-h5"\nlicense = "x"\npath = "{arc}"\n'
        f'size = {arc.stat().st_size}\nsha256 = "{sha}"\nmember = "pkg/weights/{m}"\n[model.io]\n'
        f'color = "y"\nrange = 1.0\nlayout = "nchw"\npre_upsample = "bicubic"\n'
        for s, m in ((2, "srcnn.h5"), (3, "srcnn3.h5"))))
    return man


def _flip(path, at: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_cache_ls_verify_rm_with_models_datasets_derived_int8_and_members(
        srzoo_env, tmp_path, shared_dir, monkeypatch, capsys):
    import srzoo
    from srzoo.cli._format import size
    from srzoo.hub import api
    from srzoo.runtime import quantize
    from srzoo.runtime.upscaler import Upscaler

    monkeypatch.setenv("SRZOO_REGISTRY", str(_two_member_manifest(tmp_path, shared_dir)))
    code, out, _ = run(capsys, "fetch", "espcn", "fsrcnn-small", "-s", "2", "-q")
    pb, small = srzoo_env / "models" / "ESPCN_x2.pb", srzoo_env / "models" / "FSRCNN-small_x2.pb"
    assert code == 0 and out.splitlines() == [str(pb), str(small)]
    # the ONNX that onnxruntime runs espcn from: a derived file under <cache>/derived
    onnx = srzoo.model_file(srzoo.get_model("espcn", 2), engine="onnxruntime", quiet=True)
    dfolder = onnx.parent
    members = [api.fetch_entry(srzoo.get_model("srcnn-arc", s), quiet=True) for s in (2, 3)]
    api.fetch_dataset("set5", quiet=True)
    for s in (2, 3):  # int8 models (calibrated on T91, fetched here too)
        Upscaler("default", s, backend="onnxruntime:cpu", precision="int8")
    q = {rec["scale"]: folder for folder, rec in quantize.cached()}
    stray = srzoo_env / "models" / "stray.bin"
    stray.write_bytes(b"x" * 10)
    junk = srzoo_env / "derived" / "junk-folder"  # a derived folder without record or file
    junk.mkdir()
    capsys.readouterr()

    code, out, err = run(capsys, "cache", "ls")
    rows = _cells(out)
    assert code == 0 and out.splitlines()[0].split() == ["model", "file", "size"]
    assert rows[:4] == [["espcn x2", "models/ESPCN_x2.pb", "84.4 KiB"],
                        ["fsrcnn-small x2", "models/FSRCNN-small_x2.pb", "9.4 KiB"],
                        ["?", "models/stray.bin", "10 B"],
                        ["srcnn-arc x2", "models/weights.tar.gz", size((tmp_path / "weights.tar.gz").stat().st_size)]]
    data_rows = rows[4:21]
    assert ["dataset set5", "datasets/set5/bird.png", "117.6 KiB"] in data_rows
    assert [r[0] for r in data_rows] == ["dataset set5"] * 5 + ["dataset t91"] * 12
    assert rows[21:] == [
        ["espcn x2 (derived)", f"derived/{dfolder.name}/model.onnx", size(onnx.stat().st_size)],
        ["? x? (derived)", "derived/junk-folder/model.onnx", "0 B"],
        ["default x2 (int8)", f"quantized/{q[2].name}/model.onnx", size((q[2] / "model.onnx").stat().st_size)],
        ["default x3 (int8)", f"quantized/{q[3].name}/model.onnx", size((q[3] / "model.onnx").stat().st_size)]]
    total = sum(p.stat().st_size for p in (srzoo_env / "models").iterdir() if p.is_file())
    total += sum(p.stat().st_size for p in (srzoo_env / "datasets").rglob("*.png"))
    assert err == f"21 file(s), {size(total)} in {srzoo_env}\n"

    code, out, err = run(capsys, "cache", "ls", "espcn")
    assert code == 0 and _cells(out) == [
        ["espcn x2", "models/ESPCN_x2.pb", "84.4 KiB"],
        ["espcn x2 (derived)", f"derived/{dfolder.name}/model.onnx", size(onnx.stat().st_size)]]
    assert err == f"1 file(s), 84.4 KiB in {srzoo_env}\n"
    code, out, _ = run(capsys, "cache", "ls", "set5")
    assert code == 0 and [r[0] for r in _cells(out)] == ["dataset set5"] * 5

    code, out, err = run(capsys, "cache", "verify", "espcn")
    assert (code, out.splitlines(), err) == (
        0, [f"ok      {pb}", f"ok      {onnx}"], "2 file(s) checked, 0 corrupt\n")

    code, out, err = run(capsys, "cache", "verify")
    lines = out.splitlines()
    assert code == 1 and err == "26 file(s) checked, 1 corrupt\n"
    assert lines[:4] == [f"ok      {pb}", f"ok      {small}", f"ok      {srzoo_env / 'models' / 'weights.tar.gz'}",
                         f"ok      {srzoo_env / 'datasets' / 'set5' / 'baby.png'}"]
    assert lines[20:] == [
        f"UNKNOWN {stray}: no manifest entry describes this file",
        f"ok      {onnx}",
        f"CORRUPT {junk}: {junk}: record.json is missing or unreadable; it is rebuilt on next use "
        "(or remove it with `srzoo cache rm NAME`)",
        f"ok      {q[2] / 'model.onnx'}", f"ok      {q[3] / 'model.onnx'}",
        f"ok      {members[0]}", f"ok      {members[1]}"]

    # one changed byte in each kind of file
    for p in (pb, onnx, q[2] / "model.onnx", q[3] / "model.onnx", *members):
        _flip(p)
    code, out, err = run(capsys, "cache", "verify")
    lines = out.splitlines()
    assert code == 1 and err == "26 file(s) checked, 7 corrupt\n"
    assert lines[0].startswith(f"CORRUPT {pb}: sha256 mismatch") and lines[0].endswith(
        "; repair with `srzoo fetch NAME --force` or `srzoo cache rm NAME`")
    assert lines[21].startswith(f"CORRUPT {dfolder}: {onnx}: sha256 ") and lines[22].endswith(
        "; it is rebuilt on next use (or remove it with `srzoo cache rm NAME`)")
    for line, s in zip(lines[23:25], (2, 3)):
        assert line == (f"CORRUPT {q[s]}: model.onnx does not match the sha256 in its record.json; remove it "
                        "with `srzoo cache rm default` (it is quantized again on next use)")
    for line, m in zip(lines[25:], members):
        assert line.startswith(f"CORRUPT {m}: {m}: sha256 ") and line.endswith(
            "; it is extracted again on next use (or run `srzoo fetch NAME --force`)")
    assert len(lines) == 27

    code, out, err = run(capsys, "cache", "rm", "espcn")
    assert (code, out.splitlines(), err) == (
        0, [f"removed {dfolder}", f"removed {pb}", f"removed {srzoo_env / '.verified' / 'models-ESPCN_x2.pb.json'}"],
        "3 file(s) removed\n")
    assert not pb.exists() and not dfolder.exists() and junk.is_dir() and small.is_file()
    # an int8 folder whose file is gone, one whose record has no scale: still listed under their model
    (q[2] / "model.onnx").unlink()
    rec3 = json.loads((q[3] / "record.json").read_text())
    del rec3["scale"]
    (q[3] / "record.json").write_text(json.dumps(rec3))
    code, out, _ = run(capsys, "cache", "ls", "default")
    assert code == 0 and _cells(out) == [
        ["default x2 (int8)", f"quantized/{q[2].name}/model.onnx", "0 B"],
        ["default x? (int8)", f"quantized/{q[3].name}/model.onnx", size((q[3] / "model.onnx").stat().st_size)]]
    code, out, err = run(capsys, "cache", "rm", "default")
    assert (code, sorted(out.splitlines()), err) == (
        0, sorted(f"removed {q[s]}" for s in (2, 3)),
        f"forgot 2 measured backend choice(s) of `auto` ({srzoo_env / 'autotune.json'})\n2 file(s) removed\n")
    code, out, err = run(capsys, "cache", "rm")
    assert code == 0 and out.splitlines()[0] == f"removed {junk}" and f"removed {small}" in out
    assert err == f"{len(out.splitlines())} file(s) removed\n" and not junk.exists() and not small.exists()


def test_cache_rm_goes_on_when_another_process_removed_a_derived_folder_first(srzoo_env, capsys,
                                                                              monkeypatch):
    """Two `srzoo cache rm` at once: the folder the other process deleted first (a real
    FileNotFoundError from shutil.rmtree) is skipped, the next folder is still removed."""
    import shutil

    first, second = srzoo_env / "derived" / "a-folder", srzoo_env / "derived" / "b-folder"
    for folder in (first, second):
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"onnx")
    real_rmtree = shutil.rmtree

    def other_process_wins(path, *a, **kw):
        if str(path) == str(first):
            real_rmtree(path)  # the other process
        return real_rmtree(path, *a, **kw)

    monkeypatch.setattr(shutil, "rmtree", other_process_wins)
    code, out, err = run(capsys, "cache", "rm")
    assert (code, out, err) == (0, f"removed {second}\n", "1 file(s) removed\n")
    assert not first.exists() and not second.exists()


def test_cache_rm_names_the_derived_file_it_cannot_delete(srzoo_env, capsys, monkeypatch):
    """A derived file that cannot be deleted: one line naming it, exit 1. Root (as in CI)
    deletes anything, so the PermissionError that a user gets from a folder without write
    permission is raised by shutil.rmtree's stand-in, for the real file in the real folder."""
    import errno
    import shutil

    folder = srzoo_env / "derived" / "a-folder"
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"onnx")

    def refused(path, *a, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", "model.onnx")

    monkeypatch.setattr(shutil, "rmtree", refused)
    code, out, err = run(capsys, "cache", "rm")
    assert (code, out) == (1, "")
    assert err == (f"srzoo: error: cannot delete {folder / 'model.onnx'}: permission denied "
                   f"(cache {srzoo_env}; set SRZOO_CACHE_DIR to use another folder)\n")
    assert (folder / "model.onnx").read_bytes() == b"onnx"


def test_fetch_option_conflicts_are_exact_lines(srzoo_env, tmp_path, capsys):
    """`srzoo fetch`'s own refusals, before anything is fetched: --scale with --all, and --from
    with more than one name or with --all."""
    f = tmp_path / "ESPCN_x2.pb"
    f.write_bytes(b"x")
    from_line = "--from FILE adds one file: give exactly one model name (and no --all)"
    for argv, line in ((["espcn", "--all", "-s", "2"], "give either --scale or --all, not both"),
                       (["espcn", "fsrcnn", "--from", str(f)], from_line),
                       (["espcn", "--all", "--from", str(f)], from_line)):
        assert run(capsys, "fetch", *argv) == (1, "", f"srzoo: error: {line}\n")
    assert not (srzoo_env / "models").exists()


def test_fetch_all_prints_a_shared_file_once_force_downloads_again_from_takes_the_scale(
        srzoo_env, shared_dir, tmp_path, capsys):
    """--all: vdsr's one file for three scales is fetched and printed once; --force downloads a
    cached file again (a new file in place); --from FILE with -s adds that scale's file."""
    code, out, _ = run(capsys, "fetch", "vdsr", "--all", "-q")
    assert code == 0 and out == f"{srzoo_env / 'models' / 'model_epoch_50.pth'}\n"
    code, out, _ = run(capsys, "fetch", "espcn", "-s", "2", "-q")
    espcn2 = srzoo_env / "models" / "ESPCN_x2.pb"
    assert code == 0 and out == f"{espcn2}\n"
    inode = espcn2.stat().st_ino
    assert run(capsys, "fetch", "espcn", "-s", "2", "-q")[:2] == (0, f"{espcn2}\n")
    assert espcn2.stat().st_ino == inode  # cached: not fetched again
    code, out, _ = run(capsys, "fetch", "espcn", "-s", "2", "-q", "--force")
    # the .pb, or on OpenCV 5.1 (no TensorFlow importer) the ONNX derived from it, rebuilt
    assert code == 0 and Path(out.strip()).is_file() and out.count("\n") == 1
    assert espcn2.stat().st_ino != inode  # downloaded again, put in place
    assert espcn2.read_bytes() == (shared_dir / "models" / "opencv" / "ESPCN_x2.pb").read_bytes()
    mine = tmp_path / "ESPCN_x3.pb"
    mine.write_bytes((shared_dir / "models" / "opencv" / "ESPCN_x3.pb").read_bytes())
    code, out, err = run(capsys, "fetch", "espcn", "-s", "3", "--from", str(mine))
    espcn3 = srzoo_env / "models" / "ESPCN_x3.pb"
    assert code == 0, err
    assert espcn3.read_bytes() == mine.read_bytes() and str(espcn3) in out


def test_cache_path_and_an_empty_cache(srzoo_env, capsys):
    assert run(capsys, "cache", "path") == (0, f"{srzoo_env}\n", "")
    code, out, err = run(capsys, "cache", "ls")
    assert (code, out) == (0, "cache is empty\n") and err == f"0 file(s), 0 B in {srzoo_env}\n"


def test_fetch_bar_on_a_terminal_unless_quiet(srzoo_env, monkeypatch, capsys):
    """stderr a real pty: `srzoo fetch` shows the download's bar, and nothing with -q."""
    import sys

    from suite import Terminal

    for quiet, scale in ((False, "2"), (True, "3")):
        term = Terminal(80)
        monkeypatch.setattr(sys, "stderr", term.file)
        assert main(["fetch", "fsrcnn", "-s", scale, *(["-q"] if quiet else [])]) == 0
        monkeypatch.setattr(sys, "stderr", sys.__stderr__)
        drawn = term.text()
        assert (f"FSRCNN_x{scale}.pb: " in drawn and "100%" in drawn) != quiet, drawn
        assert capsys.readouterr().out.strip().endswith(f"FSRCNN_x{scale}.pb")


def test_fetch_force_rebuild_fetches_a_copy_damaged_meanwhile_again_quietly_with_q(srzoo_env, monkeypatch,
                                                                                     capsys):
    """The copy `fetch --force` downloaded is damaged before its derived ONNX is rebuilt
    (another process wrote into it): the rebuild sees it, says so and fetches it again, and
    -q keeps the rebuild as quiet as the download."""
    import hashlib

    import pytest

    from srzoo.cli.models import _runs_derived
    from srzoo.convert import derive
    from srzoo.hub import api

    if not _runs_derived(api.get_model("espcn", 2)):
        pytest.skip("this OpenCV reads the .pb itself: nothing is derived")
    pb = srzoo_env / "models" / "ESPCN_x2.pb"
    real = derive.remove_for

    def damaged_meanwhile(name, scale):
        removed = real(name, scale)
        _flip(pb, 100)
        return removed

    monkeypatch.setattr(derive, "remove_for", damaged_meanwhile)
    for quiet in (True, False):
        code, out, err = run(capsys, "fetch", "espcn", "-s", "2", "--force", *(["-q"] if quiet else []))
        assert code == 0 and out.endswith("/model.onnx\n"), (out, err)
        notes = [ln for ln in err.splitlines() if not ln.startswith("removed ")]
        if quiet:
            assert notes == [], err
        else:
            assert len(notes) == 1 and notes[0].startswith("srzoo: ") and "ESPCN_x2.pb" in notes[0], err
            assert notes[0].endswith("; fetching it again"), err
        # the damaged copy was replaced by a verified one
        assert hashlib.sha256(pb.read_bytes()).hexdigest() == api.get_model("espcn", 2).artifact.sha256


def test_cache_verify_counts_every_corrupt_file_and_rm_takes_the_partials(srzoo_env, capsys):
    from srzoo.hub import api, cache

    assert run(capsys, "fetch", "espcn", "-s", "2", "-q")[0] == 0
    assert run(capsys, "fetch", "espcn", "-s", "3", "-q")[0] == 0
    for s in (2, 3):
        _flip(srzoo_env / "models" / f"ESPCN_x{s}.pb")
    code, out, err = run(capsys, "cache", "verify", "espcn")
    assert code == 1 and err.endswith(" 2 corrupt\n") and out.count("CORRUPT ") == 2
    # a partial download and its record: removed with the model's files
    art = api.get_model("espcn", 4).artifact
    part = cache.partial_path(art)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"half")
    side = part.with_name(part.name + ".json")
    side.write_text("{}")
    code, out, err = run(capsys, "cache", "rm", "espcn")
    assert code == 0 and not part.exists() and not side.exists()
    assert f"removed {part}" in out.splitlines() and f"removed {side}" in out.splitlines()


def test_fetch_force_rebuilds_the_derived_onnx_of_that_scale_only(srzoo_env, capsys):
    """`fetch --force` of one scale removes and rebuilds that scale's derived ONNX, not the
    other scales' (OpenCV 5.1 runs the .pb models from a derived ONNX)."""
    import pytest

    for s in ("2", "3"):
        assert run(capsys, "fetch", "espcn", "-s", s, "-q", "--force")[0] == 0
    x2 = sorted((srzoo_env / "derived").glob("espcn-x2-*")) if (srzoo_env / "derived").exists() else []
    x3 = sorted((srzoo_env / "derived").glob("espcn-x3-*")) if (srzoo_env / "derived").exists() else []
    if not x2 and not x3:
        pytest.skip("this OpenCV reads the .pb itself: nothing is derived")
    assert len(x2) == len(x3) == 1  # x3's --force left x2's in place
    inode3 = (x3[0] / "model.onnx").stat().st_ino
    code, out, err = run(capsys, "fetch", "espcn", "-s", "2", "-q", "--force")
    assert code == 0 and err == f"removed {x2[0]}\n" and out == f"{x2[0] / 'model.onnx'}\n"
    assert (x3[0] / "model.onnx").stat().st_ino == inode3  # x3's untouched
    # removing the model counts both derived folders with its files, one line each
    code, out, err = run(capsys, "cache", "rm", "espcn")
    lines = out.splitlines()
    assert f"removed {x2[0]}" in lines and f"removed {x3[0]}" in lines
    assert code == 0 and err.splitlines()[-1] == f"{len(lines)} file(s) removed", err
