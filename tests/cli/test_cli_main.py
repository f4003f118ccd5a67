"""``srzoo.cli.main``'s own contract, branch by branch: the exit code of each kind of
failure and its one line, the ``-v`` list of sources, and the plain-text helpers of
``srzoo.cli._format``.

The failures a command cannot be made to raise for real here (Ctrl-C, an out-of-memory,
an OS error of a given errno) are raised by a stand-in for ``srzoo info``'s function,
put in place before the parser is built (``register`` reads it then); everything after
it (the parser, ``config.validate``, the error handling, the streams) is the real one.
"""

from __future__ import annotations

import errno
import os
import sys

import pytest

from srzoo.cli import _format, main
from srzoo.cli import models as models_cli
from srzoo.errors import SrzooError


def _with_info(monkeypatch, func) -> None:
    monkeypatch.setattr(models_cli, "cmd_info", func)


def _raise(exc: BaseException):
    def func(args):
        raise exc
    return func


def test_return_value_of_the_command_is_the_exit_code(monkeypatch, capsys):
    for value, code in ((None, 0), (0, 0), (3, 3), (True, 1), (False, 0)):
        _with_info(monkeypatch, lambda args, v=value: v)
        assert main(["info"]) == code
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("exc,code,line", [
    (KeyboardInterrupt(), 130, "srzoo: interrupted"),
    (MemoryError(), 1, "srzoo: error: out of memory; use a smaller image or scale, or tiles (--tile)"),
    (SrzooError("first\nsecond  \n"), 1, "srzoo: error: first second"),
    (SrzooError("keeps  two spaces\nand\ttabs"), 1, "srzoo: error: keeps  two spaces and\ttabs"),
    (PermissionError(errno.EACCES, "Permission denied", "/x/y.png"), 1,
     "srzoo: error: /x/y.png: Permission denied"),
    (OSError(errno.EACCES, "Permission denied"), 1, "srzoo: error: Permission denied"),
    (OSError("plain words"), 1, "srzoo: error: plain words"),
    (OSError(), 1, "srzoo: error: OSError"),
    # a full disk on a named report file is that file's error, not "cannot write the output"
    (OSError(errno.ENOSPC, "No space left on device", "/r.json"), 1,
     "srzoo: error: /r.json: No space left on device"),
    (OSError(errno.ENOSPC, "No space left on device"), 1,
     "srzoo: error: cannot write the output: No space left on device"),
    (OSError(errno.EIO, "Input/output error"), 1,
     "srzoo: error: cannot write the output: Input/output error"),
    (OSError(errno.EFBIG, "File too large"), 1, "srzoo: error: cannot write the output: File too large"),
    (OSError(errno.ENOENT, "No such file or directory"), 1, "srzoo: error: No such file or directory"),
])
def test_each_failure_is_one_line_with_its_exit_code(monkeypatch, capsys, exc, code, line):
    _with_info(monkeypatch, _raise(exc))
    assert main(["info"]) == code
    out, err = capsys.readouterr()
    assert out == "" and err == line + "\n"


def test_broken_pipe_is_success_and_silences_stdout(monkeypatch, tmp_path):
    """`srzoo list | head`: exit 0, no message, and stdout pointed at /dev/null so the
    interpreter's last flush cannot fail again."""
    target = tmp_path / "out.txt"
    saved = os.dup(1)
    with open(target, "w") as f:
        os.dup2(f.fileno(), 1)
    monkeypatch.setattr(sys, "stdout", open(1, "w", closefd=False))  # the real fd 1
    try:
        _with_info(monkeypatch, _raise(BrokenPipeError(errno.EPIPE, "Broken pipe")))
        assert main(["info"]) == 0
        os.write(1, b"after")  # goes to /dev/null now, not to the file
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    assert target.read_bytes() == b""


def test_disk_full_on_stdout_silences_stdout(monkeypatch, tmp_path, capsys):
    target = tmp_path / "out.txt"
    saved = os.dup(1)
    with open(target, "w") as f:
        os.dup2(f.fileno(), 1)
    monkeypatch.setattr(sys, "stdout", open(1, "w", closefd=False))  # the real fd 1
    try:
        _with_info(monkeypatch, _raise(OSError(errno.ENOSPC, "No space left on device")))
        assert main(["info"]) == 1
        os.write(1, b"after")
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    assert target.read_bytes() == b""
    assert capsys.readouterr().err == "srzoo: error: cannot write the output: No space left on device\n"


def test_other_os_errors_leave_stdout_alone(monkeypatch, tmp_path):
    target = tmp_path / "out.txt"
    saved = os.dup(1)
    with open(target, "w") as f:
        os.dup2(f.fileno(), 1)
    monkeypatch.setattr(sys, "stdout", open(1, "w", closefd=False))  # the real fd 1
    try:
        _with_info(monkeypatch, _raise(OSError(errno.ENOSPC, "No space left on device", "/r.json")))
        assert main(["info"]) == 1
        os.write(1, b"after")
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    assert target.read_bytes() == b"after"


def test_stdout_is_flushed_before_main_returns(monkeypatch, capsys):
    """A write error on stdout must surface inside main (one line), not at exit: main
    flushes stdout itself, also after a failing command."""
    flushed = []

    class Out:
        def write(self, s):
            return len(s)

        def flush(self):
            flushed.append(True)

    monkeypatch.setattr(sys, "stdout", Out())
    _with_info(monkeypatch, lambda args: 0)
    assert main(["info"]) == 0 and flushed
    flushed.clear()
    _with_info(monkeypatch, _raise(SrzooError("boom")))
    assert main(["info"]) == 1 and flushed


def test_verbose_lists_every_source_tried(monkeypatch, capsys):
    e = SrzooError("download failed")
    e.failures = [("https://a.example/m.onnx", "HTTP 404"), ("/mirror/m.onnx", "sha256 differs")]
    _with_info(monkeypatch, _raise(e))
    assert main(["-v", "info"]) == 1
    assert capsys.readouterr().err == ("srzoo: error: download failed\n"
                                       "srzoo:   https://a.example/m.onnx: HTTP 404\n"
                                       "srzoo:   /mirror/m.onnx: sha256 differs\n")
    assert main(["info"]) == 1  # without -v: the one line
    assert capsys.readouterr().err == "srzoo: error: download failed\n"


def test_print_failures_reads_both_verbose_flags():
    class E(Exception):
        failures = [("src", "why")]

    class A:
        pass

    import io
    for attrs, want in (({"verbose_errors": True}, "srzoo:   src: why\n"),
                        ({"verbose": True}, "srzoo:   src: why\n"),
                        ({"verbose": 1}, ""),  # only a real -v flag (True), not a count
                        ({"verbose_errors": False, "verbose": False}, ""),
                        ({}, "")):
        a = A()
        a.__dict__.update(attrs)
        buf = io.StringIO()
        saved, sys.stderr = sys.stderr, buf
        try:
            _format.print_failures(E(), a)
            _format.print_failures(SrzooError("no failures attribute"), a)
        finally:
            sys.stderr = saved
        assert buf.getvalue() == want, attrs


def test_size_units_and_rounding():
    assert _format.size(0) == "0 B"
    assert _format.size(1023) == "1023 B"
    assert _format.size(1023.6) == "1024 B"
    assert _format.size(1024) == "1.0 KiB"
    assert _format.size(1536) == "1.5 KiB"
    assert _format.size(1024 ** 2 - 1) == "1024.0 KiB"
    assert _format.size(1024 ** 2) == "1.0 MiB"
    assert _format.size(5.5 * 1024 ** 2) == "5.5 MiB"
    assert _format.size(3 * 1024 ** 3) == "3.0 GiB"
    assert _format.size(2 * 1024 ** 4) == "2048.0 GiB"  # no unit above GiB


def test_table_keeps_text_as_written():
    text = _format.table([["x2", "1.50", "007"], ["x10", "2", "-"]], ["scale", "ms", "id"])
    assert text.splitlines() == ["scale    ms    id",
                                 "-------  ----  ----",
                                 "x2       1.50  007",
                                 "x10      2     -"]


def test_error_survives_a_closed_stderr(monkeypatch):
    class Gone:
        def write(self, s):
            raise OSError(errno.EBADF, "Bad file descriptor")

        def flush(self):
            raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(sys, "stderr", Gone())
    _with_info(monkeypatch, _raise(SrzooError("boom")))
    assert main(["info"]) == 1


def test_help_says_what_srzoo_is(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: srzoo [-h] [--version] [-v] COMMAND ...")
    assert "\nSuper-resolution models for OpenCV: list, fetch, upscale, benchmark.\n" in out
    assert "\n  -v, --verbose  on a failed download, list every source tried and its answer\n" in out


def test_version_and_a_missing_command(capsys):
    from srzoo._version import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"srzoo {__version__}\n"
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        "srzoo: error: the following arguments are required: COMMAND"


def test_long_verbose_flag_lists_the_sources(monkeypatch, capsys):
    e = SrzooError("download failed")
    e.failures = [("https://a.example/m.onnx", "HTTP 404")]
    _with_info(monkeypatch, _raise(e))
    assert main(["--verbose", "info"]) == 1
    assert capsys.readouterr().err == ("srzoo: error: download failed\n"
                                       "srzoo:   https://a.example/m.onnx: HTTP 404\n")
