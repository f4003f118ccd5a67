"""What tests import by name (a conftest is not importable by name: with tests/serve's own
conftest collected first, `from conftest import` would find that one)."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import termios
import threading
import tty
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SRZOO_SHARED", REPO.parent / "shared")).resolve()


def cache_files(cache: Path) -> list[Path]:
    """Files under the cache's verified folders (not partials or locks)."""
    return sorted(p.relative_to(cache) for sub in ("models", "datasets")
                  if (cache / sub).is_dir() for p in (cache / sub).rglob("*") if p.is_file())


def one_error_line(err: str) -> str:
    """The one ``srzoo: error:`` line of a failed command (no traceback, nothing else)."""
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("srzoo: error: "), err
    return lines[0]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``srzoo ARGS`` in this process: exit code, stdout, stderr."""
    from srzoo.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def count_process_calls(monkeypatch) -> list[tuple[int, int]]:
    """A spy around ``ModelPipeline.process`` (every call still runs): the list fills with the
    (height, width) of each network input."""
    from srzoo.runtime import pipeline

    calls: list[tuple[int, int]] = []
    process = pipeline.ModelPipeline.process

    def counting(self, color, want):
        calls.append(color.shape[:2])
        return process(self, color, want)

    monkeypatch.setattr(pipeline.ModelPipeline, "process", counting)
    return calls


class Terminal:
    """A real pty standing in for stderr: ``cols`` wide, raw (bytes as written), read by a thread."""

    def __init__(self, cols: int) -> None:
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        self.resize(cols, fd=slave)
        self.file = os.fdopen(slave, "w", encoding="utf-8")
        self.data = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def resize(self, cols: int, fd: int | None = None) -> None:
        fcntl.ioctl(self.file.fileno() if fd is None else fd, termios.TIOCSWINSZ,
                    struct.pack("HHHH", 24, cols, 0, 0))

    def _read(self) -> None:
        try:
            while chunk := os.read(self.master, 65536):
                self.data += chunk
        except OSError:  # the other side closed
            pass

    def text(self) -> str:
        self.file.close()
        self.reader.join(10)
        os.close(self.master)
        return self.data.decode("utf-8")
