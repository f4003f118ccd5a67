"""A process that forks after upscaling (multiprocessing's default on Linux, Dask's process
pools, mutmut's children) must be able to upscale in the child.

The post-processing pool (pipeline._pool) keeps its threads between calls; a forked child
inherits the pool object but none of its threads, so a task put on it waited forever (found
by the mutation run of jobs/resize: every forked child that post-processed in bands hung)."""

from __future__ import annotations

import os
import sys
import time

import cv2
import numpy as np
import pytest

import srzoo

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")


def _in_forked_child(fn, limit_s: float = 60.0) -> int:
    """Run ``fn()`` (returning an exit code) in a forked child; its exit code, or -1 if it was
    still running after ``limit_s`` (a hang guard only: a working child takes well under 1 s)."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 5
        try:
            code = fn()
        except BaseException as e:  # noqa: BLE001 - reported through the exit code
            print(f"child: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            code = 4
        finally:
            os._exit(code)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return -1


@pytest.mark.parametrize("backend", ["opencv", "onnxruntime"])
def test_upscale_in_a_forked_child_after_the_parent_upscaled(backend, shared_dir):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    img = np.ascontiguousarray(cv2.imread(str(shared_dir / "datasets/Set5/bird.png"))[:64, :64])
    # two post-processing threads: the parent's pool now has two live threads
    want = srzoo.upscale(img, "default", 2, backend=backend, threads=2)
    assert want.shape == (128, 128, 3)

    def child() -> int:
        got = srzoo.upscale(img, "default", 2, backend=backend, threads=2)
        return 0 if np.array_equal(got, want) else 3

    assert _in_forked_child(child) == 0  # -1: the child hung (the bug); 3: other pixels
