"""Regression data for fuse-gp: generators with known noise, data shipped inside installed packages, user files.

- gp-prior: f ~ GP(0, s_f^2 SE(l)) on x ~ U[-2, 2]^d, y = f + N(0, s_n^2) (the gpoe.md Sec. 4.3 setup); exact
  joint sampling by Cholesky up to 8,000 points, above that random Fourier features (4,096, an approximation).
  The true hyper-parameters are known, so the full GP with them is the Bayes-optimal reference.
- kin-like: forward kinematics of an 8-joint revolute arm in 3-D (alternating z / y axes, as KIN40K's DELVE
  arm); target: the distance of the end effector from a fixed point (reconstructed; KIN40K itself is not shipped).
- sarcos-like: inverse dynamics of a 7-DoF serial arm by recursive Newton-Euler; inputs (q, qd, qdd) along
  smooth sum-of-sines trajectories, target the torque of joint 1 (reconstructed SARCOS substitute).
- diabetes (scikit-learn, bundled), co2 (statsmodels' weekly Mauna Loa series, 1-D), friedman1 (scikit-learn).
- file: CSV with a header or NPZ; `target` names the column (CSV) or array (NPZ: x and y arrays also work).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolbox.core.errors import UserInputError

DATASETS = ("gp-prior", "kin-like", "sarcos-like", "diabetes", "co2", "friedman1", "file")
EXACT_SAMPLE_MAX = 8000


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    noise_var: float | None = None   # known observation noise (generators only)
    true_hyper: dict | None = None   # kernel, lengthscale, outputscale, noise (gp-prior only)


def se_kernel(a: np.ndarray, b: np.ndarray, lengthscale: float, signal_var: float) -> np.ndarray:
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return signal_var * np.exp(-0.5 * d2 / lengthscale ** 2)


def gp_prior(n_train: int, n_test: int, dims: int = 4, lengthscale: float = 1.0, signal_var: float = 1.0,
             noise_var: float = 0.01, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    x = rng.uniform(-2, 2, size=(n, dims))
    if n <= EXACT_SAMPLE_MAX:
        k = se_kernel(x, x, lengthscale, signal_var) + 1e-8 * signal_var * np.eye(n)
        f = np.linalg.cholesky(k) @ rng.standard_normal(n)
    else:  # random Fourier features of the SE kernel: omega ~ N(0, I / l^2)
        features = 4096
        omega = rng.standard_normal((dims, features)) / lengthscale
        phase = rng.uniform(0, 2 * np.pi, features)
        f = np.sqrt(2 * signal_var / features) * np.cos(x @ omega + phase) @ rng.standard_normal(features)
    y = f + np.sqrt(noise_var) * rng.standard_normal(n)
    hyper = {"kernel": "rbf", "lengthscale": lengthscale, "outputscale": signal_var, "noise": noise_var}
    return Dataset("gp-prior", x[:n_train], y[:n_train], x[n_train:], y[n_train:], noise_var, hyper)


def kin_like(n_train: int, n_test: int, noise_fraction: float = 0.01, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    q = rng.uniform(-np.pi / 2, np.pi / 2, size=(n, 8))
    links = np.array([0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1, 0.08])
    rot = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
    pos = np.zeros((n, 3))
    for j in range(8):
        c, s = np.cos(q[:, j]), np.sin(q[:, j])
        z, o = np.zeros(n), np.ones(n)
        if j % 2 == 0:  # about z
            r = np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], 1)
        else:           # about y
            r = np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], 1)
        rot = rot @ r
        pos = pos + links[j] * rot[:, :, 0]  # each link extends along its local x axis
    f = np.linalg.norm(pos - np.array([0.6, 0.3, 0.2]), axis=1)
    noise_var = noise_fraction * float(np.var(f))
    y = f + np.sqrt(noise_var) * rng.standard_normal(n)
    return Dataset("kin-like", q[:n_train], y[:n_train], q[n_train:], y[n_train:], noise_var)


class SevenDofArm:
    """A fixed 7-DoF serial arm (standard DH, alternating +-90 deg twists, joint 1 about the vertical axis) with
    random but seeded link lengths, masses, centres of mass and inertias."""

    def __init__(self, seed: int = 7):
        robot = np.random.default_rng(seed)
        self.joints = 7
        self.a_len = robot.uniform(0.05, 0.35, 7)
        self.d_off = robot.uniform(0.0, 0.3, 7)
        self.alpha = np.where(np.arange(7) % 2 == 0, np.pi / 2, -np.pi / 2)
        self.mass = robot.uniform(0.5, 4.0, 7)
        self.com = robot.uniform(-0.1, 0.1, (7, 3))
        self.inertia = np.stack([np.diag(robot.uniform(0.01, 0.1, 3)) for _ in range(7)])

    def joint1_torque(self, q, qd, qdd, gravity: float = 9.81) -> np.ndarray:
        """Recursive Newton-Euler (Craig / Corke rne_dh): forward velocities and accelerations in each link frame,
        backward forces and moments; returns the torque about joint 1's axis for [n, 7] q, qd, qdd."""
        n = len(q)
        w, wd = np.zeros((n, 3)), np.zeros((n, 3))
        acc = np.tile([0.0, 0.0, gravity], (n, 1))  # base accelerating upwards = gravity
        z = np.array([0.0, 0.0, 1.0])
        rots, offsets, forces, moments = [], [], [], []
        for j in range(self.joints):
            c, s = np.cos(q[:, j]), np.sin(q[:, j])
            ca, sa = np.cos(self.alpha[j]), np.sin(self.alpha[j])
            zero = np.zeros(n)
            rot = np.stack([np.stack([c, -s * ca, s * sa], -1), np.stack([s, c * ca, -c * sa], -1),
                            np.stack([zero, np.full(n, sa), np.full(n, ca)], -1)], 1)  # Rz(q) Rx(alpha)
            rt = np.transpose(rot, (0, 2, 1))
            p = np.array([self.a_len[j], self.d_off[j] * sa, self.d_off[j] * ca])
            spin = qd[:, j:j + 1] * z
            w_prev = w
            w = np.einsum("nij,nj->ni", rt, w_prev + spin)
            wd = np.einsum("nij,nj->ni", rt, wd + qdd[:, j:j + 1] * z + np.cross(w_prev, spin))
            acc = np.einsum("nij,nj->ni", rt, acc) + np.cross(wd, p) + np.cross(w, np.cross(w, p))
            acc_com = acc + np.cross(wd, self.com[j]) + np.cross(w, np.cross(w, self.com[j]))
            inertia = self.inertia[j]
            rots.append(rot)
            offsets.append(p)
            forces.append(self.mass[j] * acc_com)
            moments.append(wd @ inertia.T + np.cross(w, w @ inertia.T))
        f, m = np.zeros((n, 3)), np.zeros((n, 3))
        for j in reversed(range(self.joints)):
            f_in = np.einsum("nij,nj->ni", rots[j + 1], f) if j + 1 < self.joints else f
            m_in = np.einsum("nij,nj->ni", rots[j + 1], m) if j + 1 < self.joints else m
            p = offsets[j]
            m = m_in + np.cross(p, f_in) + np.cross(p + self.com[j], forces[j]) + moments[j]
            f = f_in + forces[j]
        return np.einsum("nij,nj->ni", rots[0], m)[:, 2]  # moment about z_0, the axis of joint 1


def sarcos_like(n_train: int, n_test: int, noise_fraction: float = 0.01, seed: int = 0) -> Dataset:
    """Inputs (q, qd, qdd) along smooth sum-of-sines trajectories sampled at random times; target joint-1 torque."""
    rng = np.random.default_rng(seed)
    arm = SevenDofArm()
    shape = np.random.default_rng(8)  # the same trajectory family for every seed
    amp, freq = shape.uniform(0.2, 0.8, (7, 3)), shape.uniform(0.1, 1.0, (7, 3))
    n = n_train + n_test
    arg = freq[None] * rng.uniform(0, 100, n)[:, None, None] + rng.uniform(0, 2 * np.pi, (7, 3))[None]
    q = (amp[None] * np.sin(arg)).sum(-1)
    qd = (amp[None] * freq[None] * np.cos(arg)).sum(-1)
    qdd = -(amp[None] * freq[None] ** 2 * np.sin(arg)).sum(-1)
    tau = arm.joint1_torque(q, qd, qdd)
    noise_var = noise_fraction * float(np.var(tau))
    y = tau + np.sqrt(noise_var) * rng.standard_normal(n)
    x = np.concatenate([q, qd, qdd], 1)
    return Dataset("sarcos-like", x[:n_train], y[:n_train], x[n_train:], y[n_train:], noise_var)


def _split(name, x, y, n_train, n_test, seed, test_fraction: float = 0.2) -> Dataset:
    """A random train / test split; when the data set is smaller than asked, test_fraction of it is the test set."""
    order = np.random.default_rng(seed).permutation(len(y))
    if n_train + n_test > len(y):
        n_test = max(2, int(round(test_fraction * len(y))))
        n_train = len(y) - n_test
    tr, te = order[:n_train], order[n_train:n_train + n_test]
    return Dataset(name, x[tr], y[tr], x[te], y[te])


def diabetes(n_train: int, n_test: int, seed: int = 0) -> Dataset:
    from sklearn.datasets import load_diabetes

    data = load_diabetes()
    return _split("diabetes", data.data, data.target.astype(float), n_train, n_test, seed)


def co2(n_train: int, n_test: int, seed: int = 0) -> Dataset:
    try:
        from statsmodels.datasets import co2 as co2_data
    except ImportError as exc:
        raise UserInputError("the co2 data set needs statsmodels: pip install statsmodels") from exc
    frame = co2_data.load_pandas().data.dropna()
    years = frame.index.year + (frame.index.day_of_year - 1) / 365.25
    return _split("co2", np.asarray(years, dtype=float)[:, None], frame["co2"].to_numpy(float), n_train, n_test,
                  seed)


def friedman1(n_train: int, n_test: int, noise_sd: float = 1.0, seed: int = 0) -> Dataset:
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_train + n_test, n_features=10, noise=noise_sd, random_state=seed)
    return Dataset("friedman1", x[:n_train], y[:n_train], x[n_train:], y[n_train:], noise_sd ** 2)


def read_table(path: str | Path, target: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(x [N, d], y [N]) from a CSV with a header (target: column name, default the last) or an NPZ file."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"data file not found: {path}")
    if path.suffix == ".npz":
        arrays = dict(np.load(path, allow_pickle=False))
        if "x" in arrays and "y" in arrays and not target:
            x, y = arrays["x"], arrays["y"]
        else:
            names = list(arrays)
            target = target or names[-1]
            if target not in arrays:
                raise UserInputError(f"{path}: no array named {target!r} (arrays: {', '.join(names)})")
            y = arrays[target]
            x = np.column_stack([arrays[k] for k in names if k != target])
    else:
        try:
            table = np.genfromtxt(path, delimiter=",", names=True, dtype=float, encoding="utf-8")
        except ValueError as exc:
            raise UserInputError(f"{path}: not a numeric CSV with a header ({exc})") from exc
        if table.dtype.names is None or len(table.dtype.names) < 2:
            raise UserInputError(f"{path}: need a header and at least two numeric columns")
        names = list(table.dtype.names)
        target = target or names[-1]
        if target not in names:
            raise UserInputError(f"{path}: no column named {target!r} (columns: {', '.join(names)})")
        y = np.asarray(table[target], dtype=float)
        x = np.column_stack([np.asarray(table[k], dtype=float) for k in names if k != target])
    x, y = np.atleast_2d(np.asarray(x, dtype=float)), np.asarray(y, dtype=float).reshape(-1)
    if x.shape[0] != y.shape[0]:
        x = x.T if x.shape[1] == y.shape[0] else x
    if x.shape[0] != y.shape[0]:
        raise UserInputError(f"{path}: inputs have {x.shape[0]} rows but the target has {y.shape[0]}")
    return x, y


def check_xy(x: np.ndarray, y: np.ndarray, what: str = "training data") -> None:
    """NaN / inf, too few points and constant targets are user errors (one line each)."""
    if len(y) < 2:
        raise UserInputError(f"{what}: need at least 2 points, got {len(y)}")
    bad_rows = ~(np.all(np.isfinite(x), axis=1) & np.isfinite(y))
    if bad_rows.any():
        raise UserInputError(f"{what}: {int(bad_rows.sum())} row(s) contain NaN or inf (first: row "
                             f"{int(np.flatnonzero(bad_rows)[0])}); drop or impute them first")
    if np.ptp(y) == 0:
        raise UserInputError(f"{what}: the target is constant ({y[0]:g}); a GP needs varying targets")


def load(name: str, n_train: int, n_test: int, seed: int, dims: int = 4, noise_var: float = 0.01,
         path: str = "", target: str = "", test_fraction: float = 0.2, lengthscale: float = 1.0,
         signal_var: float = 1.0, noise_fraction: float = 0.01, friedman1_noise_sd: float = 1.0) -> Dataset:
    """A data set by name; each generator takes its own parameters (gp-prior: dims, lengthscale, signal_var,
    noise_var; kin-like and sarcos-like: noise_fraction; friedman1: friedman1_noise_sd)."""
    if name == "gp-prior":
        data = gp_prior(n_train, n_test, dims=dims, lengthscale=lengthscale, signal_var=signal_var,
                        noise_var=noise_var, seed=seed)
    elif name == "kin-like":
        data = kin_like(n_train, n_test, noise_fraction=noise_fraction, seed=seed)
    elif name == "sarcos-like":
        data = sarcos_like(n_train, n_test, noise_fraction=noise_fraction, seed=seed)
    elif name == "diabetes":
        data = diabetes(n_train, n_test, seed)
    elif name == "co2":
        data = co2(n_train, n_test, seed)
    elif name == "friedman1":
        data = friedman1(n_train, n_test, noise_sd=friedman1_noise_sd, seed=seed)
    elif name == "file":
        if not path:
            raise UserInputError("dataset 'file' needs --data PATH (CSV with a header, or NPZ)")
        x, y = read_table(path, target)
        check_xy(x, y, str(path))
        n_test_file = max(1, int(round(test_fraction * len(y))))
        data = _split(Path(path).stem, x, y, len(y) - n_test_file, n_test_file, seed)
    else:
        raise UserInputError(f"dataset must be one of {', '.join(DATASETS)}, got {name!r}")
    check_xy(data.x_train, data.y_train)
    return data
