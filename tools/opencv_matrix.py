#!/usr/bin/env python
"""Run ``srzoo upscale -m M`` for every registry model the local mirror holds,
as a user would (one process each), in the current Python environment.

For each model and scale, and each backend asked for (default ``opencv:cpu``
and ``auto``), it records the exit code, whether anything that looks like a
traceback or an OpenCV log line (``[ WARN``, ``[ERROR``, ``[ INFO``) reached
stderr, and the output size. Run it once per OpenCV version (one virtual
environment each) to check the support matrix::

    python tools/opencv_matrix.py --shared ../shared            # this environment's OpenCV
    python tools/opencv_matrix.py --backends opencv:cpu         # "OpenCV alone"

Exit status 1 when any run failed. Not a test (it takes minutes): the tests
check the same paths model by model; this is the end-to-end sweep.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

LOG_MARKS = ("Traceback", "[ WARN", "[ERROR", "[ INFO", "[DEBUG")


def mirror_folders(shared: Path) -> list[Path]:
    return sorted(p for p in (shared / "models").iterdir() if p.is_dir())


def held(entry, folders: list[Path]) -> bool:
    """Is every file of the entry in one of the mirror folders? (built-ins: always)"""
    if entry.artifact is None or entry.artifact.bundled:
        return entry.format != "interpolation"
    files = [(entry.artifact.file, entry.artifact.size), *[(c.file, c.size) for c in entry.companions]]
    # the same name and size as the manifest's (shared's realesr-animevideov3.pth is another file)
    return all(any((f / name).is_file() and (not size or (f / name).stat().st_size == size)
                   for f in folders) for name, size in files)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--backends", default="opencv:cpu,auto")
    ap.add_argument("--image", default=None, help="input (default: a 48x40 crop of Set5 bird.png)")
    args = ap.parse_args()
    shared = Path(args.shared).resolve()
    folders = mirror_folders(shared)
    work = Path(tempfile.mkdtemp(prefix="srzoo-matrix-"))
    img = Path(args.image) if args.image else work / "in.png"
    if not args.image:
        cv2.imwrite(str(img), cv2.imread(str(shared / "datasets/Set5/bird.png"))[100:140, 100:148])
    env = {**os.environ, "SRZOO_CACHE_DIR": str(work / "cache"), "SRZOO_MIRROR_ONLY": "1",
           "SRZOO_MIRROR": ",".join(str(f) for f in folders)}
    env.pop("SRZOO_LOG", None)
    import srzoo

    entries = [e for e in srzoo.list_models() if held(e, folders)]
    extras = [m for m in ("onnxruntime", "openvino") if _importable(m)]
    print(f"OpenCV {cv2.__version__}; extras: {', '.join(extras) or 'none (OpenCV alone)'}; "
          f"{len(entries)} model files held by the mirror")
    failed = 0
    for e in entries:
        for b in args.backends.split(","):
            out = work / f"out-{e.name}-{e.scale}-{b.replace(':', '_')}"
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "srzoo", "upscale", str(img), "-m", e.name,
                                "-s", str(e.scale), "--backend", b, "-o", str(out), "-q"],
                               capture_output=True, text=True, env=env, timeout=1800)
            secs = time.perf_counter() - t0
            noisy = [m for m in LOG_MARKS if m in r.stderr]
            result = cv2.imread(str(out / img.name), cv2.IMREAD_UNCHANGED)
            ok = r.returncode == 0 and not noisy and result is not None
            size = "x".join(map(str, result.shape[1::-1])) if result is not None else "-"
            why = "" if ok else (r.stderr.strip().splitlines() or ["?"])[-1][:150]
            print(f"{'ok  ' if ok else 'FAIL'} {e.name:28} x{e.scale} {b:12} {size:>9} {secs:6.1f} s"
                  f"{'  stderr has ' + ','.join(noisy) if noisy else ''}  {why}", flush=True)
            failed += not ok
    print(f"{failed} failed")
    return 1 if failed else 0


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


if __name__ == "__main__":
    sys.exit(main())
