"""``srzoo serve``'s API over a real uvicorn server on loopback: models, jobs,
progress events, results equal to ``srzoo.upscale()``, zip, delete, retention."""

from __future__ import annotations

import io
import json
import tempfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from servekit import decode, files_under, png_bytes, submit, wait_done

import srzoo


@pytest.fixture
def butterfly(shared_dir: Path) -> Path:
    return shared_dir / "datasets" / "Set5" / "butterfly.png"


def test_models_list_the_built_in_model_first_with_scales_and_limits(server):
    d = requests.get(f"{server.url}/api/models", timeout=30).json()
    names = [m["name"] for m in d["models"]]
    assert names[0] == "default" == d["default"]
    default = d["models"][0]
    assert default["scales"] == [2, 3, 4] and default["built_in"] is True
    assert "built-in" in default["description"]
    assert d["limits"]["max_upload"] == 50 << 20 and d["workers"] == 2
    assert set(names) <= {"default", "bicubic", "bilinear", "lanczos", "nearest"}  # nothing to download


def test_only_the_models_given_are_offered(start):
    r = start(models=["default", "bicubic"])
    d = requests.get(f"{r.url}/api/models", timeout=30).json()
    assert [m["name"] for m in d["models"]] == ["default", "bicubic"]
    res = submit(r.url, png_bytes(np.zeros((8, 8, 3), np.uint8)), model="nearest")
    assert res.status_code == 400
    assert res.json()["error"] == ("model 'nearest' is not offered by this server; it offers "
                                   "default, bicubic (srzoo serve --models)")


def test_a_job_from_upload_to_result_equals_srzoo_upscale(server, butterfly):
    res = submit(server.url, butterfly.read_bytes(), name="butterfly.png", scale=2)
    assert res.status_code == 202, res.text
    job = res.json()
    assert res.headers["Location"] == f"/api/jobs/{job['id']}"
    assert job["input_size"] == [256, 256] and job["output_size"] == [512, 512]
    done = wait_done(server.url, job["id"])
    assert done["state"] == "done" and done["progress"] == 1.0, done
    assert done["backend"] and done["seconds"] > 0
    out = requests.get(f"{server.url}{done['result_url']}", timeout=30)
    assert out.status_code == 200 and out.headers["content-type"] == "image/png"
    assert 'filename="butterfly_default_x2.png"' in out.headers["content-disposition"]
    got = decode(out.content)
    want = srzoo.upscale(str(butterfly), "default", 2)
    assert got.dtype == want.dtype and got.shape == want.shape == (512, 512, 3)
    assert np.array_equal(got, want)


def test_grey_16_bit_and_alpha_keep_their_layout(server):
    rng = np.random.default_rng(0)
    for img in (rng.integers(0, 65535, (40, 30), dtype=np.uint16),
                rng.integers(0, 255, (33, 47, 4), dtype=np.uint8)):
        job = submit(server.url, png_bytes(img), scale=3).json()
        done = wait_done(server.url, job["id"])
        assert done["state"] == "done", done
        got = decode(requests.get(f"{server.url}{done['result_url']}", timeout=30).content)
        assert np.array_equal(got, srzoo.upscale(img, "default", 3))


def test_target_width_and_any_scale_as_the_cli_does(server, butterfly):
    img = cv2.imread(str(butterfly), cv2.IMREAD_UNCHANGED)
    for form, want in (({"width": 300}, srzoo.upscale(img, "default", width=300)),
                       ({"scale": 1.5}, srzoo.upscale(img, "default", 1.5))):
        job = submit(server.url, butterfly.read_bytes(), name="b.png", **form).json()
        done = wait_done(server.url, job["id"])
        got = decode(requests.get(f"{server.url}{done['result_url']}", timeout=30).content)
        assert got.shape == want.shape and np.array_equal(got, want)
    assert json.loads(json.dumps(done))["download_name"] == "b_default_x1.5.png"


def test_progress_events_end_with_done(server, butterfly):
    job = submit(server.url, butterfly.read_bytes(), scale=4).json()
    with requests.get(f"{server.url}/api/jobs/{job['id']}/events", stream=True, timeout=60) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        states = [json.loads(line[5:]) for line in r.iter_lines(decode_unicode=True)
                  if line.startswith("data:")]
    assert states[-1]["state"] == "done" and states[-1]["progress"] == 1.0
    assert all(0 <= s["progress"] <= 1 for s in states)
    assert [s["progress"] for s in states] == sorted(s["progress"] for s in states)


def test_results_zip_holds_each_result_once_under_its_download_name(server, butterfly):
    ids = []
    for name in ("a.png", "a.png", "c.png"):
        ids.append(submit(server.url, butterfly.read_bytes(), name=name).json()["id"])
    for i in ids:
        assert wait_done(server.url, i)["state"] == "done"
    r = requests.get(f"{server.url}/api/results.zip", params={"ids": ",".join(ids)}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    assert z.namelist() == ["a_default_x2.png", "a_default_x2-2.png", "c_default_x2.png"]
    want = srzoo.upscale(str(butterfly), "default", 2)
    assert all(np.array_equal(decode(z.read(n)), want) for n in z.namelist())


def test_delete_removes_the_job_and_its_files(server, butterfly):
    job = submit(server.url, butterfly.read_bytes()).json()
    wait_done(server.url, job["id"])
    assert files_under(server.store.root)  # the result
    assert requests.delete(f"{server.url}/api/jobs/{job['id']}", timeout=30).status_code == 204
    r = requests.get(f"{server.url}/api/jobs/{job['id']}", timeout=30)
    assert r.status_code == 404 and r.json()["error"].startswith(f"no job '{job['id']}'")
    assert files_under(server.store.root) == []
    assert requests.get(f"{server.url}/api/jobs/{job['id']}/result", timeout=30).status_code == 404


def test_results_expire_after_the_retention_time(start, butterfly):
    r = start(keep=0.5)
    job = submit(r.url, butterfly.read_bytes()).json()
    assert wait_done(r.url, job["id"])["state"] == "done"
    t0 = time.monotonic()
    while requests.get(f"{r.url}/api/jobs/{job['id']}", timeout=30).status_code != 404:
        assert time.monotonic() - t0 < 10, "not expired"
        time.sleep(0.1)
    assert files_under(r.store.root) == []


def test_nothing_is_written_outside_the_server_folder(start, butterfly, tmp_path, monkeypatch):
    """An upload above the multipart parser's usual 1 MB spool stays in memory:
    the system temp folder gets nothing, the server folder only the result."""
    tmp = tmp_path / "systemtmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    r = start()
    big = cv2.resize(cv2.imread(str(butterfly)), (900, 900), interpolation=cv2.INTER_NEAREST)
    noise = np.random.default_rng(1).integers(0, 40, big.shape, dtype=np.uint8)
    data = png_bytes(cv2.add(big, noise))
    assert len(data) > 1 << 20
    job = submit(r.url, data).json()
    assert wait_done(r.url, job["id"])["state"] == "done"
    assert list(tmp.iterdir()) == []
    assert [p.relative_to(r.store.root) for p in files_under(r.store.root)] == [
        Path(job["id"]) / "result.png"]
    r.stop()
    assert not r.store.root.exists()


def test_openapi_documents_the_api_and_the_page_is_served_without_other_hosts(server):
    spec = requests.get(f"{server.url}/openapi.json", timeout=30).json()
    paths = spec["paths"]
    assert {"/api/models", "/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/result",
            "/api/jobs/{job_id}/events", "/api/results.zip"} <= set(paths)
    assert set(paths["/api/jobs/{job_id}"]) == {"get", "delete"}
    assert "multipart/form-data" in paths["/api/jobs"]["post"]["requestBody"]["content"]
    page = requests.get(f"{server.url}/", timeout=30)
    assert page.status_code == 200 and "<title>srzoo" in page.text
    for asset in ("app.js", "app.css"):
        text = requests.get(f"{server.url}/{asset}", timeout=30).text
        assert len(text) > 1000
        assert "http://" not in text and "https://" not in text  # offline: nothing from a CDN
    assert "http://" not in page.text and "https://" not in page.text
    assert requests.get(f"{server.url}/nope", timeout=30).status_code == 404


def test_delete_cancels_a_waiting_and_a_running_job_and_leaves_no_file(start, shared_dir):
    r = start(workers=1)
    baby = (shared_dir / "datasets" / "Set5" / "baby.png").read_bytes()
    running = submit(r.url, baby, scale=4).json()
    waiting = submit(r.url, png_bytes(np.zeros((9, 9, 3), np.uint8))).json()
    assert requests.get(f"{r.url}/api/jobs/{waiting['id']}", timeout=30).json()["state"] == "queued"
    for job in (waiting, running):
        assert requests.delete(f"{r.url}/api/jobs/{job['id']}", timeout=30).status_code == 204
        assert requests.get(f"{r.url}/api/jobs/{job['id']}", timeout=30).status_code == 404
    t0 = time.monotonic()
    while r.store.running() or r.store.queued() or files_under(r.store.root):
        assert time.monotonic() - t0 < 60
        time.sleep(0.05)
    assert not any(r.store.root.iterdir())
    assert r.store.completed == 0  # the running one ended without being counted as a result


def test_progress_follows_the_tiles_the_upscaler_reports(tmp_path, shared_dir, monkeypatch):
    """A running job's progress is the Upscaler's own tile count (0.05 + 0.9 * done /
    total), not an estimate: with a memory budget small enough to tile, every value
    seen while it runs is one of those steps, and they only grow."""
    import cv2

    from srzoo.serve.jobs import JobStore, Limits

    monkeypatch.setenv("SRZOO_MEMORY", "2M")  # the built-in model in several tiles
    monkeypatch.setenv("SRZOO_AUTOTUNE", "0")
    img = cv2.imread(str(shared_dir / "datasets/Set14/monarch.png"))[:192, :256]
    ok, png = cv2.imencode(".png", img)
    store = JobStore(models=["default"], limits=Limits(), workers=1, root=tmp_path).start()
    try:
        job = store.submit(png.tobytes(), "m.png", model="default", scale=2)
        seen = []
        deadline = time.monotonic() + 60
        while not job.final and time.monotonic() < deadline:
            if job.state == "running" and job.tiles is not None:
                seen.append((job.tiles, job.progress()))
            time.sleep(0.002)
        assert job.state == "done", job.error
        assert seen, "the job ran without reporting a tile"
        totals = {t[1] for t, _ in seen}
        assert len(totals) == 1 and totals.pop() > 1  # tiled, one plan
        for (done, total), p in seen:
            assert p == round(min(0.95, 0.05 + 0.9 * done / total), 3)
        assert [p for _, p in seen] == sorted(p for _, p in seen)
    finally:
        store.close()
