"""Binding rules and the uvicorn server of ``srzoo serve``.

Loopback (``127.0.0.1``, ``::1``, ``localhost``) by default. Any other
address reaches other machines, so it needs a token (``--token`` or
``SRZOO_SERVE_TOKEN``) and :func:`check_bind` refuses to start without one.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import Any

import uvicorn

from srzoo import config
from srzoo.errors import SrzooError
from srzoo.serve.app import create_app
from srzoo.serve.jobs import JobStore

#: shortest token accepted (guessable tokens protect nothing)
MIN_TOKEN = 16


def is_loopback(host: str) -> bool:
    """True for loopback addresses and ``localhost``."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def resolve_token(token: str | None) -> str | None:
    """``--token``, else ``SRZOO_SERVE_TOKEN``, else None."""
    t = (token or "").strip() or str(config.get("SRZOO_SERVE_TOKEN") or "").strip()
    return t or None


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback bind without a token, and a short token; one line each."""
    if token is not None and len(token) < MIN_TOKEN:
        raise SrzooError(f"the token has {len(token)} characters, fewer than {MIN_TOKEN}; use a long "
                         "random one, e.g. python -c 'import secrets; print(secrets.token_urlsafe())'")
    if not is_loopback(host) and token is None:
        raise SrzooError(f"--host {host} is reachable from other machines: give --token TOKEN or set "
                         "SRZOO_SERVE_TOKEN (clients then send 'Authorization: Bearer TOKEN'), or "
                         "bind 127.0.0.1")


def uvicorn_config(app: Any, host: str, port: int, *, connections: int = 256) -> uvicorn.Config:
    """uvicorn settings: quiet access log, bounded connections (503 beyond),
    short keep-alive, no Server header."""
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                          limit_concurrency=connections, timeout_keep_alive=5, server_header=False,
                          lifespan="off")


class Running:
    """A server started in a thread (tests, embedding): ``url``, ``store``, :meth:`stop`."""

    def __init__(self, store: JobStore, token: str | None = None, host: str = "127.0.0.1",
                 connections: int = 256) -> None:
        check_bind(host, token)
        self.store = store.start()
        self.sock = bind(host, 0)
        self.port = self.sock.getsockname()[1]
        self.host = host
        self.server = uvicorn.Server(uvicorn_config(create_app(store, token=token), host, self.port,
                                                    connections=connections))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="srzoo-serve", daemon=True)
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise SrzooError("srzoo serve: the server stopped while starting")
            threading.Event().wait(0.02)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.store.close()
        self.sock.close()


def serve(host: str = "127.0.0.1", port: int = 8000, *, store: JobStore,
          token: str | None = None, quiet: bool = False) -> None:
    """Run until Ctrl-C; the store's folder is deleted on the way out."""
    check_bind(host, token)
    try:
        sock = bind(host, port)
    except BaseException:
        store.close()
        raise
    port = sock.getsockname()[1]  # --port 0: the port the system gave, not 0
    server = uvicorn.Server(uvicorn_config(create_app(store, token=token), host, port))
    store.start()
    try:
        if not quiet:
            shown = f"[{host}]" if ":" in host else host
            print(f"srzoo serve: http://{shown}:{port}/  (models: {', '.join(store.models)}; "
                  f"{store.workers} workers; files in {store.root}; Ctrl-C stops)", flush=True)
        server.run(sockets=[sock])
    finally:
        store.close()
        sock.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); one line when that is impossible."""
    if not 0 <= port <= 65535:
        raise SrzooError(f"--port must be from 0 to 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    except OSError as e:
        raise SrzooError(f"cannot listen on {host}:{port}: {e.strerror or e}; pick another --port "
                         "or --host") from None
    return sock


__all__ = ["MIN_TOKEN", "Running", "bind", "check_bind", "is_loopback", "resolve_token", "serve",
           "uvicorn_config"]
