"""One small executor: map a pure function over tasks on a serial, process or Ray backend.

Tasks must be pure functions of their arguments (seeds included), so every backend returns identical results in
the input order. Ray is optional (`pip install toolbox[ray]`); it starts a local instance when no address is set.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Sequence, TypeVar

from toolbox.core.errors import UserInputError

T = TypeVar("T")
R = TypeVar("R")

BACKENDS = ("serial", "process", "ray")


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def map_tasks(fn: Callable[[T], R], tasks: Iterable[T], backend: str = "serial", workers: int | None = None,
              progress: Callable[[int, int], None] | None = None, ray_address: str | None = None) -> list[R]:
    """[fn(t) for t in tasks] on the chosen backend, in order; progress(done, total) after each result."""
    items: Sequence[T] = list(tasks)
    total = len(items)
    if backend not in BACKENDS:
        raise UserInputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "serial" or total <= 1:
        out = []
        for i, item in enumerate(items):
            out.append(fn(item))
            if progress:
                progress(i + 1, total)
        return out
    workers = workers or default_workers()
    if backend == "process":
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # fork is unsafe with torch's threads
        with ProcessPoolExecutor(max_workers=min(workers, total), mp_context=ctx) as pool:
            futures = [pool.submit(fn, item) for item in items]
            out = []
            for i, fut in enumerate(futures):
                out.append(fut.result())
                if progress:
                    progress(i + 1, total)
            return out
    return _map_ray(fn, items, workers, progress, ray_address)


def _map_ray(fn, items, workers, progress, address):
    try:
        import ray
    except ImportError as exc:
        raise UserInputError("the ray backend needs Ray: pip install 'toolbox[ray]'") from exc
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False,
                     object_store_memory=256 * 1024 * 1024, _node_ip_address="127.0.0.1")  # loopback only
    remote = ray.remote(fn)
    refs = [remote.remote(item) for item in items]
    out = []
    for i, ref in enumerate(refs):
        out.append(ray.get(ref))
        if progress:
            progress(i + 1, len(items))
    return out
