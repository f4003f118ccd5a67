"""Fixtures of the ``srzoo serve`` tests: a real uvicorn server on loopback, in a
thread of the test process (so the server and the test share srzoo's loaded
models: a result can be compared with ``srzoo.upscale()`` byte for byte)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

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
