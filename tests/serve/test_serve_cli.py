"""``srzoo serve`` as a command: a real server in a subprocess on a free port,
the missing-extra line, and the one-line refusals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

NO_FASTAPI = ("import sys; sys.modules['fastapi'] = None\n"
              "from srzoo.cli import main; sys.exit(main(sys.argv[1:]))")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_missing_extra_is_one_line_naming_it():
    p = subprocess.run([sys.executable, "-c", NO_FASTAPI, "serve"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 1
    assert p.stderr == "srzoo: error: srzoo serve needs fastapi: pip install 'srzoo[serve]'\n"


def test_srzoo_serve_opens_a_working_page_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = {**os.environ, "SRZOO_SERVE_TOKEN": ""}
    p = subprocess.Popen([sys.executable, "-m", "srzoo", "serve", "--port", str(port), "--models",
                          "default", "--workdir", str(tmp_path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = p.stdout.readline()
        assert line.startswith(f"srzoo serve: http://127.0.0.1:{port}/  (models: default;"), line
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=30)
        assert page.status_code == 200 and 'src="app.js"' in page.text
        models = requests.get(f"http://127.0.0.1:{port}/api/models", timeout=30).json()
        assert [m["name"] for m in models["models"]] == ["default"]
        assert len(list(tmp_path.iterdir())) == 1  # its private folder
        # the same port again: one line, no traceback
        q = subprocess.run([sys.executable, "-m", "srzoo", "serve", "--port", str(port)],
                           capture_output=True, text=True, timeout=60, env=env)
        assert q.returncode == 1 and len(q.stderr.splitlines()) == 1
        assert q.stderr.startswith(f"srzoo: error: cannot listen on 127.0.0.1:{port}: ")
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # its folder went with it


@pytest.mark.parametrize("args, text", [
    (["--models", "no-such-model"], "srzoo: error: unknown model 'no-such-model'"),
    (["--queue", "0"], "srzoo: error: --queue must be > 0, got 0"),
    (["--workers", "0"], "srzoo: error: --workers must be at least 1, got 0"),
])
def test_bad_options_are_one_line(args, text):
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "srzoo", "serve", "--port", "0", *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1, p.stderr
    assert p.stderr.startswith(text), p.stderr
    assert time.monotonic() - t0 < 30
