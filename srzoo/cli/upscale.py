"""``srzoo upscale INPUT... [-m MODEL] [-s SCALE] [-o OUT] [--backend B] [--tile N]``."""

from __future__ import annotations

import argparse
import sys
import time

from .. import backends
from ..upscaler import FileResult, upscale_files


def _size(hw: tuple[int, int] | None) -> str:
    return f"{hw[1]}x{hw[0]}" if hw else "?"


def run(args: argparse.Namespace) -> int:
    """Upscale every input: one line per written file (stdout), one ``srzoo: error:
    FILE: REASON`` line per failure (stderr), then a summary; 1 if any failed."""
    from tqdm import tqdm

    def report(r: FileResult) -> None:
        if r.error is not None:
            print(f"srzoo: error: {r.input}: {r.error}", file=sys.stderr, flush=True)
        elif not args.quiet:
            # tqdm.write keeps a progress bar (several files on a terminal) intact
            tqdm.write(f"{r.output}  ({r.input}, {_size(r.in_shape)} -> {_size(r.out_shape)}, "
                       f"{r.seconds:.2f} s)", file=sys.stdout)

    t0 = time.perf_counter()
    results = upscale_files(args.inputs, args.model, args.scale, output=args.output,
                            backend=args.backend, tile=args.tile, overwrite=args.overwrite,
                            progress=False if args.quiet else None, on_result=report)
    failed = sum(1 for r in results if not r.ok)
    done = len(results) - failed
    if failed and len(results) > 1:
        print(f"srzoo: {failed} of {len(results)} inputs failed", file=sys.stderr)
    if not args.quiet and done:
        where = (str(next(r.output for r in results if r.ok)) if done == 1
                 else str(args.output) if args.output else "beside the inputs")
        print(f"upscaled {done} image{'s' if done > 1 else ''} x{args.scale} with {args.model} "
              f"in {time.perf_counter() - t0:.2f} s -> {where}", flush=True)
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale", help="upscale image files, folders or globs",
        description="Upscale images. Outputs are PNG: <name>_<model>_x<scale>.png beside each "
                    "input, or <name>.png in the -o folder. Inputs are never overwritten "
                    "unless --overwrite is given. Prints one line per written file and a "
                    "summary (where the result went, how long it took).")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("-m", "--model", default="default",
                   help="model name (see `srzoo list`; default: 'default', srzoo's built-in "
                        "model, which ships in the package and needs no download)")
    p.add_argument("-s", "--scale", type=int, default=2, help="upscaling factor (default 2)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output folder (created), or output file for a single input")
    p.add_argument("--backend", default="auto",
                   help=f"{', '.join(backends.NAMES)} or ENGINE:TARGET (default auto; see `srzoo info`)")
    p.add_argument("--tile", type=int, default=None, metavar="N",
                   help="process in N×N input tiles (default: automatic for large images; 0: never)")
    p.add_argument("--overwrite", action="store_true", help="allow an output to replace an input file")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print nothing but errors (no per-file lines, bar or summary)")
    p.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)  # lines are the default now
    p.set_defaults(func=run)
