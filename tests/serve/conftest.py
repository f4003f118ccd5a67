"""Fixtures of the ``srzoo serve`` tests: a real uvicorn server on loopback, in a
thread of the test process (so the server and the test share srzoo's loaded
models: a result can be compared with ``srzoo.upscale()`` byte for byte)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
requests = pytest.importorskip("requests")

from srzoo.serve.jobs import JobStore, Limits  # noqa: E402
from srzoo.serve.server import Running  # noqa: E402


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """start(limits=..., token=..., host=..., workers=..., models=...) -> a running server;
    every server started is stopped (and its folder deleted) after the test."""
    running: list[Running] = []

    def _start(*, token: str | None = None, host: str = "127.0.0.1", workers: int | None = 2,
               models: list[str] | None = None, connections: int = 256, **limits: Any) -> Running:
        root = tmp_path / f"srv{len(running)}"
        store = JobStore(models=models, limits=Limits(**limits), workers=workers, root=root)
        r = Running(store, token=token, host=host, connections=connections)
        running.append(r)
        return r

    yield _start
    for r in running:
        r.stop()


@pytest.fixture
def server(start: Callable[..., Running]) -> Running:
    return start()


def png_bytes(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def decode(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert img is not None, data[:200]
    return img


def submit(url: str, data: bytes, name: str = "in.png", headers: dict | None = None,
           **form: Any) -> requests.Response:
    return requests.post(f"{url}/api/jobs", files={"image": (name, data, "application/octet-stream")},
                         data={k: str(v) for k, v in form.items()}, headers=headers or {}, timeout=60)


def wait_done(url: str, job_id: str, headers: dict | None = None, timeout: float = 120) -> dict:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        j = requests.get(f"{url}/api/jobs/{job_id}", headers=headers or {}, timeout=30).json()
        if j["state"] in ("done", "failed", "cancelled"):
            return j
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} not finished after {timeout} s")


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())
