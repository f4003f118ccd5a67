"""``srzoo bench``: speed and PSNR/SSIM per model, scale and backend (thin over srzoo.evaluate.benchmark)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from srzoo.errors import SrzooError

EXAMPLE = """examples:
  srzoo bench --models espcn,fsrcnn,bicubic --scales 2,3,4 --dataset set5
  srzoo bench --models lapsrn --backends auto,opencv:cpu,onnxruntime:cpu,openvino:cpu,onnxruntime:cuda
  srzoo bench --models espcn --backends cpu,cuda,opencl --dataset ~/pics --json out.json
  srzoo bench --models espcn --scales 4 --threads 1,default --protocol opencv --markdown r.md

Protocol 'matlab' (default) is the one of the SR literature (MATLAB bicubic
degradation, Y channel, 'scale' px shaved); when 'bicubic' runs under it, a row
'bicubic-matlab' (MATLAB imresize upsampling) gives the published baseline.
Protocol 'opencv' repeats OpenCV's dnn_superres benchmark (cv2.resize, all channels).
"""


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _threads(text: str) -> list[int | None]:
    from srzoo.evaluate.benchmark import parse_threads

    try:
        return parse_threads(text)
    except SrzooError as e:  # a usage error: argparse prints it with the usage line, exit 2
        raise argparse.ArgumentTypeError(str(e)) from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark speed and PSNR/SSIM of models on a dataset",
        description="Measure model load time, per-image latency (median, p95), output Mpix/s "
                    "and PSNR/SSIM per model x scale x backend x dataset.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="espcn,fsrcnn,bicubic",
                   help="comma-separated model names (default: %(default)s)")
    p.add_argument("--scales", type=_int_list, default=None,
                   help="comma-separated scales (default: every scale each model has; 2,3,4 for "
                        "interpolation)")
    p.add_argument("--backends", default="auto",
                   help="comma-separated backends, e.g. auto,opencv:cpu,onnxruntime:cpu,openvino:cpu,"
                        "onnxruntime:cuda (default: %(default)s); ones that cannot run here are "
                        "reported as unavailable rows that say why")
    p.add_argument("--dataset", action="append", default=None, metavar="PATH|NAME",
                   help="folder of HR images or registry dataset name (set5, set14); "
                        "repeat or comma-separate for several (default: set5)")
    p.add_argument("--protocol", choices=("matlab", "opencv"), default="matlab",
                   help="evaluation protocol (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per image (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per image first (default: %(default)s)")
    p.add_argument("--threads", type=_threads, default=None, metavar="N[,default]",
                   help="thread counts to measure, given to every engine, e.g. 1,default "
                        "(default: each engine's default)")
    p.add_argument("--precisions", default=None, metavar="P[,P...]",
                   help="precisions to compare on every backend: fp32, bf16, fp16, int8, auto "
                        "(default: fp32); a reduced one is measured against fp32 first and reported "
                        "unavailable, with the numbers, when over the quality budget")
    p.add_argument("--per-image", action="store_true", help="keep per-image PSNR/SSIM in the JSON")
    p.add_argument("--json", metavar="FILE", help="write the full report as JSON")
    p.add_argument("--csv", metavar="FILE", help="write one CSV line per result")
    p.add_argument("--markdown", metavar="FILE", help="write a Markdown table")
    p.add_argument("--plot", metavar="FILE.png", help="plot speed against PSNR (needs matplotlib)")
    p.add_argument("--gallery", metavar="DIR",
                   help="also write a labelled side-by-side grid per dataset image and scale "
                        "(srzoo compare) under DIR/<dataset>/")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no table on stdout")
    p.set_defaults(func=run)


class _Bar:
    """tqdm on stderr when it is a terminal; silent otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.bar = None
        self.enabled = not quiet and sys.stderr.isatty()

    def __call__(self, done: int, total: int, desc: str) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True, leave=False)
        self.bar.set_description_str(desc, refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _command(args: argparse.Namespace, datasets: list[str]) -> str:
    """The equivalent command line (as recorded in the report)."""
    parts = ["srzoo bench", f"--models {args.models}"]
    if args.scales:
        parts.append("--scales " + ",".join(map(str, args.scales)))
    parts += [f"--backends {args.backends}", "--dataset " + ",".join(datasets),
              f"--protocol {args.protocol}", f"--repeat {args.repeat}", f"--warmup {args.warmup}"]
    if args.threads:
        parts.append("--threads " + ",".join("default" if t is None else str(t) for t in args.threads))
    if args.precisions:
        parts.append(f"--precisions {args.precisions}")
    if args.per_image:
        parts.append("--per-image")
    return " ".join(parts)


def _check_writable(path: str, flag: str) -> None:
    """Raise SrzooError unless ``path`` can be written (created and removed
    again when it did not exist, so nothing is left behind)."""
    import os
    from pathlib import Path

    p = Path(path).expanduser()
    if p.is_dir():
        raise SrzooError(f"{flag} {path}: is a folder; give a file name")
    if not p.parent.exists():  # the report writers create folders: check the first existing one
        anc = p.parent
        while not anc.exists() and anc != anc.parent:
            anc = anc.parent
        if not anc.is_dir():
            raise SrzooError(f"{flag} {path}: cannot write: {anc} is a file, not a folder")
        if not os.access(anc, os.W_OK | os.X_OK):
            raise SrzooError(f"{flag} {path}: cannot write: cannot create folders in {anc}")
        return
    existed = p.exists()
    try:
        with open(p, "a"):
            pass
    except OSError as e:
        raise SrzooError(f"{flag} {path}: cannot write: {e.strerror or e}") from None
    if not existed:
        try:
            os.unlink(p)
        except OSError:
            pass


def run(args: argparse.Namespace) -> int:
    from srzoo.evaluate.benchmark import bench

    if args.repeat < 1:
        raise SrzooError(f"--repeat must be >= 1 (timed runs per image), got {args.repeat}")
    if args.warmup < 0:
        raise SrzooError(f"--warmup must be >= 0, got {args.warmup}")
    for flag in ("json", "csv", "markdown", "plot"):  # fail before a long run, not after it
        if getattr(args, flag):
            _check_writable(getattr(args, flag), f"--{flag}")
    datasets = [d.strip() for spec in (args.dataset or ["set5"]) for d in spec.split(",") if d.strip()]
    if args.plot:  # fail before a long run, not after it
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise SrzooError("--plot needs matplotlib: pip install 'srzoo[plot]'") from None
    bar = _Bar(args.quiet)
    try:
        report = bench(args.models, args.scales, args.backends, datasets, protocol=args.protocol,
                       repeat=args.repeat, warmup=args.warmup, threads=args.threads,
                       progress=bar, per_image=args.per_image, precisions=args.precisions)
    finally:
        bar.close()
    report.settings["command"] = _command(args, datasets)
    if args.json:
        report.to_json(args.json)
    if args.csv:
        report.to_csv(args.csv)
    if args.markdown:
        report.to_markdown(args.markdown)
    if args.plot:
        report.plot(args.plot)
    if not args.quiet:
        print(report.to_markdown())
    if args.gallery:
        _gallery(args, report)
    errors = [r for r in report.results if str(r["status"]).startswith("error")]
    for r in errors:
        print(f"srzoo: {r['model']} x{r['scale']} on {r['backend']}: {r['status']}", file=sys.stderr)
    return 1 if errors else 0


def _gallery(args: argparse.Namespace, report: Any) -> None:
    """``--gallery DIR``: one srzoo.evaluate.compare grid per image of each benchmarked dataset."""
    from srzoo.evaluate.compare import gallery

    scales = sorted({int(r["scale"]) for r in report.results})
    models = report.settings["models"]  # compare() puts bicubic-matlab first by itself (not twice)
    # the first --backends entry that ran a network here (the matlab baseline runs on none)
    nets = [r for r in report.results if r["model"] != "bicubic-matlab"]
    ran = {r["backend"] for r in nets if r["status"] == "ok"}
    backend = next((b for b in args.backends.split(",") if b in ran or not nets), None)
    if backend is None:  # before any folder is made
        raise SrzooError(f"--gallery: no backend of --backends {args.backends} ran here; nothing to draw")
    for folder in report.settings["datasets"].values():
        paths = gallery(folder, args.gallery, models, scales, backend=backend)
        if not args.quiet:
            print(f"gallery: {len(paths)} grids in {Path(args.gallery) / Path(folder).name.lower()}")
