"""Small helpers shared by the benchmark scripts: timing, peak memory, a markdown table."""
from __future__ import annotations

import statistics
import time


def time_it(fn, repeat: int = 3, warmup: int = 1, sync=None) -> float:
    """Median wall time of fn() in seconds (sync() is called after each run, e.g. torch.cuda.synchronize)."""
    for _ in range(warmup):
        fn()
        if sync:
            sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def best_of(fn, repeats: int = 3, warmup: int = 1) -> float:
    """Fastest of `repeats` timed calls of fn() in seconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def markdown_table(columns: list[str], rows: list[list]) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
