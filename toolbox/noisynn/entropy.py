"""Task entropy H(T; X) = H(Y | X) and the entropy change dS = H(Y | X) - H(Y | X + eps) (paper, Sec. 3).

Linear transform noise eps = Q X over k samples gives dS = -log |det(I + Q)| (the paper keeps H(X) fixed), in closed
form without a k x k matrix:
    optimal Q*  (eq. 19): I + Q* = (I + 11') / (k + 1),  det = (k + 1)^-(k - 1),  dS = (k - 1) ln(k + 1)
    circulant   (eq. 17): I + Q = (1 - alpha) I + alpha P,  det = (1 - alpha)^k - (-alpha)^k
A zero determinant (even k, alpha = 1/2) is a singular transform: dS = +inf, reported with a warning.

For real features the joint-Gaussian form H(Y | Z) = 1/2 log((2 pi e)^dY |Sigma_Y|Z|), with
Sigma_Y|Z = Sigma_YY - Sigma_YZ Sigma_ZZ^-1 Sigma_ZY, is estimated from samples (one-hot labels, last class dropped).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from toolbox.core.errors import UserInputError


class SingularTransformWarning(UserWarning):
    """I + Q is singular: the paper's entropy change is +infinity."""


def log_abs_det_optimal(k: int) -> float:
    _check_k(k)
    return -(k - 1) * math.log(k + 1)


def log_abs_det_circulant(k: int, alpha: float) -> float:
    """log |(1 - alpha)^k - (-alpha)^k|, computed in log space (k may be millions); -inf when singular."""
    _check_k(k)
    a, b = abs(1.0 - alpha), abs(alpha)
    sign_a = 1.0 if (1.0 - alpha >= 0 or k % 2 == 0) else -1.0   # sign of (1 - alpha)^k
    sign_b = 1.0 if (alpha <= 0 or k % 2 == 0) else -1.0         # sign of (-alpha)^k
    big, small, s_big, s_small = (a, b, sign_a, -sign_b) if a >= b else (b, a, -sign_b, sign_a)
    if big == 0.0:
        return -math.inf
    # det = s_big big^k + s_small small^k = s_big big^k (1 + s_small/s_big (small/big)^k)
    ratio_term = (s_small / s_big) * math.exp(k * math.log(small / big)) if small > 0 else 0.0
    if ratio_term == -1.0:
        return -math.inf
    return k * math.log(big) + math.log1p(ratio_term)


def entropy_change(q: str, k: int, alpha: float | None = None) -> float:
    """dS = -log |det(I + Q)| of the optimal ('optimal') or circulant ('linear') Q over k samples."""
    if q == "optimal":
        _check_k(k)
        return (k - 1) * math.log(k + 1)
    if q in ("linear", "circulant"):
        if alpha is None:
            raise UserInputError("the circulant Q needs alpha")
        log_det = log_abs_det_circulant(k, alpha)
        if log_det == -math.inf:
            warnings.warn(f"singular transform: det(I + Q) = 0 for k = {k}, alpha = {alpha:g}; "
                          "the entropy change is +inf", SingularTransformWarning, stacklevel=2)
            return math.inf
        return -log_det
    raise UserInputError(f"closed forms exist for q = optimal or linear (circulant), got {q!r}")


def q_matrix(q: str, k: int, alpha: float = 0.0) -> np.ndarray:
    """The explicit k x k Q (test oracle and small illustrations only)."""
    eye = np.eye(k)
    if q == "optimal":
        return -k / (k + 1) * eye + np.ones((k, k)) / (k + 1)
    return alpha * (np.roll(eye, 1, axis=1) - eye)  # row i picks sample i + 1


def entropy_change_matrix(q: np.ndarray) -> float:
    sign, log_det = np.linalg.slogdet(np.eye(len(q)) + q)
    return math.inf if sign == 0 else -float(log_det)


def _check_k(k: int) -> None:
    if int(k) != k or k < 1:
        raise UserInputError(f"k (the number of mixed samples) must be a positive integer, got {k}")


# ---- Gaussian estimate of H(Y | Z) on samples --------------------------------------------------------------------

def gaussian_conditional_entropy(y: np.ndarray, z: np.ndarray, ridge: float = 1e-6) -> float:
    """1/2 log((2 pi e)^dY |Sigma_Y|Z|) from paired samples y [n, dY] (or [n]) and z [n, dZ] (or [n])."""
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
    if len(y) != len(z) or len(y) < 2:
        raise UserInputError(f"need at least 2 paired samples of y and z, got {len(y)} and {len(z)}")
    cov = np.cov(np.concatenate([y, z], axis=1), rowvar=False).reshape(y.shape[1] + z.shape[1], -1)
    dy = y.shape[1]
    s_yy, s_yz, s_zz = cov[:dy, :dy], cov[:dy, dy:], cov[dy:, dy:]
    s_zz = s_zz + ridge * np.trace(s_zz) / len(s_zz) * np.eye(len(s_zz))
    conditional = s_yy - s_yz @ np.linalg.solve(s_zz, s_yz.T)
    sign, log_det = np.linalg.slogdet(conditional)
    if sign <= 0:
        raise UserInputError("Sigma_Y|Z is not positive definite (degenerate labels or features)")
    return 0.5 * (dy * math.log(2 * math.pi * math.e) + log_det)


def one_hot_labels(labels: np.ndarray, classes: int) -> np.ndarray:
    """One-hot labels without the last class (the full one-hot covariance is singular: rows sum to 1)."""
    return np.eye(classes)[np.asarray(labels)][:, :-1]


def pca_basis(z: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, top `dims` principal directions [dZ, dims]) of clean features, reused for the noisy ones."""
    z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
    mean = z.mean(0)
    centred = z - mean
    _, vectors = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
    return mean, vectors[:, ::-1][:, :min(dims, z.shape[1], len(z) - 1)]


def feature_entropy_change(labels: np.ndarray, clean: np.ndarray, noisy: np.ndarray, classes: int,
                           dims: int = 32) -> dict:
    """Gaussian H(Y|Z) of clean and noisy latent features (projected on the clean features' top PCs) and dS."""
    y = one_hot_labels(labels, classes)
    mean, basis = pca_basis(clean, dims)
    project = lambda f: (np.asarray(f, np.float64).reshape(len(f), -1) - mean) @ basis  # noqa: E731
    h_clean = gaussian_conditional_entropy(y, project(clean))
    h_noisy = gaussian_conditional_entropy(y, project(noisy))
    return {"H_Y_given_Z_clean": h_clean, "H_Y_given_Z_noisy": h_noisy, "delta_S": h_clean - h_noisy,
            "pca_dims": int(basis.shape[1])}


def scalar_gaussian_delta_s(noise_variance: float) -> float:
    """Closed form for X ~ N(0,1), Y = X + N(0,1), eps ~ N(0, v): dS = 1/2 ln(1 / (2 - 1/(1 + v)))."""
    return 0.5 * math.log(1.0 / (2.0 - 1.0 / (1.0 + noise_variance)))


def scalar_gaussian_experiment(noise_variance: float, n: int = 100_000, seed: int = 0) -> dict:
    """Estimated dS = H(Y|X) - H(Y|X+eps) from n samples of the scalar linear-Gaussian model, with the closed form."""
    from toolbox.core.rng import numpy_generator

    gen = numpy_generator(seed, 8)
    x = gen.standard_normal(n)
    y = x + gen.standard_normal(n)
    eps = math.sqrt(noise_variance) * gen.standard_normal(n)
    estimate = gaussian_conditional_entropy(y, x) - gaussian_conditional_entropy(y, x + eps)
    return {"noise_variance": noise_variance, "n": n, "delta_S_estimate": estimate,
            "delta_S_closed_form": scalar_gaussian_delta_s(noise_variance)}


def entropy_table(ks: list[int], alphas: list[float], variances: tuple[float, ...] = (0.1, 0.5, 1.0, 4.0),
                  n: int = 100_000, seed: int = 0) -> dict:
    """The paper's dS for optimal and circulant Q over each k (closed forms), and the scalar Gaussian experiment."""
    rows = []
    for k in ks:
        rows.append({"q": "optimal", "k": k, "alpha": None, "log_abs_det": log_abs_det_optimal(k),
                     "delta_S": entropy_change("optimal", k), "singular": False})
        for alpha in alphas:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SingularTransformWarning)
                delta = entropy_change("linear", k, alpha)
            rows.append({"q": "circulant", "k": k, "alpha": alpha, "log_abs_det": log_abs_det_circulant(k, alpha),
                         "delta_S": delta, "singular": math.isinf(delta)})
    gaussian = [scalar_gaussian_experiment(v, n, seed) for v in variances]
    return {"linear_transform": rows, "scalar_gaussian": gaussian,
            "singular": [f"k = {r['k']}, alpha = {r['alpha']:g}" for r in rows if r["singular"]]}
