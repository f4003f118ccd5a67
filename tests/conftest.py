"""Shared fixtures: the real files of ../shared served by a local HTTP mirror.

Every test runs with its own cache folder and with SRZOO_MIRROR_ONLY=1, so no
test can ever reach a model hub or touch the user's cache.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from httpmirror import MirrorServer  # noqa: E402

from suite import SHARED  # noqa: E402


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the project (override with SRZOO_SHARED)."""
    if not (SHARED / "models").is_dir():
        pytest.fail(f"{SHARED} has no models/: tests need ../shared beside the project "
                    "(or SRZOO_SHARED pointing at it)")
    return SHARED


@pytest.fixture(scope="session")
def _server(shared_dir: Path):
    server = MirrorServer([shared_dir / "models", shared_dir / "datasets"]).start()
    yield server
    server.stop()


@pytest.fixture
def mirror(_server: MirrorServer) -> MirrorServer:
    """The local mirror server, with no faults and an empty request log."""
    _server.reset()
    yield _server
    _server.reset()


def _set_env(monkeypatch: pytest.MonkeyPatch, cache: Path, mirror_url: str) -> None:
    monkeypatch.setenv("SRZOO_CACHE_DIR", str(cache))
    monkeypatch.setenv("SRZOO_MIRROR", mirror_url)
    monkeypatch.setenv("SRZOO_MIRROR_ONLY", "1")
    monkeypatch.setenv("SRZOO_TIMEOUT", "5")
    monkeypatch.setenv("SRZOO_RETRIES", "2")
    monkeypatch.setenv("SRZOO_BACKOFF", "0.05")
    monkeypatch.delenv("SRZOO_OFFLINE", raising=False)


@pytest.fixture(autouse=True)
def _isolate(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the user's cache, registry additions or a model hub."""
    monkeypatch.setenv("SRZOO_CACHE_DIR", str(tmp_path_factory.mktemp("isolated-cache")))
    monkeypatch.setenv("SRZOO_MIRROR", "")
    monkeypatch.setenv("SRZOO_MIRROR_ONLY", "1")
    monkeypatch.delenv("SRZOO_REGISTRY", raising=False)
    monkeypatch.delenv("SRZOO_OFFLINE", raising=False)
    # backend="auto" takes the static order: measured trials cost seconds per
    # model and cache; tests/runtime/test_engines.py turns them on where it tests them
    monkeypatch.setenv("SRZOO_AUTOTUNE", "0")
    monkeypatch.delenv("SRZOO_BACKEND", raising=False)


@pytest.fixture
def srzoo_env(tmp_path: Path, mirror: MirrorServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache for this test, fed by the local mirror; returns the cache root."""
    cache = tmp_path / "cache"
    _set_env(monkeypatch, cache, mirror.url)
    return cache


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("session-cache")


@pytest.fixture
def models_env(_session_cache: Path, mirror: MirrorServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache shared by the whole session (models download once), fed by the mirror."""
    _set_env(monkeypatch, _session_cache, mirror.url)
    return _session_cache


@pytest.fixture
def tqdm_clock(monkeypatch):
    """tqdm's clock advances 0.5 s a reading and its monitor thread is off, so every update
    passes tqdm's 0.1 s redraw gate: the frames drawn do not depend on the machine's speed."""
    import tqdm.std

    clock = itertools.count(1000.0, 0.5)
    monkeypatch.setattr(tqdm.std, "time", lambda: next(clock))
    monkeypatch.setattr(tqdm.std.tqdm, "monitor_interval", 0)
