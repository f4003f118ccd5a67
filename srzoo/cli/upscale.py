"""``srzoo upscale INPUT... -m MODEL -s SCALE [-o OUT] [--backend B] [--tile N]``."""

from __future__ import annotations

import argparse
import sys

from .. import backends
from ..upscaler import FileResult, upscale_files


def run(args: argparse.Namespace) -> int:
    """Upscale every input; one ``srzoo: error: FILE: REASON`` line per failure; 1 if any failed."""

    def report(r: FileResult) -> None:
        if r.error is not None:
            print(f"srzoo: error: {r.input}: {r.error}", file=sys.stderr, flush=True)
        elif args.verbose:
            print(r.output, flush=True)

    results = upscale_files(args.inputs, args.model, args.scale, output=args.output,
                            backend=args.backend, tile=args.tile, overwrite=args.overwrite,
                            progress=False if args.quiet else None, on_result=report)
    failed = sum(1 for r in results if not r.ok)
    if failed and len(results) > 1:
        print(f"srzoo: {failed} of {len(results)} inputs failed", file=sys.stderr)
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale", help="upscale image files, folders or globs",
        description="Upscale images. Outputs are PNG: <name>_<model>_x<scale>.png beside each "
                    "input, or <name>.png in the -o folder. Inputs are never overwritten "
                    "unless --overwrite is given.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("-m", "--model", default="espcn", help="model name (see `srzoo list`; default espcn)")
    p.add_argument("-s", "--scale", type=int, default=2, help="upscaling factor (default 2)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output folder (created), or output file for a single input")
    p.add_argument("--backend", default="auto",
                   help=f"{', '.join(backends.NAMES)} or ENGINE:TARGET (default auto; see `srzoo info`)")
    p.add_argument("--tile", type=int, default=None, metavar="N",
                   help="process in N×N input tiles (default: automatic for large images; 0: never)")
    p.add_argument("--overwrite", action="store_true", help="allow an output to replace an input file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="print each output path")
    p.set_defaults(func=run)
