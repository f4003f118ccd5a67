"""The ASGI app of ``srzoo serve``: the HTTP API (FastAPI, so ``/openapi.json``
documents it) and the page in ``static/``.

Every error is JSON ``{"error": "one line"}`` with a 4xx/5xx status; the texts
are those of the CLI (:mod:`srzoo.serve.jobs` checks with the same functions).

:class:`Guard`, outside the app, runs before any route and before any body is
parsed: the token (when the server has one) for ``/api/``, then the request
body read whole with a size limit (413, from ``Content-Length`` without
reading, or while counting), a pause limit and a minimum average rate (408 for
a client trickling bytes). Uploads are then parsed in memory (the multipart
parser's spool is raised to the body limit), so nothing lands in the system
temp folder.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any, Awaitable, Callable

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartParser

from srzoo._version import __version__
from srzoo.serve.jobs import JobStore, RequestError

STATIC = Path(__file__).resolve().parent / "static"
#: most results in one zip
ZIP_MAX = 200

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


async def _send_json(send: Send, status: int, body: dict[str, Any],
                     headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body).encode()
    hs = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
          (b"connection", b"close")]
    hs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hs})
    await send({"type": "http.response.body", "body": raw})


class Guard:
    """Token check and bounded, timed body reading, before the app sees a request."""

    def __init__(self, app: Any, store: JobStore, token: str | None) -> None:
        self.app = app
        self.store = store
        self.token = token or None

    def _authorized(self, scope: Scope) -> bool:
        if self.token is None:
            return True
        for k, v in scope.get("headers", []):
            if k == b"authorization":
                got = v.decode("latin-1").strip()
                if got.lower().startswith("bearer "):
                    return hmac.compare_digest(got[7:].strip().encode(), self.token.encode())
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path.startswith("/api/") and not self._authorized(scope):
            return await _send_json(send, 401, {
                "error": "this server needs a token: send the header 'Authorization: Bearer TOKEN' "
                         "(the page asks for it)"}, {"WWW-Authenticate": "Bearer"})
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        lim = self.store.limits
        declared = None
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    return await _send_json(send, 400, {"error": "Content-Length is not a number"})
        too_big = {"error": f"the request is above this server's limit of {lim.max_upload} bytes; "
                            "send a smaller file"}
        if declared is not None and declared > lim.max_upload + 65536:
            return await _send_json(send, 413, too_big)
        body = bytearray()
        t0 = time.monotonic()
        while True:
            try:
                msg = await asyncio.wait_for(receive(), timeout=lim.upload_idle)
            except asyncio.TimeoutError:
                return await _send_json(send, 408, {
                    "error": f"the upload stalled for {lim.upload_idle:g} s; send it again"})
            if msg["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            body += msg.get("body", b"")
            if len(body) > lim.max_upload + 65536:  # the file's limit is checked exactly later
                return await _send_json(send, 413, too_big)
            if not msg.get("more_body", False):
                break
            spent = time.monotonic() - t0
            if spent > lim.upload_grace and len(body) / spent < lim.min_rate:
                return await _send_json(send, 408, {
                    "error": f"the upload is too slow ({len(body) / spent:.0f} bytes/s after "
                             f"{spent:.0f} s, at least {lim.min_rate:.0f} needed); send it again"})
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _error(e: RequestError) -> JSONResponse:
    return JSONResponse({"error": str(e)}, status_code=e.status, headers=e.headers)


def create_app(store: JobStore, *, token: str | None = None) -> Any:
    """The ASGI app for ``store`` (started by the caller), wrapped in :class:`Guard`."""
    # uploads stay in memory (their size is bounded by Guard): never a temp file
    # outside the server's folder
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, store.limits.max_upload + 65536)

    app = FastAPI(title="srzoo serve", version=__version__, docs_url=None, redoc_url=None,
                  description="Upscale images with srzoo's models. Errors are JSON "
                              "{\"error\": \"one line\"}; send 'Authorization: Bearer TOKEN' "
                              "when the server was started with a token.")

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, e: RequestError) -> JSONResponse:
        return _error(e)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        errs = e.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        if where == "image" and first.get("type") == "missing":
            text = "the request has no image: send it as the multipart file field 'image'"
        else:
            text = f"{where or 'request'}: {first.get('msg', 'invalid')}"
        return JSONResponse({"error": text}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(e.detail)}, status_code=e.status_code,
                            headers=getattr(e, "headers", None))

    @app.get("/api/models", summary="The models this server offers, with scales, tags and limits")
    def models() -> dict[str, Any]:
        lim = store.limits
        return {"models": store.model_info(), "default": store.models[0], "version": __version__,
                "limits": {"max_upload": lim.max_upload, "max_input_pixels": lim.max_input_pixels,
                           "max_output_pixels": lim.max_output_pixels, "queue": lim.queue,
                           "keep_seconds": lim.keep},
                "workers": store.workers}

    @app.get("/api/health", summary="Queue and worker counts")
    def health() -> dict[str, Any]:
        return {"ok": True, **store.stats()}

    @app.post("/api/jobs", status_code=202,
              summary="Upload one image (multipart field 'image') with options; returns the job",
              responses={400: {"description": "bad option, unknown model, not offered"},
                         401: {"description": "token missing or wrong"},
                         408: {"description": "upload stalled or too slow"},
                         413: {"description": "file or pixels above the limits"},
                         415: {"description": "not an image srzoo can decode"},
                         503: {"description": "queue full; see Retry-After"}})
    async def submit(image: UploadFile = File(..., description="the image file"),
                     model: str | None = Form(None, description="model name (GET /api/models)"),
                     scale: str | None = Form(None, description="factor >= 1 (default 2)"),
                     width: str | None = Form(None, description="output width in pixels"),
                     height: str | None = Form(None, description="output height in pixels"),
                     ) -> JSONResponse:
        data = await image.read()
        job = await run_in_threadpool(store.submit, data, image.filename, model=model, scale=scale,
                                      width=width, height=height)
        return JSONResponse(job.to_dict(), status_code=202,
                            headers={"Location": f"/api/jobs/{job.id}"})

    @app.get("/api/jobs/{job_id}", summary="A job's state and progress")
    def status(job_id: str) -> dict[str, Any]:
        return store.get(job_id).to_dict()

    @app.get("/api/jobs/{job_id}/events", summary="Server-sent events: the job's state on each change",
             response_class=StreamingResponse)
    async def events(job_id: str, request: Request) -> StreamingResponse:
        job = store.get(job_id)

        async def stream():  # type: ignore[no-untyped-def]
            seen, last, beat = -1, None, time.monotonic()
            while True:
                if await request.is_disconnected():
                    return
                version = job.version  # read before the state: a change after is seen next turn
                d = job.to_dict()
                if version != seen or d["progress"] != last:
                    seen, last, beat = version, d["progress"], time.monotonic()
                    yield f"event: job\ndata: {json.dumps(d)}\n\n"
                    if d["state"] in ("done", "failed", "cancelled"):
                        return
                elif time.monotonic() - beat > 10:
                    beat = time.monotonic()
                    yield ": still here\n\n"
                await asyncio.sleep(0.1)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/api/jobs/{job_id}/result", summary="The result (PNG) of a finished job",
             response_class=FileResponse)
    def result(job_id: str) -> FileResponse:
        job = store.result(job_id)
        return FileResponse(job.result, media_type="image/png", filename=job.download_name,
                            headers={"Cache-Control": "no-store"})

    @app.delete("/api/jobs/{job_id}", status_code=204, summary="Cancel a job or delete its result")
    def delete(job_id: str) -> Response:
        store.delete(job_id)
        return Response(status_code=204)

    @app.get("/api/results.zip", summary="The results of several finished jobs in one zip",
             response_class=Response)
    def results_zip(ids: str = Query(..., description="job ids, comma-separated")) -> Response:
        wanted = [i for i in ids.split(",") if i.strip()]
        if not wanted or len(wanted) > ZIP_MAX:
            raise RequestError(f"ids: give 1 to {ZIP_MAX} job ids, comma-separated", 400)
        jobs = [store.result(i.strip()) for i in wanted]
        buf = io.BytesIO()
        names: set[str] = set()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:  # PNG is compressed already
            for job in jobs:
                name, n = job.download_name, 1
                while name in names:
                    n += 1
                    name = job.download_name.replace(".png", f"-{n}.png")
                names.add(name)
                z.write(job.result, name)
        return Response(buf.getvalue(), media_type="application/zip",
                        headers={"Content-Disposition": 'attachment; filename="srzoo-results.zip"',
                                 "Cache-Control": "no-store"})

    app.mount("/", StaticFiles(directory=STATIC, html=True), name="page")
    return Guard(app, store, token)


__all__ = ["Guard", "STATIC", "create_app"]
