"""The jobs of ``srzoo serve``: checked uploads, a bounded queue, a worker pool.

Framework-free (:mod:`srzoo.serve.app` puts HTTP around it), so every rule
here is the same whether a request comes from the page, curl or a test:

* **Checks before work**, each failing with one line and an HTTP status
  (:class:`RequestError`): the model is offered by this server (``--models``)
  and known to the registry; scale / width / height parse as the CLI parses
  them (:func:`srzoo.jobs.resize.plan`, same texts); the upload is not empty
  and not above :attr:`Limits.max_upload`; its size, read from the header by
  :func:`srzoo.runtime.imageio.header_size`, is within the input and output
  pixel limits **before decoding** (a PNG bomb is refused unread); then it is
  decoded by :func:`srzoo.runtime.imageio.load_image` (non-images and
  truncated files are refused).
* **A bounded queue**: at most :attr:`Limits.queue` jobs wait; one more is
  a 503 with ``Retry-After``. Workers (a thread pool sized to the machine)
  run :func:`srzoo.upscale` -- the process-wide :func:`~srzoo.runtime.upscaler.get_upscaler`
  cache, so each model/scale/backend is loaded once and shared.
* **A server-owned folder**: every file is written under ``root/<job id>/``
  (ids are random hex made here, never client text); a client's filename is
  only shown and offered as the download name, after :func:`safe_name`.
  Finished jobs are deleted after :attr:`Limits.keep` seconds, or when
  :attr:`Limits.max_jobs` would be exceeded (oldest first), or on DELETE.
"""

from __future__ import annotations

import math
import os
import queue
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from srzoo.errors import ImageError, SrzooError, UnknownModel
from srzoo.hub import api
from srzoo.jobs import resize
from srzoo.jobs.files import file_tag
from srzoo.jobs.upscaling import upscale
from srzoo.runtime.imageio import header_size, load_image, write_image
from srzoo.runtime.upscaler import get_upscaler

#: states of a job; the last three are final
STATES = ("queued", "running", "done", "failed", "cancelled")
_ID = re.compile(r"^[0-9a-f]{32}$")


class RequestError(SrzooError):
    """A request the server refuses: one line, an HTTP status, optional headers."""

    def __init__(self, message: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


@dataclass
class Limits:
    """What one server accepts. Defaults suit a desktop; ``srzoo serve`` flags change them."""

    #: largest request body, bytes (the image plus the form fields)
    max_upload: int = 50 << 20
    #: largest input image, pixels (width x height)
    max_input_pixels: int = 25_000_000
    #: largest image the model produces, pixels (before any resize down)
    max_output_pixels: int = 100_000_000
    #: jobs waiting (not counting those running); one more is a 503
    queue: int = 32
    #: seconds a finished job (its result) is kept
    keep: float = 3600.0
    #: finished jobs kept at most (oldest deleted first)
    max_jobs: int = 1000
    #: seconds a client may pause while sending its body; then 408
    upload_idle: float = 15.0
    #: after ``upload_grace`` seconds, the slowest average upload rate accepted (bytes/s)
    min_rate: float = 16384.0
    upload_grace: float = 15.0
    #: what a 503 asks the client to wait, seconds
    retry_after: int = 5


def default_workers() -> int:
    """Worker threads for this machine: one per core, at most 4 (each network
    forward already uses every core; more workers overlap decoding, encoding
    and different models)."""
    try:
        cores = len(os.sched_getaffinity(0))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def safe_name(filename: Any, fallback: str = "image") -> str:
    """A client's filename reduced to something safe to show and to offer as a
    download name: the last path component, letters, digits, ``._- ``, at most
    80 characters, no leading dot. Never used as a path on this machine."""
    text = str(filename or "")
    text = re.split(r"[\\/]", text)[-1]
    text = "".join(c if (c.isalnum() and c.isascii()) or c in "._- " else "_" for c in text)
    text = text.strip(" .")[:80].strip(" .")
    return text or fallback


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "error"


@dataclass
class Job:
    """One upload and its result."""

    id: str
    name: str
    model: str
    scale: float | int
    width: int | None
    height: int | None
    folder: Path
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    model_scale: int
    state: str = "queued"
    error: str | None = None
    backend: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None
    expected: float | None = None
    image: np.ndarray | None = field(default=None, repr=False)
    version: int = 0
    #: (tiles done, tiles in all) reported by the Upscaler while it runs
    tiles: tuple[int, int] | None = None

    @property
    def result(self) -> Path:
        return self.folder / "result.png"

    @property
    def download_name(self) -> str:
        stem = self.name.rsplit(".", 1)[0] if "." in self.name else self.name
        if self.width is not None or self.height is not None:
            how = f"{self.out_size[0]}x{self.out_size[1]}"
        else:
            how = f"x{self.scale:g}"
        return f"{stem or 'image'}_{file_tag(self.model)}_{how}.png"

    @property
    def final(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def progress(self) -> float:
        """0..1: queued 0, running from the tiles the Upscaler reports done (an
        image of several tiles), else estimated from the measured speed of
        earlier jobs of the same model and scale (at most 0.95), finished 1."""
        if self.final:
            return 1.0
        if self.state != "running" or self.started is None:
            return 0.0
        if self.tiles is not None and self.tiles[1] > 1:
            done, total = self.tiles
            return round(min(0.95, 0.05 + 0.9 * done / total), 3)
        if not self.expected:
            return 0.05
        return round(min(0.95, 0.05 + 0.9 * (time.time() - self.started) / self.expected), 3)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "state": self.state, "progress": self.progress(),
            "model": self.model, "scale": self.scale, "width": self.width, "height": self.height,
            "model_scale": self.model_scale,
            "input_size": list(self.in_size), "output_size": list(self.out_size),
            "backend": self.backend, "seconds": None if self.seconds is None else round(self.seconds, 3),
            "error": self.error, "download_name": self.download_name,
            "result_url": f"/api/jobs/{self.id}/result" if self.state == "done" else None,
        }


def _parse_int(raw: Any, name: str) -> int | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        v = int(str(raw).strip())
    except ValueError:
        raise RequestError(f"--{name} must be a positive whole number of pixels, got {raw!r}") from None
    if v < 1:
        raise RequestError(f"--{name} must be a positive whole number of pixels, got {raw!r}")
    return v


class JobStore:
    """Jobs of one server: submit, look up, delete; workers and a janitor thread.

    ``root``: a folder for this server alone (created; default a new private
    folder in the system temp folder, removed by :meth:`close`). ``models``:
    the names offered (None: every model that runs without a download -- the
    built-in ones and those already in the cache).
    """

    def __init__(self, *, models: Sequence[str] | None = None, limits: Limits | None = None,
                 workers: int | None = None, root: str | os.PathLike[str] | None = None) -> None:
        self.limits = limits or Limits()
        self.workers = default_workers() if workers is None else int(workers)
        if self.workers < 1:
            raise SrzooError(f"--workers must be at least 1, got {workers}")
        self.models = self._offered(models)
        self._own_root = root is None
        if root is None:
            self.root = Path(tempfile.mkdtemp(prefix="srzoo-serve-"))
        else:
            parent = Path(root).expanduser()
            parent.mkdir(parents=True, exist_ok=True)
            self.root = Path(tempfile.mkdtemp(prefix="srzoo-serve-", dir=parent))
        os.chmod(self.root, 0o700)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: "queue.Queue[Job | None]" = queue.Queue(maxsize=self.limits.queue)
        self._speed: dict[tuple[str, int], float] = {}  # seconds per output megapixel
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started = time.time()
        self.completed = 0
        self.failed = 0

    # ---- models --------------------------------------------------------------
    @staticmethod
    def _offered(models: Sequence[str] | None) -> list[str]:
        if models:
            names = []
            for n in models:
                n = str(n).strip()
                if not n:
                    continue
                api.variants(n)  # an unknown name stops the server at start, one line
                if n not in names:
                    names.append(n)
            if not names:
                raise SrzooError("--models lists no model; give names such as default,espcn")
            return names
        names = []
        for e in api.list_models():
            if e.name in names:
                continue
            if e.artifact is None or e.artifact.bundled or api.is_cached(e):
                names.append(e.name)
        if "default" in names:  # srzoo's own model first: the page preselects it
            names.insert(0, names.pop(names.index("default")))
        return names or ["default"]

    def model_info(self) -> list[dict[str, Any]]:
        """What GET /api/models lists: name, scales, description, tags, license."""
        out = []
        for name in self.models:
            vs = api.variants(name)
            first = vs[0]
            scales = sorted({e.scale for e in vs if e.scale is not None})
            tags: list[str] = []
            for e in vs:
                tags += [t for t in e.tags if t not in tags]
            out.append({
                "name": name, "scales": scales, "any_scale": not scales,
                "description": first.description, "tags": tags, "license": first.license,
                "arch": first.arch, "built_in": all(e.artifact is None or e.artifact.bundled for e in vs),
            })
        return out

    # ---- workers ---------------------------------------------------------------
    def start(self) -> "JobStore":
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"srzoo-serve-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._janitor, name="srzoo-serve-janitor", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def close(self) -> None:
        """Stop the workers (jobs still queued are cancelled) and delete the folder."""
        self._stop.set()
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._set(job, state="cancelled")
        for _ in range(self.workers):
            try:
                self._queue.put(None, timeout=1)
            except queue.Full:
                pass
        for t in self._threads:
            t.join(timeout=30)
        if self._own_root or self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def _set(self, job: Job, **kw: Any) -> None:
        with self._lock:  # the state last: a reader that sees "done" sees its backend and time
            for k, v in kw.items():
                if k != "state":
                    setattr(job, k, v)
            if "state" in kw:
                job.state = kw["state"]
            job.version += 1

    def _work(self) -> None:
        while not self._stop.is_set():
            job = self._queue.get()
            if job is None:
                return
            if job.state != "queued":  # cancelled while waiting
                self._remove_files(job)
                continue
            self._run(job)

    def _run(self, job: Job) -> None:
        key = (job.model, job.model_scale)
        mp = job.out_size[0] * job.out_size[1] / 1e6
        speed = self._speed.get(key)
        with self._lock:
            if job.state != "queued":  # deleted between the queue and here
                job = None  # type: ignore[assignment]
            else:
                job.started = time.time()
                job.expected = None if speed is None else max(0.05, speed * mp)
                job.state = "running"
                job.version += 1
        if job is None:
            return
        t0 = time.perf_counter()
        try:
            def tiles(done: int, total: int) -> None:  # called by the Upscaler after each tile
                with self._lock:
                    job.tiles = (done, total)
                    job.version += 1

            out = upscale(job.image, job.model, job.scale, width=job.width, height=job.height,
                          progress=tiles)
            backend = get_upscaler(job.model, job.model_scale).backend
            write_image(job.result, out)
            secs = time.perf_counter() - t0
            self._speed[key] = secs / max(mp, 1e-6)
            with self._lock:
                gone = job.state == "cancelled"
            if gone:
                self._remove_files(job)
                return
            self._set(job, state="done", backend=backend, seconds=secs, finished=time.time(),
                      image=None)
            self.completed += 1
        except (SrzooError, OSError) as e:
            self._fail(job, _one_line(str(e).replace(str(job.folder), job.name)))
        except MemoryError:
            self._fail(job, "out of memory; send a smaller image or scale")
        except Exception as e:  # noqa: BLE001 - a bug must not kill the worker
            traceback.print_exc(file=sys.stderr)
            self._fail(job, f"internal error: {type(e).__name__}: {_one_line(str(e))}")

    def _fail(self, job: Job, text: str) -> None:
        with self._lock:
            gone = job.state == "cancelled"
        if gone:  # deleted while it ran: nobody will ask
            self._remove_files(job)
            return
        self._set(job, state="failed", error=text, finished=time.time(), image=None)
        self.failed += 1

    def _janitor(self) -> None:
        step = max(0.2, min(30.0, self.limits.keep / 4))
        while not self._stop.wait(step):
            self.expire()

    def expire(self, now: float | None = None) -> int:
        """Delete finished jobs older than :attr:`Limits.keep`, and the oldest
        beyond :attr:`Limits.max_jobs`; returns how many."""
        now = time.time() if now is None else now
        with self._lock:
            done = sorted((j for j in self._jobs.values() if j.final and j.finished is not None),
                          key=lambda j: j.finished or 0.0)
            old = [j for j in done if now - (j.finished or now) >= self.limits.keep]
            extra = len(done) - len(old) - self.limits.max_jobs
            if extra > 0:
                old += [j for j in done if j not in old][:extra]
            for j in old:
                self._jobs.pop(j.id, None)
        for j in old:
            self._remove_files(j)
        return len(old)

    def _remove_files(self, job: Job) -> None:
        shutil.rmtree(job.folder, ignore_errors=True)

    # ---- requests ----------------------------------------------------------------
    def queued(self) -> int:
        return self._queue.qsize()

    def running(self) -> int:
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.state == "running")

    def _full(self) -> RequestError:
        return RequestError(f"the server is busy: {self.limits.queue} jobs are waiting; try again "
                            f"in {self.limits.retry_after} s", 503,
                            {"Retry-After": str(self.limits.retry_after)})

    def check_model(self, model: Any) -> str:
        name = str(model or "default").strip()
        if name not in self.models:
            try:
                api.variants(name)
            except UnknownModel as e:
                raise RequestError(_one_line(str(e)), 400) from None
            raise RequestError(f"model {name!r} is not offered by this server; it offers "
                               f"{', '.join(self.models)} (srzoo serve --models)", 400)
        return name

    def submit(self, data: bytes, filename: Any = None, *, model: Any = "default",
               scale: Any = None, width: Any = None, height: Any = None) -> Job:
        """Check an upload and queue it; raises :class:`RequestError`. Blocking
        (decodes the image): call it off the event loop."""
        name = safe_name(filename)
        model = self.check_model(model)
        w_out, h_out = _parse_int(width, "width"), _parse_int(height, "height")
        try:
            sc = resize.parse_scale(2 if scale is None or str(scale).strip() == "" else scale)
        except SrzooError as e:
            raise RequestError(_one_line(str(e)), 400) from None
        if not data:
            raise RequestError(f"{name}: the upload is empty; send an image file", 400)
        if len(data) > self.limits.max_upload:
            raise RequestError(f"{name}: {len(data)} bytes, above this server's limit of "
                               f"{self.limits.max_upload} bytes; send a smaller file", 413)
        if self._queue.full():
            raise self._full()
        job_id = secrets.token_hex(16)
        folder = self.root / job_id
        folder.mkdir(mode=0o700)
        try:
            job = self._prepare(job_id, folder, data, name, model, sc, w_out, h_out)
            with self._lock:
                self._jobs[job.id] = job
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                with self._lock:
                    self._jobs.pop(job.id, None)
                raise self._full() from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return job

    def _plan(self, name: str, model: str, w: int, h: int, sc: float | int, width: int | None,
              height: int | None, before: bool) -> tuple[int, tuple[int, int]]:
        lim = self.limits
        when = " (refused before decoding)" if before else ""
        if w * h > lim.max_input_pixels:
            raise RequestError(f"{name}: a {w}x{h} image is {w * h / 1e6:.1f} MP, above this server's "
                               f"input limit of {lim.max_input_pixels / 1e6:.1f} MP{when}; "
                               "downscale or crop it", 413)
        try:
            s, size = resize.plan(model, w, h, scale=sc, width=width, height=height)
        except SrzooError as e:
            raise RequestError(_one_line(str(e)), 400) from None
        n = max(w * s * h * s, size[0] * size[1])
        if n > lim.max_output_pixels:
            raise RequestError(f"{name}: a {w}x{h} image gives {size[0]}x{size[1]} (the model runs "
                               f"x{s}), {n / 1e6:.1f} MP, above this server's output limit of "
                               f"{lim.max_output_pixels / 1e6:.1f} MP{when}; ask for a smaller "
                               "scale or size", 413)
        return s, size

    def _prepare(self, job_id: str, folder: Path, data: bytes, name: str, model: str,
                 sc: float | int, width: int | None, height: int | None) -> Job:
        upload = folder / "upload"
        with open(upload, "xb") as f:
            f.write(data)
        hs = header_size(upload)
        if hs:  # the bomb check: the header's size, before any decoding
            self._plan(name, model, hs[0], hs[1], sc, width, height, before=True)
        try:
            img = load_image(upload, scale=max(1, math.ceil(float(sc))))
        except ImageError as e:
            text = _one_line(str(e).replace(str(upload), name))
            status = 413 if "above the limit" in text else 415
            raise RequestError(text, status) from None
        finally:
            upload.unlink(missing_ok=True)
        h, w = img.shape[:2]
        s, size = self._plan(name, model, w, h, sc, width, height, before=False)
        return Job(id=job_id, name=name, model=model, scale=sc, width=width, height=height,
                   folder=folder, in_size=(w, h), out_size=size, model_scale=s, image=img)

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id) if _ID.match(job_id or "") else None
        if job is None:
            raise RequestError(f"no job {job_id[:40]!r}: it never existed, was deleted, or "
                               f"expired ({self.limits.keep:g} s after it finished)", 404)
        return job

    def result(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.state == "failed":
            raise RequestError(f"job {job.id} failed: {job.error}", 409)
        if job.state != "done":
            raise RequestError(f"job {job.id} is {job.state}; its result is ready when its "
                               "state is done", 409)
        return job

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        with self._lock:
            self._jobs.pop(job.id, None)
            running = job.state == "running"
            if not job.final:
                job.state = "cancelled"
                job.version += 1
        if not running:  # a running job removes its files when it ends
            self._remove_files(job)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            jobs = len(self._jobs)
        return {"workers": self.workers, "queued": self.queued(), "running": self.running(),
                "queue_limit": self.limits.queue, "jobs_kept": jobs, "completed": self.completed,
                "failed": self.failed}


__all__ = ["Job", "JobStore", "Limits", "RequestError", "STATES", "default_workers", "safe_name"]
