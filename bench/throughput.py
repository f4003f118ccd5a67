"""Batch throughput: images per second for serial, a local process pool and a Dask LocalCluster.

The inputs are the 14 Set14 images (Set14-sized, 250x361 to 768x512; repeated
``--copies`` times under different names). Each executor upscales the same
files into its own folder; the outputs are checked to be byte-identical to the
serial run's. Scaling efficiency = (rate / one-core rate) / cores used, where
the one-core rate is the serial path with ``cv2.setNumThreads(1)``.

* serial: this process, OpenCV with all its threads (the default `srzoo upscale`);
* ``--jobs N``: ``srzoo.jobs.batch.run_batch(jobs=N)``, timed end to end, so the
  start of N spawned processes and their model loads are included, as a user
  of ``srzoo upscale --jobs N`` pays them;
* Dask: a ``distributed.LocalCluster`` of N single-threaded worker processes,
  started and warmed up (model loaded) before the clock starts, as a
  long-lived cluster would be.

Run from the repository root:

    SRZOO_CACHE_DIR=$(mktemp -d) SRZOO_MIRROR=../shared/models/opencv \\
        python bench/throughput.py --model fsrcnn --scale 2 --jobs 2 --copies 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from srzoo import batch  # noqa: E402
from srzoo.jobs.executors import cores  # noqa: E402


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fsrcnn")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2, help="workers for the pool and the cluster")
    ap.add_argument("--copies", type=int, default=2, help="each Set14 image this many times")
    ap.add_argument("--set14", default=str(HERE.parent.parent / "shared" / "datasets" / "Set14"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="srzoo-throughput-"))
    try:
        src = work / "in"
        src.mkdir()
        for p in sorted(Path(args.set14).glob("*.png")):
            for c in range(args.copies):
                shutil.copy(p, src / f"{p.stem}_{c}.png")
        n = len(list(src.iterdir()))
        rows = []

        def record(name: str, rep: batch.BatchReport, seconds: float, workers: int) -> None:
            assert rep.failed == 0 and rep.written == n, [r.error for r in rep.results if r.error]
            cpu = sum(r.get("cpu_seconds") or 0.0 for r in rep.records) / max(1, len(rep.records))
            rows.append({"executor": name, "workers": workers, "images": n,
                         "seconds": round(seconds, 2), "images_per_s": round(n / seconds, 3),
                         "cpu_s_per_image": round(cpu, 3)})

        batch.run_batch([src / sorted(os.listdir(src))[0]], args.model, args.scale,
                        output=work / "warm", progress=False)  # fetch + load once
        import cv2

        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        t = time.perf_counter()
        rep = batch.run_batch([src], args.model, args.scale, output=work / "one", progress=False)
        record("serial, 1 OpenCV thread (the 1-core baseline)", rep, time.perf_counter() - t, 1)
        cv2.setNumThreads(threads)
        t = time.perf_counter()
        rep = batch.run_batch([src], args.model, args.scale, output=work / "serial", progress=False)
        record(f"serial, {threads} OpenCV threads (default)", rep, time.perf_counter() - t, cores())
        ref = _files(work / "serial")
        assert _files(work / "one") == ref, "1-thread outputs differ"

        t = time.perf_counter()
        rep = batch.run_batch([src], args.model, args.scale, output=work / "pool", jobs=args.jobs,
                              progress=False)
        record(f"--jobs {args.jobs} ({rep.executor}, start included)", rep,
               time.perf_counter() - t, args.jobs)
        assert _files(work / "pool") == ref, "pool outputs differ from serial"

        import distributed

        with distributed.LocalCluster(n_workers=args.jobs, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as lc, distributed.Client(lc) as cl:
            batch.run_batch([src / sorted(os.listdir(src))[0]], args.model, args.scale,
                            output=work / "warm2", client=cl, progress=False)
            cl.run(lambda: None)
            t = time.perf_counter()
            rep = batch.run_batch([src], args.model, args.scale, output=work / "dask", client=cl,
                                  threads=max(1, cores() // args.jobs), progress=False)
            record(f"Dask LocalCluster {args.jobs} workers x 1 thread", rep,
                   time.perf_counter() - t, args.jobs)
        assert _files(work / "dask") == ref, "Dask outputs differ from serial"

        base = rows[0]["images_per_s"]  # one core
        for r in rows:
            r["speedup"] = round(r["images_per_s"] / base, 2)
            r["efficiency"] = round(r["speedup"] / r["workers"], 2)  # per core used
        if args.json:
            print(json.dumps({"model": args.model, "scale": args.scale, "cores": cores(),
                              "rows": rows}, indent=2))
        else:
            print(f"{args.model} x{args.scale}, {n} Set14 images, {cores()} cores; outputs "
                  "byte-identical across executors")
            print("| executor | cores used | images/s | speed-up vs 1 core | scaling efficiency "
                  "| worker CPU s / image |")
            print("|---|---:|---:|---:|---:|---:|")
            for r in rows:
                print(f"| {r['executor']} | {r['workers']} | {r['images_per_s']:.2f} | "
                      f"{r['speedup']:.2f} | {r['efficiency']:.2f} | {r['cpu_s_per_image']:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
