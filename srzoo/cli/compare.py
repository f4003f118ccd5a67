"""``srzoo compare IMAGE -m a,b,c -s S -o grid.png``: a labelled grid of the same
crop from each model, with PSNR/SSIM when the image is the HR reference."""

from __future__ import annotations

import argparse
from pathlib import Path

from srzoo.errors import SrzooError

EXAMPLE = """examples:
  srzoo compare ../shared/datasets/Set5/butterfly.png -m default,espcn,fsrcnn -s 4 -o grid.png
  srzoo compare photo.jpg -m default,lapsrn -s 2 --input -o look.png

By default IMAGE is the high-resolution reference: it is shrunk with MATLAB bicubic
(the standard protocol), every model upscales that, and each tile shows its
PSNR / SSIM (Y, scale px shaved) over the whole image; 'bicubic-matlab' is the
baseline. With --input, IMAGE itself is upscaled and no scores are shown.
"""


def run(args: argparse.Namespace) -> int:
    from srzoo.evaluate.compare import compare
    from srzoo.runtime.imageio import write_image

    box = None
    if args.at:
        try:
            x, y = (int(v) for v in args.at.split(","))
        except ValueError:
            raise SrzooError(f"--at expects X,Y (two whole numbers, e.g. --at 40,60), got {args.at!r}") from None
        box = (x, y)
    res = compare(args.image, args.models, args.scale, reference=not args.input, crop=args.crop,
                  box=box, zoom=args.zoom, cols=args.cols, backend=args.backend)
    out = Path(args.output)
    write_image(out, res.grid)
    if not args.quiet:
        print(res.table())
        x, y, w, h = res.box
        print(f"wrote {out} ({res.grid.shape[1]}x{res.grid.shape[0]}; crop {w}x{h} at {x},{y} of the x{res.scale} output)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="side-by-side grid of the same crop from several models",
                       description=__doc__, epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", help="image file (the HR reference unless --input)")
    p.add_argument("-m", "--models", default="default,bicubic",
                   help="comma-separated model names (default: %(default)s)")
    p.add_argument("-s", "--scale", type=int, default=2)
    p.add_argument("-o", "--output", default="compare.png", help="grid image to write (default: %(default)s)")
    p.add_argument("--input", action="store_true", help="IMAGE is a low-resolution input: no scores")
    p.add_argument("--crop", type=int, default=96, help="crop side in output pixels (default: %(default)s)")
    p.add_argument("--at", metavar="X,Y", help="crop's top-left corner in output pixels "
                   "(default: the most detailed region)")
    p.add_argument("--zoom", type=int, default=None, help="enlarge crops N times (nearest)")
    p.add_argument("--cols", type=int, default=None, help="tiles per row (default: up to 4)")
    p.add_argument("--backend", default="auto")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=run)
