"""``srzoo serve`` under load, loopback only, bounded in count and time:
16 concurrent clients x 10 jobs of a 256x256 image with the built-in model, two
identical rounds. 0 failed requests, every result byte-identical to
``srzoo.upscale()``, memory flat across the rounds; p50/p95 latency and peak
RSS are printed (reproduce: pytest -s tests/serve/test_serve_load.py)."""

from __future__ import annotations

import gc
import json
import resource
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from servekit import decode, png_bytes

import srzoo

CLIENTS = 16
JOBS = 10


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_job(url: str, data: bytes) -> bytes:
    r = requests.post(f"{url}/api/jobs", files={"image": ("in.png", data)}, data={"scale": "2"},
                      timeout=120)
    if r.status_code != 202:
        raise AssertionError(f"POST {r.status_code}: {r.text}")
    job = r.json()
    with requests.get(f"{url}/api/jobs/{job['id']}/events", stream=True, timeout=120) as ev:
        last = None
        for line in ev.iter_lines(decode_unicode=True):
            if line.startswith("data:"):
                last = json.loads(line[5:])
    if not last or last["state"] != "done":
        raise AssertionError(f"job ended as {last}")
    res = requests.get(f"{url}{last['result_url']}", timeout=120)
    if res.status_code != 200:
        raise AssertionError(f"GET result {res.status_code}")
    requests.delete(f"{url}/api/jobs/{job['id']}", timeout=120)
    return res.content


@pytest.mark.slow
def test_16_clients_x_10_jobs_no_failure_identical_results_flat_memory(start, shared_dir, capsys):
    names = sorted((shared_dir / "datasets" / "BSD68").glob("*.png"))[:CLIENTS]
    inputs = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED)[:256, :256] for p in names]
    assert all(i.shape[:2] == (256, 256) for i in inputs)
    data = [png_bytes(i) for i in inputs]
    want = [srzoo.upscale(i, "default", 2) for i in inputs]
    r = start(workers=None)  # sized to the machine
    rounds = []
    for rnd in range(2):
        lat: list[float] = []
        fails: list[str] = []
        lock = threading.Lock()

        def client(k: int) -> None:
            for _ in range(JOBS):
                t0 = time.perf_counter()
                try:
                    got = one_job(r.url, data[k])
                    ok = np.array_equal(decode(got), want[k])
                except Exception as e:  # noqa: BLE001 - counted, reported below
                    ok, got = False, repr(e).encode()
                with lock:
                    lat.append(time.perf_counter() - t0)
                    if not ok:
                        fails.append(f"client {k}: {got[:200]!r}")

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        wall = time.perf_counter() - t0
        gc.collect()
        lat.sort()
        rounds.append({"round": rnd + 1, "jobs": len(lat), "failed": len(fails), "wall_s": wall,
                       "p50_s": lat[len(lat) // 2], "p95_s": lat[int(len(lat) * 0.95) - 1],
                       "rss_mb": rss_mb(), "peak_rss_mb": peak_mb(), "fails": fails[:3]})
    with capsys.disabled():
        for d in rounds:
            print(f"\nsrzoo serve load, round {d['round']}: {CLIENTS} clients x {JOBS} jobs (256x256 x2, "
                  f"'default', {r.store.workers} workers): {d['jobs']} jobs, {d['failed']} failed, "
                  f"{d['wall_s']:.1f} s, p50 {d['p50_s'] * 1000:.0f} ms, p95 {d['p95_s'] * 1000:.0f} ms, "
                  f"RSS {d['rss_mb']:.0f} MB, peak RSS {d['peak_rss_mb']:.0f} MB (test process + server)"
                  + "".join(f"\n  {f}" for f in d["fails"]))
    for d in rounds:
        assert d["jobs"] == CLIENTS * JOBS and d["failed"] == 0, d
    one, two = rounds
    assert two["rss_mb"] - one["rss_mb"] < 64, rounds  # flat: no per-job leak
    assert two["peak_rss_mb"] - one["peak_rss_mb"] < 64, rounds
    assert r.store.stats()["jobs_kept"] == 0 and not any(r.store.root.iterdir())
