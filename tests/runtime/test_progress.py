"""Long work shows progress: a ``progress(done, total)`` callback over tiles in the API,
and a tqdm bar over the tiles of a single image on a terminal in the CLI (quiet when
stderr is not a terminal, or with -q)."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

import cv2
import numpy as np

import srzoo
from srzoo.cli import main


def test_callback_counts_every_tile_of_every_pass(models_env, shared_dir):
    img = cv2.imread(str(shared_dir / "datasets" / "Set14" / "baboon.png"))[:150, :200]
    calls: list[tuple[int, int]] = []
    out = srzoo.upscale(img, "espcn", 2, tile=64, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 9) for i in range(1, 10)]  # 3 x 3 windows of 72x72 (64 + 2 x 4)
    assert np.abs(out.astype(int) - srzoo.upscale(img, "espcn", 2, tile=0)).max() <= 1
    calls.clear()
    srzoo.upscale(img, "espcn", 2, tile=0, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 1)]  # untiled: one step
    # transparent edges: colour and alpha passes, one count
    bgra = np.dstack((img, np.where(np.arange(200) < 100, 255, 0).astype(np.uint8)[None].repeat(150, 0)))
    calls.clear()
    srzoo.Upscaler("espcn", 2).upscale(bgra, tile=100, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 8) for i in range(1, 9)]


def test_cli_bar_on_a_terminal_only(models_env, shared_dir, tmp_path, capsys):
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), cv2.imread(str(shared_dir / "datasets" / "Set14" / "baboon.png"))[:150, :200])
    # not a terminal (pytest captures): no bar
    assert main(["upscale", str(img), "-m", "espcn", "-s", "2", "--tile", "64", "-o",
                 str(tmp_path / "a")]) == 0
    assert "tile" not in capsys.readouterr().err
    # a terminal (100 columns: tqdm draws nothing on a 0-column one): the bar over the 9 tiles
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    r = subprocess.run([sys.executable, "-m", "srzoo", "upscale", str(img), "-m", "espcn", "-s", "2",
                        "--tile", "64", "-o", str(tmp_path / "b")], stdout=subprocess.PIPE,
                       stderr=slave, env=dict(os.environ), timeout=300)
    os.close(slave)
    seen = b""
    try:
        while True:
            chunk = os.read(master, 65536)
            if not chunk:
                break
            seen += chunk
    except OSError:  # the other side closed
        pass
    os.close(master)
    assert r.returncode == 0
    text = seen.decode("utf-8", "replace")
    assert "in.png" in text and "/9 [" in text and "tile/s" in text, text[-500:]
    # -q: nothing
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    r = subprocess.run([sys.executable, "-m", "srzoo", "upscale", str(img), "-m", "espcn", "-s", "2",
                        "--tile", "64", "-o", str(tmp_path / "c"), "-q"], stdout=subprocess.PIPE,
                       stderr=slave, env=dict(os.environ), timeout=300)
    os.close(slave)
    os.set_blocking(master, False)
    try:
        quiet = os.read(master, 65536)
    except OSError:
        quiet = b""
    os.close(master)
    assert r.returncode == 0 and b"tile" not in quiet
