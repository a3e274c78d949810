"""Predictive metrics for Gaussian predictions N(mean, var) of targets y (Rasmussen & Williams 2006, Sec. 2.5)."""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

Z95 = 1.959963984540054


def nlpd_points(y, mean, var) -> np.ndarray:
    return 0.5 * np.log(2 * math.pi * var) + 0.5 * (y - mean) ** 2 / var


def crps(y, mean, var) -> np.ndarray:
    """Closed-form CRPS of a Gaussian (Gneiting & Raftery 2007)."""
    sd = np.sqrt(var)
    z = (y - mean) / sd
    return sd * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / math.sqrt(math.pi))


def evaluate(y, mean, var, y_train) -> dict:
    """SMSE, MSLL (against N(mean(y_train), var(y_train))), NLPD, 95% coverage, CRPS (means over test points)."""
    y, mean, var = (np.asarray(a, dtype=np.float64) for a in (y, mean, var))
    trivial = nlpd_points(y, np.mean(y_train), np.var(y_train))
    nlpd = nlpd_points(y, mean, var)
    return {
        "smse": float(np.mean((y - mean) ** 2) / np.var(y)),
        "msll": float(np.mean(nlpd - trivial)),
        "nlpd": float(np.mean(nlpd)),
        "coverage95": float(np.mean(np.abs(y - mean) <= Z95 * np.sqrt(var))),
        "crps": float(np.mean(crps(y, mean, var))),
    }


def noise_floor(noise_var: float) -> float:
    """The expected NLPD of the Bayes-optimal predictor when the noise is Gaussian: 1/2 log(2 pi e noise_var)."""
    return 0.5 * math.log(2 * math.pi * math.e * noise_var)
