"""Data densities with exact OU marginals and scores: p_0 = sum_k w_k N(mean_k, var_k I_d).

Under the forward OU process dX = -X dt + sqrt(2) dW (the paper's convention, stationary law N(0, I)) the marginal
stays a mixture: p_t = sum_k w_k N(e^-t mean_k, v_k(t) I) with v_k(t) = 1 - e^-2t + var_k e^-2t (Yu & Huang sec. 2.1).
One class covers every score source of the paper and of Biroli et al.: Gaussian data (K = 1), the paper's
symmetric mixture 1/2 N(+mu, s^2) + 1/2 N(-mu, s^2), general K-component mixtures and the empirical measure of a
training set (every var_k = 0; its exact score is the softmax-weighted mixture behind memorisation and collapse).
Samples are keyed by particle index through Philox, so they do not depend on batch size or chunking.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

from toolbox.core import rng
from toolbox.core.errors import UserInputError

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class GaussianMixture:
    means: np.ndarray      # [K, d]
    variances: np.ndarray  # [K], data variance of each component (0: a point mass)
    weights: np.ndarray    # [K], sums to 1

    def __post_init__(self):
        means = np.ascontiguousarray(np.atleast_2d(np.asarray(self.means, dtype=np.float64)))
        variances = np.ascontiguousarray(np.asarray(self.variances, dtype=np.float64).reshape(-1))
        weights = np.asarray(self.weights, dtype=np.float64).reshape(-1)
        if means.shape[0] == 0 or means.shape[1] == 0:
            raise UserInputError("a mixture needs at least one component and one dimension")
        if variances.shape[0] != means.shape[0] or weights.shape[0] != means.shape[0]:
            raise UserInputError("means, variances and weights must have one entry per component")
        if not (np.all(np.isfinite(means)) and np.all(variances >= 0) and np.all(weights > 0)):
            raise UserInputError("mixture parameters must be finite, variances >= 0 and weights > 0")
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "variances", variances)
        object.__setattr__(self, "weights", np.ascontiguousarray(weights / weights.sum()))

    # -- constructors ---------------------------------------------------------------------------------------
    @classmethod
    def gaussian(cls, dim: int = 1, sigma2: float = 1.0) -> "GaussianMixture":
        """N(0, sigma2 I_d)."""
        return cls(np.zeros((1, dim)), [sigma2], [1.0])

    @classmethod
    def symmetric(cls, mu: float = 1.0, sigma2: float = 1.0, dim: int = 1) -> "GaussianMixture":
        """1/2 N(+m, sigma2 I) + 1/2 N(-m, sigma2 I), m = mu * ones(d) (the paper's data for d = 1; Biroli's for mu=1)."""
        m = np.full(dim, float(mu))
        return cls(np.stack([m, -m]), [sigma2, sigma2], [0.5, 0.5])

    @classmethod
    def empirical(cls, points) -> "GaussianMixture":
        """The empirical measure (1/n) sum_mu delta(x - a^mu) of a training set [n, d]."""
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2:
            raise UserInputError(f"training points must be [n, d], got shape {points.shape}")
        return cls(points, np.zeros(len(points)), np.ones(len(points)))

    # -- properties ---------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @property
    def components(self) -> int:
        return int(self.means.shape[0])

    @property
    def is_empirical(self) -> bool:
        return bool(np.all(self.variances == 0))

    def marginal(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(means e^-t [K, d], variances v_k(t) [K]) of p_t."""
        e2 = np.exp(-2.0 * t)
        return self.means * np.exp(-t), 1.0 - e2 + self.variances * e2

    def covariance(self) -> np.ndarray:
        """Data covariance [d, d] (for the covariance criterion t_S = 1/2 ln Lambda)."""
        mean = self.weights @ self.means
        centred = self.means - mean
        return (centred.T * self.weights) @ centred + np.eye(self.dim) * float(self.weights @ self.variances)

    def second_moment(self, t: float) -> float:
        """E|x|^2 under p_t."""
        m, v = self.marginal(t)
        return float(self.weights @ (np.sum(m**2, axis=1) + self.dim * v))

    # -- densities ----------------------------------------------------------------------------------------
    def _logits(self, x: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log w_k + log N(x; m_k(t), v_k(t)) up to -d/2 ln 2 pi [n, K], m(t), v(t))."""
        m, v = self.marginal(t)
        if np.any(v <= 0):
            raise UserInputError("the density of a point mass is not defined at t = 0; start at t > 0")
        x = np.asarray(x, dtype=np.float64)
        dist2 = np.maximum(np.sum(x**2, 1)[:, None] - 2.0 * x @ m.T + np.sum(m**2, 1)[None, :], 0.0)
        return np.log(self.weights) - 0.5 * dist2 / v - 0.5 * self.dim * np.log(v), m, v

    def log_prob_score(self, x: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(log p_t(x) [n], score grad log p_t(x) [n, d]) for x [n, d]."""
        logits, m, v = self._logits(x, t)
        lse = logsumexp(logits, axis=1)
        resp = np.exp(logits - lse[:, None]) / v  # r_k / v_k
        score = resp @ m - resp.sum(1)[:, None] * np.asarray(x, dtype=np.float64)
        return lse - 0.5 * self.dim * LOG_2PI, score

    def responsibilities(self, x: np.ndarray, t: float) -> np.ndarray:
        """Posterior component probabilities r_k(x) [n, K] under p_t."""
        logits = self._logits(x, t)[0]
        return np.exp(logits - logsumexp(logits, axis=1)[:, None])

    def log_prob(self, x: np.ndarray, t: float) -> np.ndarray:
        return self.log_prob_score(x, t)[0]

    def score(self, x: np.ndarray, t: float) -> np.ndarray:
        return self.log_prob_score(x, t)[1]

    def sample(self, n: int, t: float, seed: int, stream: int = 0, first: int = 0) -> np.ndarray:
        """n samples of p_t for particles first..first+n-1; Philox streams (stream, stream + 1): component, noise."""
        m, v = self.marginal(t)
        particles = np.arange(first, first + n, dtype=np.uint64)
        u = rng.philox_uniform4(seed, stream, particles, 0)[:, 0]
        k = np.minimum(np.searchsorted(np.cumsum(self.weights), u), self.components - 1)
        return m[k] + np.sqrt(v[k])[:, None] * philox_normals(seed, stream + 1, particles, self.dim)


def philox_normals(seed: int, stream: int, particles: np.ndarray, dim: int, step: int = 0) -> np.ndarray:
    """Normals [n, d] of one step: coordinate j of particle a is the particle's normal k = step * d + j, i.e.
    normal k % 4 of Philox counter (a, k // 4); the layout of langevin_normal in csrc/include/toolbox/diffusion.h."""
    first = int(step) * int(dim)
    blocks = np.arange(first >> 2, ((first + dim - 1) >> 2) + 1, dtype=np.uint64)
    z = rng.philox_normal4(seed, stream, np.asarray(particles, dtype=np.uint64)[:, None], blocks[None, :])
    return z.reshape(len(particles), -1)[:, (first & 3):(first & 3) + dim]


def load_digits_scaled() -> np.ndarray:
    """scikit-learn's bundled 8x8 digits (1797 x 64, shipped in the wheel), scaled from [0, 16] to [-1, 1]."""
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float64) / 8.0 - 1.0


def from_spec(kind: str, mu: float = 1.0, sigma2: float = 1.0, dim: int = 1, points: str | None = None,
              n_train: int = 0, seed: int = 0) -> GaussianMixture:
    """The data density named by the CLI: gauss | paper | gmm-file (npz: means, variances, weights) | empirical
    (npy [n, d] training set) | digits (empirical measure of scikit-learn's digits)."""
    if kind == "gauss":
        return GaussianMixture.gaussian(dim, sigma2)
    if kind == "paper":
        return GaussianMixture.symmetric(mu, sigma2, dim)
    if kind in ("gmm", "empirical"):
        if not points:
            raise UserInputError(f"data={kind} needs a file: --set points=PATH")
        if not Path(points).is_file():
            raise UserInputError(f"points file not found: {points}")
        try:
            arr = np.load(points)
        except (OSError, ValueError) as exc:
            raise UserInputError(f"cannot read {points}: {exc}") from exc
        if kind == "gmm":
            try:
                return GaussianMixture(arr["means"], arr["variances"], arr["weights"])
            except (KeyError, IndexError, TypeError) as exc:
                raise UserInputError(f"{points}: a gmm file is an npz with means, variances, weights") from exc
        return GaussianMixture.empirical(_subset(arr, n_train, seed))
    if kind == "digits":
        return GaussianMixture.empirical(_subset(load_digits_scaled(), n_train, seed))
    raise UserInputError(f"unknown data {kind!r}; use gauss, paper, gmm, empirical or digits")


def _subset(points: np.ndarray, n: int, seed: int) -> np.ndarray:
    if n <= 0 or n >= len(points):
        return points
    return points[rng.numpy_generator(seed, 7).choice(len(points), size=n, replace=False)]
