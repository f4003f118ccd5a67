"""Where batch jobs run: in this process, a local process pool, or a Dask cluster.

Every executor has the same small surface: ``run(fn, jobs, done)`` calls
``fn(job)`` for every job somewhere and ``done(job, record)`` here, in this
process, as each finishes (in completion order); ``fn`` never raises (see
:func:`srzoo.jobs.batch.run_job`), so an exception seen here means the worker itself
was lost. A job whose worker died is run again up to ``retries`` times, then
reported failed with the reason; nothing else is shared between workers.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from srzoo.errors import SrzooError

Done = Callable[[Any, dict], None]


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not on every OS
        return max(1, os.cpu_count() or 1)


def _lost(job: Any, why: str, attempts: int) -> dict:
    return {"index": job.index, "input": job.input, "output": None, "status": "failed",
            "error": f"{why} (tried {attempts} times); the output was not written",
            "attempts": attempts}


class SerialExecutor:
    """Jobs one after another in this process (the reference every other executor matches)."""

    name = "serial"
    local = True
    threads: int | None = None

    def run(self, fn: Callable[[Any], dict], jobs: Sequence[Any], done: Done) -> None:
        for job in jobs:
            done(job, fn(job))

    def close(self) -> None:
        pass


def _init_worker(threads: int) -> None:
    """Pool worker start: cap every threading library at ``threads``."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import cv2

    cv2.setNumThreads(threads)


class ProcessExecutor:
    """A local pool of ``workers`` processes (``concurrent.futures``, spawn start
    method), each with ``threads`` OpenCV threads (default cores // workers).
    Each process keeps its loaded model between jobs. When a worker process
    dies (killed, out of memory, crashed) the pool is rebuilt and the jobs that
    had not finished are run again, at most ``retries`` more times each."""

    local = False

    def __init__(self, workers: int, threads: int | None = None, retries: int = 2) -> None:
        if workers < 1:
            raise SrzooError(f"--jobs must be at least 1, got {workers}")
        self.workers = int(workers)
        self.threads = int(threads) if threads else max(1, cores() // self.workers)
        self.retries = int(retries)
        self.name = f"{self.workers} processes x {self.threads} threads"

    def run(self, fn: Callable[[Any], dict], jobs: Sequence[Any], done: Done) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        attempts: dict[int, int] = {}
        pending = list(jobs)
        while pending:
            ctx = mp.get_context("spawn")
            pool = ProcessPoolExecutor(min(self.workers, len(pending)), mp_context=ctx,
                                       initializer=_init_worker, initargs=(self.threads,))
            try:
                futures = {pool.submit(fn, j): j for j in pending}
                pending = []
                for fut in as_completed(futures):
                    job = futures[fut]
                    attempts[job.index] = attempts.get(job.index, 0) + 1
                    try:
                        rec = fut.result()
                    except Exception as e:  # BrokenProcessPool: a worker died
                        if attempts[job.index] > self.retries:
                            done(job, _lost(job, f"worker process died ({type(e).__name__})",
                                            attempts[job.index]))
                        else:
                            pending.append(job)
                        continue
                    rec["attempts"] = attempts[job.index]
                    done(job, rec)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        pass


class DaskExecutor:
    """Jobs as tasks on a Dask distributed cluster: an existing ``client``, a
    scheduler ``address`` (``tcp://HOST:8786``), or ``"local"`` for a
    ``LocalCluster`` of ``workers`` processes started here and closed after.

    Dask re-runs the task of a worker that died (up to the scheduler's
    ``allowed-failures``); ``retries`` re-runs a task that raised. A task that
    still cannot finish is reported failed with Dask's reason."""

    local = False

    def __init__(self, client: Any = None, address: str | None = None, *, workers: int | None = None,
                 threads: int | None = None, retries: int = 2) -> None:
        try:
            import distributed
        except ImportError:
            raise SrzooError("a Dask scheduler needs Dask distributed: pip install 'srzoo[dask]'") from None
        self._own: list[Any] = []
        if client is None:
            if address in (None, "", "local"):
                n = int(workers or 2)
                cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                                   dashboard_address=None)
                self._own.append(cluster)
                threads = threads or max(1, cores() // n)
                client = distributed.Client(cluster)
            else:
                try:
                    client = distributed.Client(address, timeout="20s")
                except OSError as e:
                    raise SrzooError(f"cannot reach the Dask scheduler at {address}: {e} "
                                     "(check --scheduler / SRZOO_SCHEDULER)") from None
            self._own.insert(0, client)
        self.client = client
        self.threads = threads
        self.retries = int(retries)
        try:
            nw = len(client.nthreads())
            where = client.scheduler.address
        except Exception:  # pragma: no cover - an unusual client object
            nw, where = 0, "cluster"
        self.name = f"dask {where} ({nw} workers)"

    def run(self, fn: Callable[[Any], dict], jobs: Sequence[Any], done: Done) -> None:
        import uuid

        from distributed import as_completed

        if not jobs:
            return
        token = uuid.uuid4().hex[:8]
        futures = self.client.map(fn, list(jobs), pure=False, retries=self.retries,
                                  key=[f"srzoo-{token}-{j.index}" for j in jobs])
        by_key = {f.key: j for f, j in zip(futures, jobs)}
        for fut in as_completed(futures):
            job = by_key[fut.key]
            # result(), not status: a finished future whose worker died before the
            # client gathered it is lost and recomputed elsewhere ("pending" again):
            # result() waits for that; it raises only when Dask gave up on the task
            try:
                rec = fut.result()
            except Exception as exc:  # the task's error after its retries, or cancelled
                rec = _lost(job, f"Dask could not run it: {type(exc).__name__}: {exc}",
                            self.retries + 1)
            done(job, rec)
            fut.release()

    def close(self) -> None:
        for obj in self._own:
            try:
                obj.close()
            except Exception:  # pragma: no cover - best effort at shutdown
                pass
        self._own = []


def make_executor(*, jobs: int | None = None, threads: int | None = None, client: Any = None,
                  scheduler: str | None = None, retries: int = 2) -> Any:
    """The executor for these options: Dask for a ``client``/``scheduler``, a
    process pool for ``jobs`` > 1, else serial."""
    if client is not None or scheduler:
        return DaskExecutor(client, scheduler, workers=jobs, threads=threads, retries=retries)
    if jobs is not None and jobs > 1:
        return ProcessExecutor(jobs, threads, retries)
    if jobs is not None and jobs < 1:
        raise SrzooError(f"--jobs must be at least 1, got {jobs}")
    return SerialExecutor()


__all__ = ["DaskExecutor", "ProcessExecutor", "SerialExecutor", "cores", "make_executor"]
