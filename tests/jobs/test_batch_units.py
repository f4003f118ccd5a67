"""srzoo.jobs.batch's planning helpers on exact values, without running a network (fast:
the mutation run of jobs/batch maps this file first). URLs use fsspec's in-memory
filesystem (``memory://``), a real fsspec filesystem."""

from __future__ import annotations

import json

import pytest

from srzoo.jobs import batch
from srzoo.jobs.files import FileResult

fsspec = pytest.importorskip("fsspec")


@pytest.fixture
def mem():
    """memory://t24/ with images, a non-image, an earlier output (``_x2``) and a sub-folder."""
    fs = fsspec.filesystem("memory")
    root = "/t24"
    if fs.exists(root):
        fs.rm(root, recursive=True)
    for name in ("b.png", "a.JPG", "notes.txt", "a_x2.png", "sub/c.png", "empty/.keep"):
        fs.pipe(f"{root}/{name}", b"x")
    yield "memory://t24"
    fs.rm(root, recursive=True)


def test_expand_urls_folders_patterns_files_and_misses(mem):
    files, failed = batch._expand_urls([f"{mem}/"], "_x2")
    # images of the folder itself, sorted; not notes.txt, not the earlier output, not sub/
    assert files == ["memory:///t24/a.JPG", "memory:///t24/b.png"]
    assert failed == []
    files, failed = batch._expand_urls([f"{mem}/*.png", f"{mem}/b.png", f"{mem}/sub/c.png"], "_x2")
    # a pattern takes every file it matches (the earlier output too); each URL once, in order
    assert files == ["memory:///t24/a_x2.png", "memory:///t24/b.png", "memory:///t24/sub/c.png"]
    assert failed == []
    files, failed = batch._expand_urls([f"{mem}/*.gif", f"{mem}/empty", f"{mem}/nope.png"], "_x2")
    assert files == []
    assert failed == [FileResult(f"{mem}/*.gif", error="pattern matches no file"),
                      FileResult(f"{mem}/empty", error="folder holds no image files"),
                      FileResult(f"{mem}/nope.png", error="no such file or folder")]


def test_http_folder_and_pattern_give_each_url_once_as_listed(tmp_path):
    """A folder served over HTTP with its directory listing (Python's http.server; fsspec's
    HTTP filesystem, with aiohttp): its listing and globs return full URLs, which are taken as
    they are (never prefixed with the scheme a second time) and read back image by image."""
    import functools
    import http.server
    import threading

    import cv2
    import numpy as np

    pytest.importorskip("aiohttp", reason="fsspec's HTTP filesystem needs aiohttp")
    site = tmp_path / "site" / "in"
    site.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for name in ("b.png", "a.png", "a_bicubic_x2.png"):  # and an earlier output of the model
        cv2.imwrite(str(site / name), rng.integers(0, 256, (6, 7, 3), dtype=np.uint8))
    (site / "notes.txt").write_text("x")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path / "site"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/in"
    try:
        files, failed = batch._expand_urls([f"{base}/", f"{base}/a*.png"], "_bicubic_x2")
        assert files == [f"{base}/a.png", f"{base}/b.png", f"{base}/a_bicubic_x2.png"] and failed == []
        rep = batch.run_batch([f"{base}/"], "bicubic", 2, output=str(tmp_path / "out"), progress=False)
        assert [r.input for r in rep.results] == [f"{base}/a.png", f"{base}/b.png"] and rep.written == 2
        for name in ("a", "b"):
            src = cv2.imread(str(site / f"{name}.png"))
            got = cv2.imread(str(tmp_path / "out" / f"{name}_bicubic_x2.png"))
            assert np.array_equal(got, cv2.resize(src, (14, 12), interpolation=cv2.INTER_CUBIC))
    finally:
        server.shutdown()
        server.server_close()


def test_exists_for_urls_and_paths(mem, tmp_path):
    assert batch._exists(f"{mem}/b.png") is True and batch._exists(f"{mem}/z.png") is False
    (tmp_path / "f").write_bytes(b"")
    assert batch._exists(str(tmp_path / "f")) is True and batch._exists(str(tmp_path / "g")) is False
    assert batch.is_url("s3://b/k") and batch.is_url("memory://x") and not batch.is_url("/a/b://c")
    assert not batch.is_url("C:/x.png") and not batch.is_url("3d://x")


def test_reason_is_the_last_line_without_the_file_name():
    assert batch._reason(ValueError("a.png: cannot decode"), "a.png") == "cannot decode"
    assert batch._reason(ValueError("b.png: cannot decode"), "a.png") == "b.png: cannot decode"
    assert batch._reason(RuntimeError("Traceback\n  line\n> a.png: out of memory  \n"), "a.png") == \
        "out of memory"
    assert batch._reason(RuntimeError("> XYZ not found"), "a.png") == "XYZ not found"  # only "> " stripped
    assert batch._reason(KeyError(), "a.png") == "KeyError"  # no text: the exception's name
    assert batch._reason(OSError("  "), "a.png") == "OSError"


def test_report_counts_and_dict(tmp_path):
    results = [FileResult("a.png", output=tmp_path / "a_x2.png", seconds=0.5),
               FileResult("b.png", error="cannot decode"),
               FileResult("c.png", output=tmp_path / "c_x2.png", skipped=True)]
    records = [{"seconds": 0.5, "cpu_seconds": 0.75, "worker": "w1", "attempts": 2},
               {"seconds": 0.1, "cpu_seconds": None, "worker": None, "attempts": None}, {}]
    r = batch.BatchReport(results, 2.0, "dask", model="espcn", label="x2", records=records)
    assert (r.written, r.failed, r.skipped, r.images_per_s) == (1, 1, 1, 0.5)
    assert r.summary() == "srzoo: 1 written, 1 failed, 1 skipped in 2.0 s (0.50 images/s, dask)"
    assert r.to_dict() == {
        "model": "espcn", "size": "x2", "executor": "dask", "written": 1, "failed": 1, "skipped": 1,
        "seconds": 2.0, "images_per_s": 0.5, "files": [
            {"input": "a.png", "output": str(tmp_path / "a_x2.png"), "status": "written", "error": None,
             "seconds": 0.5, "cpu_seconds": 0.75, "worker": "w1", "attempts": 2},
            {"input": "b.png", "output": None, "status": "failed", "error": "cannot decode",
             "seconds": 0.1, "cpu_seconds": None, "worker": None, "attempts": 0},
            {"input": "c.png", "output": str(tmp_path / "c_x2.png"), "status": "skipped", "error": None,
             "seconds": None, "cpu_seconds": None, "worker": None, "attempts": 0}]}
    assert batch.BatchReport(results, 0.0, "serial").images_per_s == 0.0  # no time: no rate
    third = batch.BatchReport(results, 3.0, "serial", records=records).to_dict()
    assert (third["seconds"], third["images_per_s"]) == (3.0, 0.333)  # rounded to 3 places
    assert batch.BatchReport(results, 1.23456, "serial", records=records).to_dict()["seconds"] == 1.235
    out = tmp_path / "report.json"
    r.write_json(out)
    assert json.loads(out.read_text()) == r.to_dict() and out.read_text().endswith("}\n")
    assert out.read_text().startswith('{\n  "model": "espcn",\n  "size": "x2",')  # indented by 2
    (tmp_path / "afile").write_bytes(b"")
    bad = tmp_path / "afile" / "report.json"  # under a file: cannot be written
    with pytest.raises(batch.SrzooError) as e:
        r.write_json(bad)
    assert str(e.value).startswith("JSON report: ") and str(bad) in str(e.value)


def test_output_names(tmp_path, monkeypatch):
    of = batch._output_for
    assert of("memory://b/in/a.jpg", None, "espcn", "x2", single=False) == "memory://b/in/a_espcn_x2.jpg"
    assert of("memory://b/in/a.jpg", "memory://b/out/", "omdb:7@onnx", "w100", single=False) == \
        "memory://b/out/a_omdb-7-onnx_w100.jpg"
    monkeypatch.chdir(tmp_path)
    assert of("a.png", None, "espcn", "x1.5", single=False) == "./a_espcn_x1.5.png"  # beside the input
    assert of("/d/a.png", "o", "espcn", "x2", single=False, format="jpg") == "o/a_espcn_x2.jpg"
    assert of("/d/a.png", "o.webp", "espcn", "x2", single=True) == "o.webp"  # one input: OUT itself
    assert of("/d/a.png", "./o", "espcn", "x2", single=False) == "o/a_espcn_x2.png"  # a local folder, normalised
    assert of("memory://b/a.png", "memory://b/OUTX", "espcn", "x2", single=False) == "memory://b/OUTX/a_espcn_x2.png"
    (tmp_path / "res.png").mkdir()  # ... unless OUT is a folder, whatever its name
    assert of("/d/a.png", "res.png", "espcn", "x2", single=True) == "res.png/a_espcn_x2.png"
    assert batch._label(1.5, None, None) == "x1.5" and batch._label(2, None, None) == "x2"
    assert batch._label(None, 100, None) == "w100" and batch._label(None, None, 50) == "h50"
    assert batch._label(None, 100, 50) == "100x50"
    assert batch._key("memory://b/a.png") == "memory://b/a.png"
    assert batch._key("a.png") == str(tmp_path / "a.png")


def test_done_before_output_gone_after_its_header(tmp_path, monkeypatch):
    """The output deleted by another process between the read of its header and the read of its
    end (the race, made deterministic: the real header read runs, then the file goes): redone."""
    import cv2
    import numpy as np
    src, out = tmp_path / "a.png", tmp_path / "a_x2.png"
    cv2.imwrite(str(src), np.zeros((8, 10, 3), np.uint8))
    cv2.imwrite(str(out), np.zeros((16, 20, 3), np.uint8))
    real = batch.header_size

    def read_then_delete(path):
        got = real(path)
        if str(path) == str(out):
            out.unlink()
        return got

    monkeypatch.setattr(batch, "header_size", read_then_delete)
    assert batch.done_before(str(src), str(out), scale=2, width=None, height=None) is False


def test_done_before_reads_both_headers_and_the_end(tmp_path):
    import cv2
    import numpy as np
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), np.zeros((8, 10, 3), np.uint8))
    out = tmp_path / "a_x2.png"
    cv2.imwrite(str(out), np.zeros((16, 20, 3), np.uint8))
    kw = dict(scale=2, width=None, height=None)
    assert batch.done_before(str(src), str(out), **kw) is True
    assert batch.done_before(str(src), str(out), scale=3, width=None, height=None) is False  # other size
    assert batch.done_before(str(src), str(out), scale=None, width=20, height=None) is True
    assert batch.done_before(str(src), str(out), scale=None, width=0, height=None) is False  # refused size
    data = out.read_bytes()
    out.write_bytes(data[:-1])  # truncated: the IEND chunk is cut
    assert batch.done_before(str(src), str(out), **kw) is False
    out.write_bytes(b"")
    assert batch.done_before(str(src), str(out), **kw) is False
    jpg = tmp_path / "a_x2.jpg"
    cv2.imwrite(str(jpg), np.zeros((16, 20, 3), np.uint8))
    assert batch.done_before(str(src), str(jpg), **kw) is True
    jpg.write_bytes(jpg.read_bytes()[:-2])  # no end-of-image marker
    assert batch.done_before(str(src), str(jpg), **kw) is False
    # an input whose header cannot be read: the output's own header must do
    odd = tmp_path / "a.xyz"
    odd.write_bytes(b"not an image")
    out.write_bytes(data)
    assert batch.done_before(str(odd), str(out), **kw) is True
    assert batch.done_before("memory://t24x/a.png", str(out), **kw) is True  # a URL: existing is enough
    assert batch.done_before(str(src), "memory://t24x/none.png", **kw) is False
    out.write_bytes(b"")  # a URL input: the local output existing is enough, unread
    assert batch.done_before("memory://t24x/a.png", str(out), **kw) is True
    out.write_bytes(data)
    assert batch.done_before(str(src), str(out), scale=None, width=None, height=16) is True
    assert batch.done_before(str(src), str(out), scale=None, width=None, height=24) is False
    jpeg = tmp_path / "a_x2.jpeg"
    jpeg.write_bytes(jpg.read_bytes())  # the truncated JPEG above, as .jpeg
    assert batch.done_before(str(src), str(jpeg), **kw) is False


def test_url_scheme_without_its_package_or_unknown_is_one_line(tmp_path, capsys):
    """An input or output URL whose fsspec filesystem needs a package that is not installed
    (s3fs for s3://), or a scheme fsspec does not know: one line naming the URL and what
    fsspec says, exit 1, nothing written (was a traceback from fsspec's ImportError)."""
    import importlib.util

    import cv2
    import numpy as np

    from suite import one_error_line, run_cli

    if importlib.util.find_spec("s3fs"):
        pytest.skip("s3fs is installed here")
    def fsspec_says(url: str) -> str:  # fsspec's own words (they may change between its releases)
        try:
            fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as e:
            return str(e)
        raise AssertionError(f"fsspec opened {url}")

    missing, unknown = fsspec_says("s3://bucket/in/"), fsspec_says("nosuch://x/y.png")
    assert "s3fs" in missing and "nosuch" in unknown  # (fsspec 2026.9: "Install s3fs to access S3")
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), np.full((4, 5, 3), 7, np.uint8))
    cases = [
        (["s3://bucket/in/"], f"s3://bucket/in/: fsspec cannot open s3:// URLs here: {missing}"),
        (["nosuch://x/y.png"], f"nosuch://x/y.png: {unknown} (fsspec has no filesystem for nosuch://)"),
        (["nosuch://x/a://y.png"],  # the scheme is what comes before the first ://
         f"nosuch://x/a://y.png: {unknown} (fsspec has no filesystem for nosuch://)"),
        ([str(src), "-o", "s3://bucket/out/"],
         f"{src}: s3://bucket/out/a_bicubic_x2.png: fsspec cannot open s3:// URLs here: {missing}"),
    ]
    for args, line in cases:
        code, out, err = run_cli(capsys, "upscale", *args, "-m", "bicubic", "-s", "2", "-q")
        assert (code, out, one_error_line(err)) == (1, "", f"srzoo: error: {line}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
