"""Paired multi-seed statistics: mean difference with t and BCa-bootstrap 95% CIs, Holm correction, exact McNemar."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats


def paired_difference(treatment: np.ndarray, baseline: np.ndarray, seed: int = 0, level: float = 0.95) -> dict:
    """Summary of d = treatment - baseline over paired seeds: mean, t CI, BCa bootstrap CI, paired t-test p."""
    d = np.asarray(treatment, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    n, mean = len(d), float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    if n < 2 or sd == 0.0:  # no spread: the CI collapses on the mean
        t_ci = boot_ci = (mean, mean) if n else (math.nan, math.nan)
        p = 1.0 if mean == 0.0 or n < 2 else 0.0
    else:
        half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
        t_ci = (mean - half, mean + half)
        p = float(stats.ttest_1samp(d, 0.0).pvalue)
        boot_ci = _bootstrap_ci(d, level, seed)
    return {"n": n, "mean": mean, "sd": sd, "t_ci": list(t_ci), "bootstrap_ci": list(boot_ci), "p_t": p}


def _bootstrap_ci(d: np.ndarray, level: float, seed: int) -> tuple[float, float]:
    gen = np.random.default_rng(seed)
    try:
        res = stats.bootstrap((d,), np.mean, confidence_level=level, n_resamples=4999, method="BCa", rng=gen)
    except TypeError:  # scipy < 1.15 spells the generator argument random_state
        res = stats.bootstrap((d,), np.mean, confidence_level=level, n_resamples=4999, method="BCa",
                              random_state=gen)
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):  # BCa degenerates on near-constant samples
        means = gen.choice(d, size=(4999, len(d))).mean(1)
        low, high = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
    return float(low), float(high)


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (statsmodels' step-down procedure), in the input order."""
    from statsmodels.stats.multitest import multipletests

    if len(p_values) == 0:
        return []
    return multipletests(np.asarray(p_values, dtype=np.float64), method="holm")[1].tolist()


def mcnemar(baseline_correct: np.ndarray, treatment_correct: np.ndarray) -> dict:
    """Exact McNemar test on paired per-sample correctness: b = only baseline right, c = only treatment right."""
    base, treat = np.asarray(baseline_correct, bool), np.asarray(treatment_correct, bool)
    b, c = int(np.sum(base & ~treat)), int(np.sum(~base & treat))
    p = 1.0 if b + c == 0 else float(stats.binomtest(min(b, c), b + c, 0.5).pvalue)
    return {"only_baseline": b, "only_treatment": c, "p": p}
