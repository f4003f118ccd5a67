"""``srzoo upscale INPUT... [-m MODEL] [-s SCALE] [-o OUT] [--backend B] [--tile N]``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

from srzoo.errors import SrzooError
from srzoo.jobs.files import FileResult
from srzoo.runtime import backends


EXAMPLE = """examples:
  srzoo upscale photo.jpg                          x2 with the built-in model -> photo_default_x2.jpg
  srzoo upscale photo.jpg -m realesrgan-x4plus-ncnn -s 4 -o out/
                                                   -> out/photo_realesrgan-x4plus-ncnn_x4.jpg
  srzoo upscale photos/ -m espcn -s 3 -o big/ --format png   a folder, written as PNG
  srzoo upscale "shots/*.jpg" -m fsrcnn --width 1920 --quality 90   fit 1920 wide
  srzoo upscale in.png --width 800 --height 600    largest size inside 800x600 (--stretch: exact)
  srzoo upscale big.png -m realesrgan-x4plus-ncnn -s 4 --memory 800M   tiles that fit 800 MB
  srzoo upscale photo.jpg -m ~/Downloads/4x-model.pth   a model file: converted once, x4 as it says

Outputs keep the input's format, ICC colour profile, EXIF (camera, date; the
EXIF orientation is applied to the pixels and reset to 1) and XMP. Pick a model
with `srzoo list`; a single long image shows a bar over its tiles on a terminal.
"""


def _size(hw: tuple[int, int] | None) -> str:
    return f"{hw[1]}x{hw[0]}" if hw else "?"


def run(args: argparse.Namespace) -> int:
    """:func:`_run` with ``--precision`` in ``SRZOO_PRECISION``, ``--memory`` in
    ``SRZOO_MEMORY`` and ``-v`` as ``SRZOO_LOG=warning`` (unless set) for the duration
    (so batch workers, processes or Dask, inherit them), restored afterwards."""
    from contextlib import ExitStack

    from srzoo import config

    with ExitStack() as scopes:
        if args.precision:
            scopes.enter_context(config.scoped("SRZOO_PRECISION", args.precision))
        if args.memory is not None:
            try:
                config.setting("SRZOO_MEMORY").parse(args.memory)
            except SrzooError:
                raise SrzooError(f"--memory {args.memory!r} is not a size: use bytes or a size "
                                 "such as 2G or 500M (0: no limit)") from None
            scopes.enter_context(config.scoped("SRZOO_MEMORY", args.memory))
        if args.verbose and not args.quiet:  # -v: OpenCV's own warnings too
            scopes.enter_context(config.scoped_default("SRZOO_LOG", "warning"))
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Upscale every input: one line per written file (stdout), one ``srzoo: error:
    FILE: REASON`` line per failure (stderr), then a summary; 1 if any failed."""
    from tqdm import tqdm

    def report(r: FileResult) -> None:
        if r.error is not None:
            print(f"srzoo: error: {r.input}: {r.error}", file=sys.stderr, flush=True)
        elif args.quiet and args.verbose and r.output is not None and not r.skipped:
            print(r.output, flush=True)  # -q -v: only the paths, for scripts
        elif not args.quiet and not r.skipped and r.in_shape is not None:
            # tqdm.write keeps a progress bar (several files on a terminal) intact
            secs = "" if r.seconds is None else f", {r.seconds:.2f} s"
            tqdm.write(f"{r.output}  ({r.input}, {_size(r.in_shape)} -> {_size(r.out_shape)}{secs})",
                       file=sys.stdout)

    from srzoo.jobs.batch import run_batch
    from srzoo.jobs.video import split_videos


    _model_path(args)
    if args.chunk is not None:
        return _run_big(args)
    t0 = time.perf_counter()
    videos, images = split_videos(args.inputs)
    results = [_video(args, src, single=len(args.inputs) == 1, report=report) for src in videos]
    if images:
        rep = run_batch(images, args.model, args.scale, output=args.output,
                        backend=args.backend, tile=args.tile, overwrite=args.overwrite,
                        progress=False if args.quiet else None, on_result=report,
                        **_batch_options(args))
        if len(rep.results) > 1 and (not args.quiet or rep.failed):
            print(rep.summary(), file=sys.stderr)
        results += rep.results
    failed = sum(1 for r in results if not r.ok)
    written = [r for r in results if r.ok and not r.skipped and r.output is not None]
    done = len(written)
    if failed and videos and len(results) > 1:
        print(f"srzoo: {failed} of {len(results)} inputs failed", file=sys.stderr)
    if not args.quiet and done:
        where = (str(written[0].output) if done == 1
                 else str(args.output) if args.output else "beside the inputs")
        print(f"upscaled {_count(written, {str(v) for v in videos})} {_scales(written, args.scale)} "
              f"with {args.model_name} "
              f"in {time.perf_counter() - t0:.2f} s -> {where}", flush=True)
    return 1 if failed else 0


def _model_path(args: argparse.Namespace) -> None:
    """``-m PATH``: the model file's entry (its scale when -s is not given); ``-s``
    defaults to 2 for a model name. Sets ``args.model_name`` for the messages."""
    from srzoo.jobs.upscaling import model_for

    args.model = model_for(args.model, args.scale)  # -s picks a multi-scale file's scale, also with --width
    is_entry = not isinstance(args.model, str)
    if args.scale is None:
        args.scale = args.model.scale if is_entry and args.model.scale else 2
    args.model_name = args.model.name if is_entry else args.model


def _count(written: list[FileResult], videos: set[str]) -> str:
    """``1 image``, ``1 video``, ``3 images and 1 video``."""
    nv = sum(1 for r in written if r.input in videos)
    ni = len(written) - nv
    parts = [f"{n} {what}{'s' if n > 1 else ''}" for n, what in ((ni, "image"), (nv, "video")) if n]
    return " and ".join(parts)


def _scales(written: list[FileResult], asked: float) -> str:
    """The scale really applied: ``x2``, ``x4.17``, ``x2-x4`` (sizes differ), or
    ``x1.8 by 2.1`` (--stretch)."""
    ratios = set()
    for r in written:
        if r.in_shape and r.out_shape:
            sy, sx = (round(o / i, 2) for o, i in zip(r.out_shape, r.in_shape))
            ratios.add((sx, sy))
    if not ratios:
        return f"x{asked:g}"
    if len(ratios) == 1:
        ((sx, sy),) = ratios
        return f"x{sx:g}" if abs(sx - sy) <= 0.02 else f"x{sx:g} by {sy:g}"
    lo, hi = min(min(r) for r in ratios), max(max(r) for r in ratios)
    return f"x{lo:g}-x{hi:g}"


# ---- scale-out and any-size options (srzoo.jobs.batch, srzoo.jobs.resize, srzoo.jobs.bigimage) -------------
def _run_big(args: argparse.Namespace) -> int:
    """``--chunk N``: one image larger than memory, chunk store to chunk store."""
    from srzoo.jobs.batch import _env_scheduler
    from srzoo.jobs.bigimage import upscale_big
    from srzoo.jobs.resize import parse_scale

    if len(args.inputs) != 1 or not args.output:
        raise SrzooError("--chunk takes one input (.zarr, .tif) and -o OUT.zarr or OUT.tif")
    scale = parse_scale(args.scale)
    if isinstance(scale, float) or args.width or args.height:
        raise SrzooError("--chunk runs a model's own scale only (no --width/--height or fractional -s)")
    address = args.scheduler or _env_scheduler()
    client = None
    if address:
        from srzoo.jobs.executors import DaskExecutor

        client = DaskExecutor(None, address, workers=args.jobs).client
    try:
        out = upscale_big(args.inputs[0], args.output, args.model, scale, chunk=args.chunk,
                          backend=args.backend, client=client)
    finally:
        if client is not None:
            client.close()
    if args.verbose:
        print(out, flush=True)
    return 0


def _batch_options(args: argparse.Namespace) -> dict:
    return {"jobs": args.jobs, "threads": args.threads, "scheduler": args.scheduler,
            "force_jobs": args.force_jobs,
            "skip_existing": args.skip_existing, "json_report": args.json_report,
            "width": args.width, "height": args.height, "format": args.format,
            "quality": args.quality, "stretch": args.stretch}


def _add_batch_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("many files and any size")
    g.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help="run on N local worker processes, each loading the model once (default 1)")
    g.add_argument("--force-jobs", action="store_true",
                   help="run --jobs N workers even when N is above the CPU cores (default: capped)")
    g.add_argument("--threads", type=int, default=None, metavar="T",
                   help="OpenCV threads per worker (default: cores / workers)")
    g.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="run on a Dask cluster: tcp://HOST:8786, or 'local' for a local one of "
                        "--jobs workers (default $SRZOO_SCHEDULER; needs srzoo[dask])")
    g.add_argument("--skip-existing", action="store_true",
                   help="skip inputs whose output already exists (resume an interrupted batch)")
    g.add_argument("--json-report", metavar="FILE", default=None,
                   help="write per-file status, times and a summary as JSON")
    g.add_argument("--width", type=int, default=None, metavar="W",
                   help="output width in pixels (height follows the aspect ratio unless given)")
    g.add_argument("--height", type=int, default=None, metavar="H",
                   help="output height in pixels; with --width: the largest size inside both "
                        "that keeps the aspect ratio")
    g.add_argument("--stretch", action="store_true",
                   help="with --width and --height: exactly that size, changing the aspect ratio")
    g.add_argument("--chunk", type=int, default=None, metavar="N",
                   help="one image larger than memory (.zarr or .tif) as a Dask array of NxN "
                        "chunks into -o OUT.zarr or OUT.tif (needs srzoo[dask])")


def _video(args: argparse.Namespace, src: Path, single: bool,
           report: Callable[[FileResult], None]) -> FileResult:
    """One video through :func:`srzoo.upscale_video`; its summary line on stderr unless -q."""
    from srzoo.jobs.video import upscale_video, video_output_path
    from srzoo.runtime.upscaler import get_upscaler

    up = get_upscaler(args.model, args.scale, backend=args.backend)  # model errors stop everything
    out = Path(args.output) if args.output else None
    res = FileResult(str(src))
    try:
        dst = video_output_path(src, out, up.model, up.scale, single=single)
        done = upscale_video(src, dst, upscaler=up, tile=args.tile, codec=args.codec, crf=args.crf,
                             preset=args.preset, pix_fmt=args.pix_fmt, on_corrupt=args.on_corrupt,
                             progress=False if args.quiet else None,
                             on_warning=lambda m: print(f"srzoo: warning: {m}", file=sys.stderr))
        res.output = dst
        if not args.quiet:
            print(done.summary(), file=sys.stderr, flush=True)
    except (SrzooError, OSError) as e:
        res.error = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        if res.error.startswith(f"{src}: "):
            res.error = res.error[len(f"{src}: "):]
    report(res)
    return res


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale", help="upscale image files, folders or globs, and videos",
        description="Upscale images. Outputs keep the input's format (JPEG in, JPEG out; "
                    "--format to choose), its ICC colour profile, EXIF (camera, date; the EXIF "
                    "orientation is applied to the pixels), XMP and PNG text: "
                    "<name>_<model>_x<scale>.<ext> beside each input or in the -o folder. "
                    "Inputs are never overwritten unless --overwrite is given. A video input (any container FFmpeg reads) becomes "
                    "a video: <name>_<model>_x<scale>.<ext> with its audio, subtitles and timing. "
                    "Prints one line per written file and a summary (where the result went, how "
                    "long it took).",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("-m", "--model", default="default",
                   help="model name (see `srzoo list`; default: 'default', srzoo's built-in "
                        "model, which ships in the package and needs no download), or the path of "
                        "a model file (.onnx, .pth, .safetensors, ncnn .param with its .bin): "
                        "converted and checked once, cached by its hash")
    p.add_argument("-s", "--scale", type=float, default=None,
                   help="upscaling factor, any number >= 1 (default 2, or the model file's own "
                        "scale for -m PATH): a factor the model lacks "
                        "runs the next larger model scale, then shrinks with cv2.INTER_AREA")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output folder (created), or output file for a single input")
    p.add_argument("--backend", default="auto",
                   help=f"{', '.join(backends.NAMES)} or ENGINE:TARGET (default auto; see `srzoo info`)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16", "int8", "auto"), default=None,
                   help="arithmetic of the network (default $SRZOO_PRECISION, else fp32: identical "
                        "results on every engine); a reduced one is measured against fp32 on a probe "
                        "first and refused with the numbers when over the quality budget; auto: the "
                        "fastest within budget")
    p.add_argument("--tile", type=int, default=None, metavar="N",
                   help="process in N×N input tiles (default: automatic for large images; 0: never)")
    p.add_argument("--memory", default=None, metavar="SIZE",
                   help="memory one network run may use, e.g. 2G or 500M: larger inputs are cut "
                        "into tiles that fit (default $SRZOO_MEMORY, else a quarter of the "
                        "available memory, at most 1G; 0: no limit)")
    p.add_argument("--overwrite", action="store_true", help="allow an output to replace an input file")
    p.add_argument("--format", "-f", default=None, choices=("png", "jpg", "webp", "tif", "bmp"),
                   help="output format (default: the input's: JPEG in, JPEG out)")
    p.add_argument("--quality", type=int, default=None, metavar="Q",
                   help="JPEG/WebP quality 1-100 (default: JPEG 95, WebP lossless)")
    v = p.add_argument_group("video inputs (detected by their container; need srzoo[video])")
    v.add_argument("--codec", default=None,
                   help="libx264 (default; libvpx-vp9 for .webm), libx265, libsvtav1, libvpx-vp9, ffv1")
    v.add_argument("--crf", type=int, default=None, help="encoder quality (default: x264 17, visually lossless)")
    v.add_argument("--preset", default=None, help="encoder speed preset (default: x264 medium)")
    v.add_argument("--pix-fmt", default=None, metavar="FMT",
                   help="output pixel format (default: the input's; 10-bit stays 10-bit)")
    v.add_argument("--on-corrupt", choices=("skip", "fail"), default="skip",
                   help="a packet the decoder rejects: skip it with a warning (default) or fail")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print nothing but errors (no per-file lines, bar or summary)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show OpenCV's own warnings (SRZOO_LOG=warning); with -q: print only the "
                        "path of each written file (for scripts)")
    _add_batch_options(p)
    p.set_defaults(func=run)
