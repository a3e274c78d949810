"""One small executor: map a pure function over tasks on a serial, process or Ray backend.

Tasks must be pure functions of their arguments (seeds included), so every backend returns identical results in
the input order. Ray is optional (`pip install toolbox[ray]`); it starts a local instance when no address is set.

Interruption: Ctrl-C or SIGTERM in the parent cancels the queued tasks and stops the running ones on every
backend (loky kills its workers; Ray cancels its tasks), so a command stops within seconds. Process workers ignore
SIGINT (the parent decides) and, on Linux, die with their parent even when it is killed outright.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Callable, Iterable, Sequence, TypeVar

from toolbox.core.errors import UserInputError

T = TypeVar("T")
R = TypeVar("R")

BACKENDS = ("serial", "process", "ray")
_PR_SET_PDEATHSIG = 1


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _worker_init() -> None:
    """Process workers: Ctrl-C is the parent's to handle, and a worker never outlives its parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


def map_tasks(fn: Callable[[T], R], tasks: Iterable[T], backend: str = "serial", workers: int | None = None,
              progress: Callable[[int, int], None] | None = None, ray_address: str | None = None) -> list[R]:
    """[fn(t) for t in tasks] on the chosen backend, in order; progress(done, total) after each result."""
    items: Sequence[T] = list(tasks)
    total = len(items)
    if backend not in BACKENDS:
        raise UserInputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if workers is not None and workers < 1:
        raise UserInputError(f"workers must be >= 1, got {workers}")
    if backend == "serial" or total <= 1:
        out = []
        for i, item in enumerate(items):
            out.append(fn(item))
            if progress:
                progress(i + 1, total)
        return out
    workers = workers or default_workers()
    if backend == "process":
        return _map_process(fn, items, min(workers, total), progress)
    return _map_ray(fn, items, workers, progress, ray_address)


def _map_process(fn, items, workers, progress):
    from loky import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_init)
    try:
        futures = [pool.submit(fn, item) for item in items]
        out = []
        for i, fut in enumerate(futures):
            out.append(fut.result())
            if progress:
                progress(i + 1, len(items))
    except BaseException:
        pool.shutdown(wait=False, kill_workers=True)  # cancel the queue, stop the running tasks
        raise
    pool.shutdown(wait=True)
    return out


def _map_ray(fn, items, workers, progress, address):
    try:
        import ray
    except ImportError as exc:
        raise UserInputError("the ray backend needs Ray: pip install 'toolbox[ray]'") from exc
    started_here = not ray.is_initialized()
    refs, out = [], []
    try:
        if started_here:
            address = address or os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False,
                         object_store_memory=256 * 1024 * 1024, _node_ip_address="127.0.0.1")  # loopback only
        remote = ray.remote(fn)
        refs = [remote.remote(item) for item in items]
        for i, ref in enumerate(refs):
            out.append(ray.get(ref))
            if progress:
                progress(i + 1, len(items))
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        if started_here:  # stop the local instance now: left to the exit handlers, an interrupted Ray can crash
            ray.shutdown()
        raise
    return out
