"""Batches of files: a pure plan on the client, a picklable job per file, an executor.

>>> report = run_batch(["photos/"], "espcn", 2, output="out", jobs=2)   # doctest: +SKIP
>>> report.summary()                                                    # doctest: +SKIP
'srzoo: 20 written, 0 failed, 0 skipped in 3.1 s (6.4 images/s)'

1. :func:`plan` (client, no pixels touched): expands files, folders, globs
   (local or fsspec URLs), names every output, and applies every rule up front:
   an output never replaces an input (unless ``overwrite``), two inputs never
   share an output, ``skip_existing`` skips outputs already there whose header
   says they have the size this input gives (:func:`done_before`: a 0-byte,
   truncated or other-size file left by another tool is redone). The model is looked
   up, and its file fetched and verified once, here.
2. :class:`Job`: one input → one output; plain data, picklable.
3. :func:`run_job`: what a worker runs for one job: the *same* code as the
   serial path (the process-wide :func:`srzoo.runtime.upscaler.get_upscaler` cache, so
   each worker process loads its model once; :mod:`srzoo.jobs.resize` for
   non-native sizes; the atomic writer). It never raises: a bad input is a
   failed result naming it.
4. An executor (:mod:`srzoo.jobs.executors`) runs the jobs: serial, a local
   process pool (``jobs=N``) or a Dask distributed cluster (``client=`` /
   ``scheduler=``).
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from srzoo import config, fsutil
from srzoo.errors import SrzooError
from srzoo.hub import cache
from srzoo.hub.api import fetch_entry, variants
from srzoo.hub.manifest import ModelEntry
from srzoo.jobs import executors, resize
from srzoo.jobs.executors import cores
from srzoo.jobs.files import IMAGE_EXTS, FileResult, expand_inputs, file_tag, output_ext
from srzoo.runtime import backends
from srzoo.runtime.imageio import ImageMeta, decode, header_size, read_image, write_image
from srzoo.runtime.upscaler import get_upscaler

_URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_url(path: str | os.PathLike[str]) -> bool:
    """True for ``scheme://...`` (an fsspec URL), False for local paths."""
    return bool(_URL_RE.match(os.fspath(path)))


def _env_scheduler() -> str | None:
    """``SRZOO_SCHEDULER``: the Dask scheduler address batches run on (``tcp://HOST:8786``,
    or ``local`` for a local cluster); unset or empty: no Dask."""

    return str(config.get("SRZOO_SCHEDULER")).strip() or None


def _fsspec() -> Any:
    try:
        import fsspec
    except ImportError:
        raise SrzooError("URLs as inputs or outputs need fsspec: pip install 'srzoo[dask]' "
                         "(or pip install fsspec and the filesystem's package, e.g. s3fs)") from None
    return fsspec


def _url_fs(url: str) -> tuple[Any, str]:
    """fsspec's filesystem and path for ``url``; a scheme whose package is missing, or
    that fsspec does not know, is one line naming the URL."""
    fsspec = _fsspec()
    scheme = url.split("://", 1)[0]
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as e:  # fsspec names the package the scheme needs
        raise SrzooError(f"{url}: fsspec cannot open {scheme}:// URLs here: {e}") from None
    except ValueError as e:  # "Protocol not known: x"
        raise SrzooError(f"{url}: {e} (fsspec has no filesystem for {scheme}://)") from None


# --------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class Job:
    """One input file → one output file, and everything a worker needs (picklable).

    ``entries``: the model's entries for every scale it has (the worker picks
    the one the size needs); ``model_files``: where the client's verified copies
    are, for workers that share its file system.
    """

    index: int
    input: str
    output: str
    entries: tuple[ModelEntry, ...]
    scale: float | None = None
    width: int | None = None
    height: int | None = None
    backend: str = "auto"
    tile: int | None = None
    threads: int | None = None
    model_files: tuple[str, ...] = ()
    #: JPEG/WebP quality of the output (None: the format's default)
    quality: int | None = None
    #: a bar over the tiles of this image on stderr, when it is a terminal
    progress: bool = False
    #: width and height both given: exactly that size (else: fit inside, keep the aspect)
    stretch: bool = False


def _label(scale: float | None, width: int | None, height: int | None) -> str:
    if width is not None and height is not None:
        return f"{width}x{height}"
    if width is not None:
        return f"w{width}"
    if height is not None:
        return f"h{height}"
    return f"x{scale:g}"


def ensure_model(entry: ModelEntry, model_files: Iterable[str]) -> None:
    """On a worker: ``entry``'s file into this worker's cache from a verified copy
    the client fetched, when the worker can see one (:func:`srzoo.hub.cache.seed`)."""
    if entry.artifact is not None:
        cache.seed(entry.artifact, model_files)


def _read(src: str, scale: int = 1) -> tuple[Any, ImageMeta]:
    """Decode one input, upright (EXIF orientation), with its metadata; a local file
    whose header says it would exceed SRZOO_MAX_PIXELS at ``scale`` is refused
    before decoding."""

    if not is_url(src):
        return read_image(src, scale=scale)
    import numpy as np

    with _fsspec().open(src, "rb") as f:
        data = np.frombuffer(f.read(), np.uint8)
    return decode(data, src, scale=scale)


def _write(dst: str, image: Any, meta: ImageMeta | None = None, quality: int | None = None) -> None:
    """Atomic write (with the input's metadata): local files through a temporary
    name and a rename; URLs are encoded locally, uploaded under a temporary name,
    then moved into place."""

    if not is_url(dst):
        write_image(Path(dst), image, meta=meta, quality=quality)
        return
    fs, path = _url_fs(dst)
    name = path.rsplit("/", 1)[-1]
    with tempfile.TemporaryDirectory(prefix="srzoo-") as d:
        local = Path(d) / name
        write_image(local, image, meta=meta, quality=quality)
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        tmp = f"{parent}/.{name}.{os.getpid()}.{time.monotonic_ns()}.part" if parent else \
            f".{name}.{os.getpid()}.part"
        if parent:
            fs.makedirs(parent, exist_ok=True)
        fs.put_file(str(local), tmp)
        try:
            fs.mv(tmp, path)
        except BaseException:
            try:
                fs.rm(tmp)
            except Exception:
                pass
            raise


def _reason(e: BaseException, src: str) -> str:
    text = str(e).strip().splitlines()
    msg = text[-1].lstrip("> ").strip() if text else type(e).__name__
    if msg.startswith(f"{src}: "):  # the CLI line names the file already
        msg = msg[len(src) + 2:]
    return msg


def _dask_worker_threads() -> int | None:
    """Inside a Dask worker with T task threads on C cores: C // T OpenCV threads
    per task (workers × threads = cores); None elsewhere."""
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import get_worker

        return max(1, cores() // max(1, int(get_worker().state.nthreads)))
    except Exception:  # not in a worker
        return None


class _TileBar:
    """A tqdm bar with ETA over the tiles of one image (on stderr, only on a
    terminal), shown once an image has more than one tile."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if total <= 1:
                return
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="tile", desc=self.name, file=sys.stderr,
                            dynamic_ncols=True, disable=None, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_job(job: Job) -> dict[str, Any]:
    """Upscale one file (what a worker runs). Never raises: returns
    ``{"index", "status": "written"|"failed", "output", "error", "seconds", "worker"}``."""

    t0, c0 = time.perf_counter(), time.process_time()
    res: dict[str, Any] = {"index": job.index, "input": job.input, "output": None, "error": None,
                           "status": "failed", "worker": f"{os.uname().nodename}:{os.getpid()}"}
    try:
        # job.threads is scoped to the model run by its Upscaler; a Dask worker's share
        # of the cores (when no thread count was asked for) is set for the whole task
        threads = None if job.threads else _dask_worker_threads()
        if threads:
            import cv2

            cv2.setNumThreads(int(threads))
        img, meta = _read(job.input, math.ceil(job.scale or 1))
        h, w = img.shape[:2]
        scales = [e.scale for e in job.entries if e.scale is not None]
        s, size = resize.choose(scales, w, h, scale=job.scale, width=job.width, height=job.height,
                                model=job.entries[0].name, stretch=job.stretch)
        entry = next((e for e in job.entries if e.scale == s), None) or job.entries[0].at_scale(s)
        ensure_model(entry, job.model_files)
        bar = _TileBar(Path(job.input).name) if job.progress else None
        try:
            out = get_upscaler(entry, s, backend=job.backend, threads=job.threads).upscale(
                img, tile=job.tile, progress=bar)
        finally:
            if bar is not None:
                bar.close()
        out = resize.resize_down(out, size)
        _write(job.output, out, meta, job.quality)
        res.update(status="written", output=job.output, in_shape=(int(h), int(w)),
                   out_shape=(int(out.shape[0]), int(out.shape[1])))
    except Exception as e:  # one bad input fails only itself

        kind = "" if isinstance(e, (SrzooError, OSError, MemoryError)) else f"{type(e).__name__}: "
        res["error"] = kind + _reason(e, job.input)
    res["seconds"] = time.perf_counter() - t0
    res["cpu_seconds"] = time.process_time() - c0  # the worker process's CPU time meanwhile
    return res


# --------------------------------------------------------------------------- plan
@dataclass
class Plan:
    """What a batch will do, decided before any pixel is read.

    ``jobs``: the work; ``results``: one slot per input in order, already
    filled for inputs that fail planning or are skipped (``None`` for jobs)."""

    jobs: list[Job]
    results: list[FileResult | None]
    model: str
    label: str
    entries: tuple[ModelEntry, ...] = ()

    @property
    def skipped(self) -> int:
        return sum(1 for r in self.results if r is not None and r.skipped)


def _expand_urls(items: Sequence[str], skip_suffix: str) -> tuple[list[str], list[FileResult]]:
    files: list[str] = []
    failed: list[FileResult] = []
    seen: set[str] = set()
    for item in items:
        fs, path = _url_fs(item)
        proto = item.split("://", 1)[0]

        def url(p: str) -> str:
            return p if is_url(p) else f"{proto}://{p}"
        if glob.has_magic(path):
            found = sorted(p for p in fs.glob(path) if fs.isfile(p))
            if not found:
                failed.append(FileResult(item, error="pattern matches no file"))
        elif fs.isdir(path):
            found = sorted(p for p in fs.ls(path, detail=False)
                           if os.path.splitext(p)[1].lower() in IMAGE_EXTS and fs.isfile(p)
                           and not os.path.splitext(p.rsplit("/", 1)[-1])[0].endswith(skip_suffix))
            if not found:
                failed.append(FileResult(item, error="folder holds no image files"))
        elif fs.isfile(path):
            found = [path]
        else:
            failed.append(FileResult(item, error="no such file or folder"))
            found = []
        for p in found:
            u = url(p)
            if u not in seen:
                seen.add(u)
                files.append(u)
    return files, failed


def _exists(path: str) -> bool:
    if is_url(path):
        fs, p = _url_fs(path)
        return bool(fs.exists(p))
    return os.path.exists(path)


_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def done_before(src: str, dst: str, *, scale: float | None, width: int | None,
                height: int | None) -> bool:
    """Does an existing output of ``src`` count as done (``skip_existing``)? Only
    when its header decodes to the size this input gives (both headers read, no
    pixels decoded) and a PNG or JPEG ends where it should: a 0-byte, truncated
    or other-size file is redone. URLs: existing is enough (nothing is read)."""
    if is_url(dst) or is_url(src):
        return _exists(dst)
    got = header_size(dst)
    if got is None:
        return False
    try:
        with open(dst, "rb") as f:
            f.seek(-12, os.SEEK_END)
            tail = f.read()
    except OSError:
        return False
    ext = os.path.splitext(dst)[1].lower()
    if ext == ".png" and tail != _PNG_END:
        return False
    if ext in (".jpg", ".jpeg") and not tail.endswith(b"\xff\xd9"):
        return False
    insize = header_size(src)
    if insize is None:  # a format whose header we cannot read: the output's own header must do
        return True
    try:
        want = resize.target_size(insize[0], insize[1], scale=scale, width=width, height=height)
    except SrzooError:
        return False
    return tuple(got) == tuple(want)


def _key(path: str) -> str:
    return path if is_url(path) else str(Path(path).resolve())


def _output_for(src: str, out: str | None, model: str, label: str, *, single: bool,
                format: str | None = None) -> str:
    """``<stem>_<model>_<label>.<ext>`` beside the input or in the output folder
    ``OUT``, or ``OUT`` itself for one input and an image extension. ``ext``: the
    input's (JPEG in, JPEG out) unless ``format`` (``png``, ``jpg``...) is given."""
    name = src.rsplit("/", 1)[-1] if is_url(src) else Path(src).name
    stem, src_ext = os.path.splitext(name)
    if single and out is not None and os.path.splitext(out)[1].lower() in IMAGE_EXTS and not (
            not is_url(out) and os.path.isdir(out)):
        return out
    file = f"{stem}_{file_tag(model)}_{label}{output_ext(src_ext, format)}"
    if out is None:
        base = src[: len(src) - len(name)] if is_url(src) else str(Path(src).parent) + os.sep
        return f"{base}{file}"
    return (out.rstrip("/") + "/" if is_url(out) else str(Path(out)) + os.sep) + file


def model_entries(model: str | ModelEntry) -> tuple[ModelEntry, ...]:
    """Every entry (scale) of ``model``; an entry given directly is used alone."""
    if isinstance(model, ModelEntry):
        return (model,)

    return variants(model)


def plan(inputs: Iterable[str | os.PathLike[str]], model: str | ModelEntry = "espcn",
         scale: float | None = 2, *, output: str | os.PathLike[str] | None = None,
         width: int | None = None, height: int | None = None, overwrite: bool = False,
         skip_existing: bool = False, backend: str = "auto", tile: int | None = None,
         threads: int | None = None, format: str | None = None,
         quality: int | None = None, stretch: bool = False) -> Plan:
    """Everything a batch will do, checked before any work starts (pure: reads
    folder listings and checks which outputs exist, writes nothing).

    Outputs keep the input's format unless ``format`` (``png``, ``jpg``,
    ``webp``, ``tif``...) is given; ``quality`` (1-100) applies to JPEG and WebP."""
    output_ext(".png", format)  # validates
    if quality is not None and (isinstance(quality, bool) or not isinstance(quality, int)
                                or not 1 <= quality <= 100):
        raise SrzooError(f"quality must be an integer from 1 to 100, got {quality!r}")

    if width is None and height is None:
        scale = resize.parse_scale(2 if scale is None else scale)
    else:
        resize.target_size(1, 1, width=width, height=height)  # validates
    entries = model_entries(model)
    name = entries[0].name
    scales = [e.scale for e in entries if e.scale is not None]
    if width is None and height is None:
        resize.pick_scale(scales, float(scale), name)  # a scale above the model's: say so now
    label = _label(scale, width, height)
    items = [os.fspath(i) for i in inputs]
    urls = [i for i in items if is_url(i)]
    local = [i for i in items if not is_url(i)]
    files: list[str] = []
    results: list[FileResult | None] = []
    lf, lfail = expand_inputs(local, skip_suffix=f"_{file_tag(name)}_{label}")
    files += [str(p) for p in lf]
    pre = list(lfail)
    if urls:
        uf, ufail = _expand_urls(urls, f"_{file_tag(name)}_{label}")
        files += uf
        pre += ufail
    out = os.fspath(output) if output is not None else None
    single = len(files) == 1 and not pre
    inputs_k = {_key(f) for f in files}
    claimed: dict[str, str] = {}
    jobs: list[Job] = []
    results.extend(pre)
    for src in files:
        dst = _output_for(src, out, name, label, single=single, format=format)
        k = _key(dst)
        if k in inputs_k and not overwrite:
            results.append(FileResult(src, error=f"output {dst} is an input; refusing to overwrite "
                                                  "it (use --overwrite, or -o to write elsewhere)"))
            continue
        if k in claimed:
            results.append(FileResult(src, error=f"output {dst} would also be written for "
                                                  f"{claimed[k]}; use separate -o folders"))
            continue
        claimed[k] = src
        if skip_existing and done_before(src, dst, scale=scale if width is None and height is None else None,
                                         width=width, height=height):
            results.append(FileResult(src, output=dst, skipped=True))  # type: ignore[arg-type]
            continue
        jobs.append(Job(index=len(results), input=src, output=dst, entries=entries,
                        scale=scale if width is None and height is None else None, width=width,
                        height=height, backend=backend, tile=tile, threads=threads,
                        quality=quality, stretch=stretch))
        results.append(None)
    return Plan(jobs, results, name, label, entries)


def prefetch(p: Plan, *, quiet: bool | None = None) -> tuple[str, ...]:
    """Fetch (and verify) the model files the jobs can need, once, on the client.
    Returns their cached paths."""

    if not p.jobs:
        return ()
    j = p.jobs[0]
    need = list(j.entries)
    if j.scale is not None:
        scales = [e.scale for e in j.entries if e.scale is not None]
        if scales:
            s = resize.pick_scale(scales, float(j.scale), p.model)
            need = [e for e in j.entries if e.scale == s]
    return tuple(str(fetch_entry(e, quiet=quiet)) for e in need if e.artifact is not None)


# --------------------------------------------------------------------------- running
@dataclass
class BatchReport:
    """The outcome of :func:`run_batch`: one :class:`FileResult` per input, in order."""

    results: list[FileResult]
    seconds: float
    executor: str
    model: str = ""
    label: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def written(self) -> int:
        return sum(1 for r in self.results if r.ok and not r.skipped)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.ok)

    @property
    def skipped(self) -> int:
        return sum(1 for r in self.results if r.skipped)

    @property
    def images_per_s(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line: files written, failed, skipped, time, throughput."""
        return (f"srzoo: {self.written} written, {self.failed} failed, {self.skipped} skipped "
                f"in {self.seconds:.1f} s ({self.images_per_s:.2f} images/s, {self.executor})")

    def to_dict(self) -> dict[str, Any]:
        files = []
        for r, rec in zip(self.results, self.records):
            files.append({"input": r.input, "output": None if r.output is None else str(r.output),
                          "status": r.status, "error": r.error, "seconds": rec.get("seconds"),
                          "cpu_seconds": rec.get("cpu_seconds"),
                          # how often it ran: 0 when it never did (skipped, refused by the plan)
                          "worker": rec.get("worker"), "attempts": int(rec.get("attempts") or 0)})
        return {"model": self.model, "size": self.label, "executor": self.executor,
                "written": self.written, "failed": self.failed, "skipped": self.skipped,
                "seconds": round(self.seconds, 3), "images_per_s": round(self.images_per_s, 3),
                "files": files}

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_dict` as JSON (:func:`srzoo.fsutil.atomic_write`: a regular
        file atomically, a device or FIFO written through); one :class:`SrzooError`
        line naming the file when it cannot be written."""
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        try:
            fsutil.atomic_write(path, text)
        except OSError as e:
            raise SrzooError(f"JSON report: {fsutil.describe(e, path)}") from None


def _clean_partials(outputs: Iterable[str]) -> None:
    """Remove temporary files a killed worker left beside our outputs (the batch
    is over: nothing of ours is still writing them). Local outputs only."""
    by_dir: dict[Path, set[str]] = {}
    for o in outputs:
        if not is_url(o):
            p = Path(o)
            by_dir.setdefault(p.parent, set()).add(p.name)
    for d, names in by_dir.items():
        try:
            entries = os.listdir(d)
        except OSError:
            continue
        for e in entries:
            if e.startswith(".") and e.endswith(".part"):
                base = e[1:].rsplit(".", 2)[0]
                if base in names:
                    try:
                        os.unlink(d / e)
                    except OSError:
                        pass


def run_batch(inputs: Iterable[str | os.PathLike[str]], model: str | ModelEntry = "espcn",
              scale: float | None = 2, *, output: str | os.PathLike[str] | None = None,
              width: int | None = None, height: int | None = None, backend: str = "auto",
              tile: int | None = None, overwrite: bool = False, skip_existing: bool = False,
              jobs: int | None = None, threads: int | None = None, client: Any = None,
              scheduler: str | None = None, retries: int = 2, progress: bool | None = None,
              on_result: Callable[[FileResult], None] | None = None,
              json_report: str | os.PathLike[str] | None = None,
              force_jobs: bool = False, format: str | None = None,
              quality: int | None = None, stretch: bool = False) -> BatchReport:
    """Upscale files, folders and globs (local or fsspec URLs); see the module doc.

    Executor: ``client`` (a ``distributed.Client``) or ``scheduler``
    (``tcp://HOST:8786``, ``local``; default ``SRZOO_SCHEDULER``) → Dask;
    ``jobs=N`` (N > 1) → a local pool of N processes with ``threads`` OpenCV
    threads each (default: cores // N); otherwise serial, in this process.
    Local ``jobs`` are capped at the cores this process may use, with a note on
    stderr, unless ``force_jobs``.
    ``retries``: how often a job whose worker died is run again before it is
    reported failed. Model and backend errors are raised before any file is
    touched. ``on_result`` is called once per input as results arrive.
    Outputs keep the input's format (and its ICC profile, EXIF, XMP) unless
    ``format`` is given; ``quality``: JPEG/WebP quality, 1-100.
    """

    if scheduler is None and client is None:
        scheduler = _env_scheduler()
    ex = executors.make_executor(jobs=jobs, threads=threads, client=client,
                                 scheduler=scheduler, retries=retries, force_jobs=force_jobs)
    if ex.note and progress is not False:
        print(f"srzoo: note: {ex.note}", file=sys.stderr, flush=True)
    try:
        p = plan(inputs, model, scale, output=output, width=width, height=height,
                 overwrite=overwrite, skip_existing=skip_existing, backend=backend, tile=tile,
                 threads=ex.threads, format=format, quality=quality, stretch=stretch)
        files = prefetch(p, quiet=progress is False or None)
        if len(p.jobs) == 1 and progress is not False and ex.local and ex.name == "serial":
            p.jobs = [Job(**{**p.jobs[0].__dict__, "progress": True})]  # one image: tiles
        if p.jobs:
            j0 = p.jobs[0]
            if ex.local:  # load now: backend errors before any file is touched

                if j0.scale is not None:
                    scales = [e.scale for e in j0.entries if e.scale is not None]
                    s = resize.pick_scale(scales, float(j0.scale), p.model)
                    e = next((e for e in j0.entries if e.scale == s), j0.entries[0].at_scale(s))
                    get_upscaler(e, s, backend=backend, threads=ex.threads)
            else:
                backends.resolve(backend)
            p.jobs = [Job(**{**j.__dict__, "model_files": files}) for j in p.jobs]
        results: list[FileResult | None] = list(p.results)
        records: list[dict[str, Any]] = [{} for _ in results]
        for r in results:
            if r is not None and on_result:
                on_result(r)
        bar = None
        if p.jobs and (progress or (progress is None and len(p.jobs) > 1)):
            from tqdm import tqdm

            bar = tqdm(total=len(p.jobs), unit="img", file=sys.stderr, dynamic_ncols=True,
                       disable=None if progress is None else not progress,
                       desc=f"{p.model} {p.label}")
        t0 = time.perf_counter()
        failed = 0

        def done(job: Job, rec: dict[str, Any]) -> None:
            nonlocal failed
            r = FileResult(job.input)
            if rec.get("status") == "written":
                r.output = rec["output"] if is_url(rec["output"]) else Path(rec["output"])
            else:
                r.error = rec.get("error") or "failed"
                failed += 1
            r.seconds = rec.get("seconds")
            r.in_shape, r.out_shape = rec.get("in_shape"), rec.get("out_shape")
            results[job.index] = r
            records[job.index] = rec
            if on_result:
                on_result(r)
            if bar is not None:
                bar.update(1)
                if failed:
                    bar.set_postfix(failed=failed, refresh=False)

        try:
            ex.run(run_job, p.jobs, done)
        finally:
            if bar is not None:
                bar.close()
            _clean_partials(j.output for j in p.jobs)
        seconds = time.perf_counter() - t0
    finally:
        ex.close()
    by_index = {j.index: j for j in p.jobs}
    final = [r if r is not None else FileResult(by_index[i].input, error="not run")
             for i, r in enumerate(results)]
    report = BatchReport(final, seconds, ex.name, p.model, p.label, records)
    if json_report is not None:
        report.write_json(json_report)
    return report


__all__ = ["BatchReport", "Job", "Plan", "is_url", "plan", "prefetch", "run_batch", "run_job"]
