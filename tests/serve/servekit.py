"""Helpers of the ``srzoo serve`` tests (imported by name; fixtures stay in conftest.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import requests


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
