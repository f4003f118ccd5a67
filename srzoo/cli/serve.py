"""``srzoo serve [--host H] [--port P] [--models A,B] [--workers N] [--token T]``."""

from __future__ import annotations

import argparse

from srzoo.errors import SrzooError


def run(args: argparse.Namespace) -> int:
    from srzoo.serve import require_extra

    require_extra()  # one line naming srzoo[serve] when FastAPI/uvicorn are missing
    from srzoo.serve.jobs import JobStore, Limits
    from srzoo.serve.server import check_bind, resolve_token, serve

    token = resolve_token(args.token)
    check_bind(args.host, token)  # before loading anything
    for name in ("max_upload_mb", "max_pixels", "max_output_pixels", "queue", "keep"):
        v = getattr(args, name)
        if v is not None and v <= 0:
            raise SrzooError(f"--{name.replace('_', '-')} must be > 0, got {v:g}")
    lim = Limits()
    if args.max_upload_mb is not None:
        lim.max_upload = int(args.max_upload_mb * (1 << 20))
    if args.max_pixels is not None:
        lim.max_input_pixels = int(args.max_pixels * 1e6)
    if args.max_output_pixels is not None:
        lim.max_output_pixels = int(args.max_output_pixels * 1e6)
    if args.queue is not None:
        lim.queue = int(args.queue)
    if args.keep is not None:
        lim.keep = float(args.keep)
    models = [m for m in (args.models or "").split(",") if m.strip()] or None
    store = JobStore(models=models, limits=lim, workers=args.workers, root=args.workdir)
    serve(args.host, args.port, store=store, token=token, quiet=args.quiet)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="a web page and HTTP API for upscaling (needs srzoo[serve])",
        description="Serve a page (drop images, pick a model and scale, compare before/after, "
                    "download) and its HTTP API (/openapi.json) on http://127.0.0.1:8000. Binds "
                    "loopback unless --host says otherwise; any other address needs a token. "
                    "Results are kept in a private temporary folder and deleted after --keep "
                    "seconds and when the server stops.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; anything else needs --token)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--models", default=None, metavar="A,B",
                   help="models offered, comma-separated (default: every model that runs without "
                        "a download: the built-in ones and those in the cache)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="jobs run at once (default: one per core, at most 4; models are shared)")
    p.add_argument("--token", default=None,
                   help="clients must send 'Authorization: Bearer TOKEN' (default "
                        "$SRZOO_SERVE_TOKEN; prefer the variable: arguments show in `ps`)")
    p.add_argument("--queue", type=int, default=None, metavar="N",
                   help="jobs that may wait (default 32; one more is answered 503 + Retry-After)")
    p.add_argument("--keep", type=float, default=None, metavar="SECONDS",
                   help="results are deleted this long after they are done (default 3600)")
    p.add_argument("--max-upload-mb", type=float, default=None, metavar="MB",
                   help="largest upload (default 50)")
    p.add_argument("--max-pixels", type=float, default=None, metavar="MP",
                   help="largest input image in megapixels (default 25)")
    p.add_argument("--max-output-pixels", type=float, default=None, metavar="MP",
                   help="largest model output in megapixels (default 100)")
    p.add_argument("--workdir", default=None, metavar="DIR",
                   help="a private folder for uploads and results is made in DIR (default: the "
                        "system temp folder)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run)
