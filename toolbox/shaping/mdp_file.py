"""An MDP from a file for `toolbox shape-reward solve`: JSON, TOML or NPZ with the same keys (docs/shape-reward.md).

Keys: P [S, A, S] (required), R [S, A] or [S, A, S] (required; R[s, a, s'] is averaged under P to R[s, a]),
horizon (H >= 1), gamma (in [0, 1]), start [S] (default: state 0), pi0 [A] or [S, A] (a reference policy),
name. Every check runs on loading, so a bad file is one line (exit 2) before any run folder exists.
"""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np

from toolbox.core.errors import UserInputError
from toolbox.shaping.mdp import TabularMDP

KEYS = ("P", "R", "horizon", "gamma", "start", "pi0", "name")
ROW_TOL = 1e-9  # |sum - 1| allowed for a row of P, start and pi0


def _read(path: Path) -> dict:
    if not path.is_file():
        raise UserInputError(f"MDP file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml", ".npz"):
        raise UserInputError(f"{path}: unknown MDP file type {suffix or '(none)'}; use .json, .toml or .npz")
    try:
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        elif suffix == ".toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            arrays = np.load(path, allow_pickle=False)
            if not isinstance(arrays, np.lib.npyio.NpzFile):
                raise ValueError("an .npy array, not an .npz archive")
            with arrays:
                data = {k: arrays[k] for k in arrays.files}
    except (ValueError, UnicodeDecodeError, OSError, EOFError) as exc:  # JSON/TOML decode errors are ValueErrors
        raise UserInputError(f"{path}: not a readable {suffix[1:].upper()} file ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected an object with keys {', '.join(KEYS)}")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise UserInputError(f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")
    for key in ("P", "R"):
        if key not in data:
            raise UserInputError(f"{path}: missing {key}")
    return data


def _array(path: Path, key: str, value) -> np.ndarray:
    """A float64 array; ragged lists, strings and booleans are refused; NaN and inf are named."""
    try:
        arr = np.asarray(value)
        if arr.dtype == bool or arr.dtype.kind not in "iuf":
            raise ValueError
        arr = arr.astype(np.float64)
    except (ValueError, TypeError):
        raise UserInputError(f"{path}: {key} must be a rectangular array of numbers") from None
    if not np.isfinite(arr).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise UserInputError(f"{path}: {key} has a non-finite entry (NaN or inf) at {list(where)}")
    return arr


def _distributions(path: Path, key: str, arr: np.ndarray, what: str, positive: bool = False) -> None:
    """Every row of arr (last axis) is a probability distribution (entries > 0 when positive)."""
    bad = np.argwhere(arr <= 0 if positive else arr < 0)
    if bad.size:
        raise UserInputError(f"{path}: {key}{list(map(int, bad[0]))} = {arr[tuple(bad[0])]:g} must be "
                             f"{'> 0' if positive else '>= 0'}")
    sums = arr.sum(-1)
    off = np.argwhere(np.abs(np.atleast_1d(sums) - 1.0) > ROW_TOL)
    if off.size:
        index = tuple(int(i) for i in off[0])[:arr.ndim - 1]  # () for a single distribution
        raise UserInputError(f"{path}: {key}[{', '.join(map(str, index + (':',)))}] sums to "
                             f"{sums[index]:.12g}, not 1 ({what} must be a probability distribution)")


def _scalar(path: Path, key: str, value, integer: bool):
    arr = _array(path, key, value)
    if arr.ndim != 0 or (integer and arr != np.round(arr)):
        raise UserInputError(f"{path}: {key} must be a single {'integer' if integer else 'number'}")
    return int(arr) if integer else float(arr)


def load_mdp(path: str | Path) -> tuple[TabularMDP, np.ndarray | None]:
    """(the MDP, its reference policy pi0 [S, A] or None) from a file, every entry checked. The MDP's horizon is
    the file's (0 when it gives none) and its gamma the file's or 1; the caller's settings complete and check them."""
    path = Path(path)
    data = _read(path)
    P = _array(path, "P", data["P"])
    if P.ndim != 3 or P.shape[0] != P.shape[2] or 0 in P.shape:
        raise UserInputError(f"{path}: P must be [S, A, S] with S, A >= 1, got shape {list(P.shape)}")
    S, A = P.shape[:2]
    _distributions(path, "P", P, "every row P(.|s, a)")
    R = _array(path, "R", data["R"])
    if R.shape == (S, A, S):
        R = (P * R).sum(-1)  # r(s, a) = sum_s' P(s'|s, a) r(s, a, s')
    elif R.shape != (S, A):
        raise UserInputError(f"{path}: R must be [S, A] = {[S, A]} or [S, A, S], got shape {list(R.shape)}")
    start = np.eye(S)[0]
    if "start" in data:
        start = _array(path, "start", data["start"])
        if start.shape != (S,):
            raise UserInputError(f"{path}: start must be [S] = [{S}], got shape {list(start.shape)}")
        _distributions(path, "start", start, "the initial distribution")
    pi0 = None
    if "pi0" in data:
        pi0 = _array(path, "pi0", data["pi0"])
        if pi0.shape not in ((A,), (S, A)):
            raise UserInputError(f"{path}: pi0 must be [A] = [{A}] or [S, A] = {[S, A]}, got {list(pi0.shape)}")
        _distributions(path, "pi0", pi0, "the reference policy pi0(.|s)", positive=True)
        pi0 = np.broadcast_to(pi0, (S, A)).copy()
    horizon = _scalar(path, "horizon", data["horizon"], True) if "horizon" in data else 0
    if "horizon" in data and horizon < 1:
        raise UserInputError(f"{path}: horizon must be >= 1, got {horizon}")
    gamma = _scalar(path, "gamma", data["gamma"], False) if "gamma" in data else None
    if gamma is not None and not 0 <= gamma <= 1:
        raise UserInputError(f"{path}: gamma must be in [0, 1], got {gamma:g}")
    name = str(data["name"]) if "name" in data else path.stem
    return TabularMDP(name, P, R, horizon, start, gamma=1.0 if gamma is None else gamma), pi0
