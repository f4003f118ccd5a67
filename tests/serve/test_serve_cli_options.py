"""``srzoo serve``'s options, run in this process (``srzoo.cli.main`` in a
thread, a real uvicorn server on a free loopback port): each option reaches the
server it starts (seen through its HTTP API and its printed line), the
refusals come before anything is loaded, the parser's defaults and types, and
``main`` returns 0 when the server stops."""

from __future__ import annotations

import re
import socket
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

requests = pytest.importorskip("requests")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

from srzoo.cli import build_parser, main  # noqa: E402

TOKEN = "serve-cli-options-token-0123"
#: what an empty cache offers: srzoo's own model first, then the built-in interpolations
BUILT_IN = ["default", "bicubic", "bilinear", "lanczos", "nearest"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Launched:
    """``srzoo serve ARGS`` in a thread: ``started`` (the uvicorn server, or
    None when the command ended first), ``rc``/``error`` once it ended."""

    def __init__(self, argv: list[str], servers: list[Any]) -> None:
        self.rc: int | None = None
        self.error: BaseException | None = None
        self.started: Any = None
        before = len(servers)
        self.thread = threading.Thread(target=self._main, args=(argv,), daemon=True)
        self.thread.start()
        for _ in range(3000):  # up to a minute: the command starts a server or ends
            if len(servers) > before and servers[before].started:
                self.started = servers[before]
                break
            if not self.thread.is_alive():
                break
            self.thread.join(0.02)
        else:
            raise AssertionError(f"srzoo serve {argv}: neither started nor ended")

    def _main(self, argv: list[str]) -> None:
        try:
            self.rc = main(["serve", *argv])
        except BaseException as e:  # noqa: BLE001 - the test shows it
            self.error = e

    def stop(self) -> int | None:
        """Ask the server to stop (as uvicorn does on Ctrl-C); the command's return value."""
        if self.started is not None:
            self.started.should_exit = True
        self.thread.join(60)
        assert not self.thread.is_alive()
        assert self.error is None, repr(self.error)
        return self.rc


@pytest.fixture
def launch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Launched]]:
    """launch(*args) -> the command running (or ended); every server is stopped after the test."""
    monkeypatch.delenv("SRZOO_SERVE_TOKEN", raising=False)
    servers: list[Any] = []

    class Recorded(uvicorn.Server):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            servers.append(self)

    monkeypatch.setattr(uvicorn, "Server", Recorded)
    launched: list[Launched] = []

    def _launch(*argv: str) -> Launched:
        r = Launched([str(a) for a in argv], servers)
        launched.append(r)
        return r

    yield _launch
    for s in servers:
        s.should_exit = True
    for r in launched:
        r.thread.join(60)


def test_every_option_reaches_the_server_and_main_returns_0(launch, tmp_path: Path, capsys):
    port, work = free_port(), tmp_path / "work"
    r = launch("--port", port, "--models", "espcn,default,", "--workers", "5", "--queue", "3",
               "--keep", "0.75", "--max-upload-mb", "0.5", "--max-pixels", "1.5",
               "--max-output-pixels", "2.5", "--workdir", work)
    assert r.started is not None, (r.rc, r.error, capsys.readouterr())
    folders = list(work.iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("srzoo-serve-")
    out = capsys.readouterr().out
    assert out == (f"srzoo serve: http://127.0.0.1:{port}/  (models: espcn, default; 5 workers; "
                   f"files in {folders[0]}; Ctrl-C stops)\n")
    url = f"http://127.0.0.1:{port}"
    info = requests.get(f"{url}/api/models", timeout=30).json()
    assert [m["name"] for m in info["models"]] == ["espcn", "default"]
    assert info["default"] == "espcn"
    assert info["limits"] == {"max_upload": 524288, "max_input_pixels": 1_500_000,
                              "max_output_pixels": 2_500_000, "queue": 3, "keep_seconds": 0.75}
    assert info["workers"] == 5
    health = requests.get(f"{url}/api/health", timeout=30).json()
    assert (health["workers"], health["queue_limit"]) == (5, 3)
    assert r.stop() == 0
    assert list(work.iterdir()) == []  # its folder went with it


def test_without_options_the_defaults(launch, capsys):
    port = free_port()
    r = launch("--port", port)
    assert r.started is not None, (r.rc, r.error, capsys.readouterr())
    out = capsys.readouterr().out
    assert out.startswith(f"srzoo serve: http://127.0.0.1:{port}/  (models: {', '.join(BUILT_IN)}; ")
    info = requests.get(f"http://127.0.0.1:{port}/api/models", timeout=30).json()
    assert [m["name"] for m in info["models"]] == BUILT_IN
    assert info["limits"] == {"max_upload": 50 << 20, "max_input_pixels": 25_000_000,
                              "max_output_pixels": 100_000_000, "queue": 32, "keep_seconds": 3600.0}
    assert r.stop() == 0


def test_a_token_guards_the_api_and_quiet_prints_nothing(launch, capsys):
    port = free_port()
    r = launch("--port", port, "--models", "default", "--token", TOKEN, "-q")
    assert r.started is not None, (r.rc, r.error, capsys.readouterr())
    url = f"http://127.0.0.1:{port}/api/models"
    assert requests.get(url, timeout=30).status_code == 401
    assert requests.get(url, headers={"Authorization": f"Bearer {TOKEN}x"}, timeout=30).status_code == 401
    ok = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert ok.status_code == 200 and [m["name"] for m in ok.json()["models"]] == ["default"]
    assert r.stop() == 0
    assert capsys.readouterr() == ("", "")


def test_the_token_from_the_environment(launch, monkeypatch, capsys):
    port = free_port()
    r = launch("--port", port, "--models", "default", "-q")
    monkeypatch.setenv("SRZOO_SERVE_TOKEN", TOKEN)
    r2 = launch("--port", free_port(), "--models", "default", "-q")
    assert r.started is not None and r2.started is not None
    assert requests.get(f"http://127.0.0.1:{port}/api/health", timeout=30).status_code == 200
    url2 = f"http://127.0.0.1:{r2.started.config.port}/api/health"
    assert requests.get(url2, timeout=30).status_code == 401
    assert requests.get(url2, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).status_code == 200
    assert r.stop() == 0 and r2.stop() == 0


@pytest.mark.parametrize("args, line", [
    (["--token", "short-token"],
     "the token has 11 characters, fewer than 16; use a long random one, e.g. python -c "
     "'import secrets; print(secrets.token_urlsafe())'"),
    (["--host", "192.0.2.1"],
     "--host 192.0.2.1 is reachable from other machines: give --token TOKEN or set "
     "SRZOO_SERVE_TOKEN (clients then send 'Authorization: Bearer TOKEN'), or bind 127.0.0.1"),
    (["--max-upload-mb", "0"], "--max-upload-mb must be > 0, got 0"),
    (["--max-pixels", "-0.5"], "--max-pixels must be > 0, got -0.5"),
    (["--max-output-pixels", "0"], "--max-output-pixels must be > 0, got 0"),
    (["--queue", "-2"], "--queue must be > 0, got -2"),
    (["--keep", "0"], "--keep must be > 0, got 0"),
])
def test_refused_before_the_models_are_looked_at(args, line, launch, capsys):
    # --models no-such-model would be the error if the check came later (or not at all)
    r = launch("--port", free_port(), *args, "--models", "no-such-model")
    assert r.stop() == 1
    assert capsys.readouterr() == ("", f"srzoo: error: {line}\n")


def test_a_port_in_use_and_a_bad_port_are_one_line(launch, tmp_path: Path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = launch("--port", port, "--models", "default", "--workdir", tmp_path)
        assert r.stop() == 1
    assert capsys.readouterr() == ("", f"srzoo: error: cannot listen on 127.0.0.1:{port}: Address "
                                       "already in use; pick another --port or --host\n")
    assert list(tmp_path.iterdir()) == []  # the store's folder is removed
    r = launch("--port", "70000", "--models", "default", "--workdir", tmp_path)
    assert r.stop() == 1
    assert capsys.readouterr() == ("", "srzoo: error: --port must be from 0 to 65535, got 70000\n")


def test_port_0_prints_the_port_it_got(launch, capsys):
    r = launch("--port", "0", "--models", "default")
    assert r.started is not None, (r.rc, r.error, capsys.readouterr())
    out = capsys.readouterr().out
    m = re.fullmatch(r"srzoo serve: http://127\.0\.0\.1:(\d+)/  \(models: default; .*\)\n", out)
    assert m is not None, out
    port = int(m.group(1))
    assert port != 0  # not the 0 asked for: the port the system gave
    assert requests.get(f"http://127.0.0.1:{port}/api/health", timeout=30).json()["ok"] is True
    assert r.stop() == 0


def test_a_missing_extra_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    assert main(["serve", "--port", "0"]) == 1
    assert capsys.readouterr() == ("", "srzoo: error: srzoo serve needs fastapi: pip install "
                                       "'srzoo[serve]'\n")


def test_the_parser_defaults():
    a = build_parser().parse_args(["serve"])
    assert (a.host, a.port, a.models, a.workers, a.token, a.queue, a.keep, a.max_upload_mb,
            a.max_pixels, a.max_output_pixels, a.workdir, a.quiet) == (
        "127.0.0.1", 8000, None, None, None, None, None, None, None, None, None, False)


def test_the_parser_types():
    a = build_parser().parse_args(["serve", "--port", "8123", "--workers", "3", "--queue", "4",
                                   "--keep", "5", "--max-upload-mb", "6", "--max-pixels", "7",
                                   "--max-output-pixels", "8"])
    got = [a.port, a.workers, a.queue, a.keep, a.max_upload_mb, a.max_pixels, a.max_output_pixels]
    assert got == [8123, 3, 4, 5.0, 6.0, 7.0, 8.0]
    assert [type(v) for v in got] == [int, int, int, float, float, float, float]


@pytest.mark.parametrize("option, kind", [
    ("--port", "int"), ("--workers", "int"), ("--queue", "int"), ("--keep", "float"),
    ("--max-upload-mb", "float"), ("--max-pixels", "float"), ("--max-output-pixels", "float"),
])
def test_a_value_that_is_no_number_is_a_usage_error(option, kind, launch, capsys):
    r = launch(option, "abc", "--models", "no-such-model")
    r.thread.join(60)
    assert isinstance(r.error, SystemExit) and r.error.code == 2, repr(r.error)
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == f"srzoo serve: error: argument {option}: invalid {kind} value: 'abc'"
