"""Small helpers shared by the benchmark scripts: timing, peak memory, a markdown table, the machine's load and read
bandwidth."""
from __future__ import annotations

import os
import statistics
import time


def time_it(fn, repeat: int = 3, warmup: int = 1, sync=None) -> float:
    """Median wall time of fn() in seconds (sync() is called after each run, e.g. torch.cuda.synchronize)."""
    return statistics.median(timed_runs(fn, repeat, warmup, sync=sync))


def best_of(fn, repeats: int = 3, warmup: int = 1) -> float:
    """Fastest of `repeats` timed calls of fn() in seconds, after `warmup` untimed calls."""
    return min(timed_runs(fn, repeats, warmup))


def alternate(fns: dict, repeats: int = 5, warmup: int = 1) -> dict:
    """Median wall time of each fn() in seconds, the implementations run in turn in every round (a shared machine's
    load then falls on all of them alike)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def load_average() -> str:
    """The 1, 5 and 15 minute load averages as `uptime` prints them: 'load average: 0.52, 0.95, 1.04'."""
    return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def read_bandwidth(nbytes: int, repeats: int = 5) -> float:
    """The machine's read bandwidth in bytes/s now: median time of a numpy sum over a float32 array of nbytes."""
    import numpy as np

    a = np.ones(max(1, nbytes // 4), dtype=np.float32)
    return nbytes / alternate({"sum": lambda: a.sum()}, repeats)["sum"]


def markdown_table(columns: list[str], rows: list[list]) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def timed_runs(fn, repeat: int = 3, warmup: int = 1, budget_s: float = float("inf"), sync=None) -> list[float]:
    """Wall times of up to `repeat` calls of fn() after `warmup` untimed ones; stops early once the timed calls
    have used `budget_s` seconds (always at least one call). sync() runs after each call (e.g. a CUDA sync)."""
    def call():
        fn()
        if sync:
            sync()

    for _ in range(warmup):
        call()
    times: list[float] = []
    while len(times) < repeat and (not times or sum(times) < budget_s):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def log_sizes(lo: float, hi: float, n: int) -> list[int]:
    """n integer sizes log-spaced from lo to hi (duplicates after rounding dropped)."""
    import numpy as np

    return sorted({round(float(v)) for v in np.geomspace(lo, hi, n)})


def fit_power_law(sizes, costs, level: float = 0.95) -> dict:
    """Least squares of log(cost) = a + b log(size): the exponent b, its standard error from the residuals and the
    half-width of its `level` confidence interval (Student t, n - 2 degrees of freedom)."""
    import numpy as np
    from scipy import stats

    x, y = np.log(np.asarray(sizes, float)), np.log(np.asarray(costs, float))
    n = len(x)
    if n < 3:
        raise ValueError("a power-law fit with a confidence interval needs at least 3 sizes")
    xc = x - x.mean()
    sxx = float(xc @ xc)
    b = float(xc @ (y - y.mean())) / sxx
    a = float(y.mean() - b * x.mean())
    resid = y - a - b * x
    se = float(np.sqrt(resid @ resid / (n - 2) / sxx))
    half = float(stats.t.ppf(0.5 + level / 2, n - 2)) * se
    tss = float((y - y.mean()) @ (y - y.mean()))
    return {"a": a, "b": b, "b_se": se, "b_ci": half, "b_lo": b - half, "b_hi": b + half, "level": level, "n": n,
            "r2": 1.0 - float(resid @ resid) / tss if tss > 0 else 1.0}


def loglog_plot(path, panels: list[dict], title: str = "") -> None:
    """One PNG of log-log panels. Each panel: {"title", "xlabel", "ylabel", "series": [{"label", "x", "y", "fit"}]}
    where fit (optional) is a fit_power_law result, drawn as a line with its exponent and CI in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from toolbox.core.io import save_figure

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for i, s in enumerate(panel["series"]):
            color = f"C{i}"
            x = np.asarray(s["x"], float)
            label = s["label"]
            if s.get("fit"):
                f = s["fit"]
                grid = np.geomspace(x.min(), x.max(), 50)
                ax.plot(grid, np.exp(f["a"]) * grid ** f["b"], "-", color=color, alpha=0.6)
                label += f": b = {f['b']:.2f} ± {f['b_ci']:.2f}"
            ax.plot(x, s["y"], "o", color=color, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(panel["xlabel"])
        ax.set_ylabel(panel.get("ylabel", "seconds (median)"))
        ax.set_title(panel.get("title", ""), fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    save_figure(fig, path)
