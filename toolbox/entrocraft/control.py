"""The Entrocraft controller (Li et al., arXiv 2604.26326, Alg. 1) as a small function API.

Target bands [h_low(t), h_high(t)] (constant, linear, cosine, piecewise, from a CSV), the bang-bang mode
m = 1[H > h_high] - 1[H < h_low], the rejection filter "keep y iff m * A >= 0", the release code's
estimator switch (RAFT++ above the band, NSR below), a graded switch inside the band with a step size damped
when few rollouts carry the signal (beyond the paper), the detector of bands out of reach at the run's learning
rate and tracking-error statistics. Everything takes plain numpy arrays, so it drops into any trainer: compute
advantages and the batch entropy, then call `entrocraft_filter`.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolbox.core.errors import UserInputError

SCHEDULE_KINDS = ("constant", "linear", "cosine", "piecewise", "csv")
FILTER_MODES = ("graded", "paper", "release")


@dataclass(frozen=True)
class BandSchedule:
    """h_low(t), h_high(t) for t in [0, total_steps].

    constant: (start) always; linear: start + (end - start) * t/T [R core_algos L400];
    cosine: start + (end - start) * 0.5 (1 - cos(pi t/T)) [R L437]; piecewise / csv: linear interpolation
    between knots (step, low, high), held constant outside them.
    """

    kind: str = "linear"
    start: tuple[float, float] = (0.6, 0.7)
    end: tuple[float, float] = (0.4, 0.5)
    total_steps: int = 100
    knots: tuple[tuple[float, float, float], ...] = field(default=())

    def __post_init__(self):
        if self.kind not in SCHEDULE_KINDS:
            raise UserInputError(f"schedule kind must be one of {', '.join(SCHEDULE_KINDS)}, got {self.kind!r}")
        if self.total_steps <= 0:
            raise UserInputError(f"schedule total_steps must be positive, got {self.total_steps}")
        if self.kind in ("piecewise", "csv") and not self.knots:
            raise UserInputError(f"a {self.kind} schedule needs at least one knot (step, low, high)")
        for low, high in (self.start, self.end, *[k[1:] for k in self.knots]):
            if not (math.isfinite(low) and math.isfinite(high)):
                raise UserInputError("band edges must be finite numbers")

    def progress(self, t: float) -> float:
        """Fraction of the way from start to end at step t."""
        x = min(max(t / self.total_steps, 0.0), 1.0)
        if self.kind == "linear":
            return x
        if self.kind == "cosine":
            return 0.5 * (1.0 - math.cos(math.pi * x))
        return 0.0

    def band(self, t: float) -> tuple[float, float]:
        if self.kind in ("piecewise", "csv"):
            steps, lows, highs = (np.array(c, dtype=float) for c in zip(*self.knots))
            return float(np.interp(t, steps, lows)), float(np.interp(t, steps, highs))
        a = self.progress(t)
        return (self.start[0] + (self.end[0] - self.start[0]) * a, self.start[1] + (self.end[1] - self.start[1]) * a)

    def table(self, steps: int | None = None) -> list[dict]:
        """One row per step 0..steps (default total_steps): step, h_low, h_high."""
        return [{"step": t, "h_low": lo, "h_high": hi}
                for t in range((steps if steps is not None else self.total_steps) + 1)
                for lo, hi in [self.band(t)]]


def parse_knots(text: str) -> tuple[tuple[float, float, float], ...]:
    """'0:0.6:0.7,100:0.4:0.5' -> ((0, 0.6, 0.7), (100, 0.4, 0.5))."""
    try:
        knots = tuple(tuple(float(v) for v in item.split(":")) for item in text.split(",") if item.strip())
    except ValueError:
        raise UserInputError(f"piecewise knots must look like 'step:low:high,...', got {text!r}") from None
    if not knots or any(len(k) != 3 for k in knots):
        raise UserInputError(f"piecewise knots must look like 'step:low:high,...', got {text!r}")
    return _sorted_knots(knots)


def load_knots_csv(path: str | Path) -> tuple[tuple[float, float, float], ...]:
    """A CSV with columns step, h_low, h_high (a header row is required)."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"schedule CSV not found: {path}")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserInputError(f"{path}: not a UTF-8 CSV file ({type(exc).__name__})") from None
    missing = {"step", "h_low", "h_high"} - set(rows[0] if rows else {})
    if missing:
        raise UserInputError(f"{path}: schedule CSV needs columns step, h_low, h_high (missing {sorted(missing)})")
    try:
        knots = tuple((float(r["step"]), float(r["h_low"]), float(r["h_high"])) for r in rows)
    except ValueError as exc:
        raise UserInputError(f"{path}: not a number in the schedule ({exc})") from None
    return _sorted_knots(knots)


def _sorted_knots(knots):
    knots = tuple(sorted(knots))
    if len({k[0] for k in knots}) != len(knots):
        raise UserInputError("schedule knots must have distinct steps")
    return knots


def band_warning(low: float, high: float) -> str | None:
    """A warning for a band that can never be 'inside' (e.g. the release config's lower [1, 1], upper [0, 0])."""
    if low > high:
        return (f"band low {low:g} > high {high:g}: entropy is always above the upper edge or below the lower one, "
                "so the controller never runs plain RL (the release config default [1,1]/[0,0] is always RAFT++)")
    return None


def band_reach_warnings(bands: list[tuple[float, float]], max_entropy: float) -> list[str]:
    """Bands no policy can be inside: an upper edge below 0 nats, a lower edge above the largest token entropy
    log V, or a lower edge above the upper one; one warning per kind, at the first step it happens."""
    kinds = {
        "upper edge below 0 nats (entropy is never negative)": lambda lo, hi: hi < 0,
        f"lower edge above log V = {max_entropy:.4g} nats, the largest token entropy": lambda lo, hi: lo > max_entropy,
        "lower edge above the upper edge": lambda lo, hi: lo > hi,
    }
    warnings = []
    for what, bad in kinds.items():
        step = next((t for t, (lo, hi) in enumerate(bands) if bad(lo, hi)), None)
        if step is not None:
            lo, hi = bands[step]
            warnings.append(f"unreachable band from step {step} ([{lo:.4g}, {hi:.4g}]): {what}")
    return warnings


def stall_warnings(entropy, low, high, modes, window: int, lr: float) -> list[str]:
    """A band out of reach at this learning rate, detected from the run itself: on `window` consecutive steps the
    entropy stayed on one side of the band with the controller saturated in that mode (m = +1 or -1 throughout)
    and its distance to the band did not shrink (least-squares slope >= 0). Overlapping windows merge into one
    step range per warning."""
    h, lo, hi, m = (np.asarray(v, dtype=np.float64) for v in (entropy, low, high, modes))
    dist = np.maximum(h - hi, 0.0) + np.maximum(lo - h, 0.0)
    x = np.arange(window) - (window - 1) / 2
    ranges: list[list[int]] = []   # [first step, last step, mode]
    for a in range(h.size - window + 1):
        mode = m[a]
        stuck = mode != 0 and (m[a:a + window] == mode).all() and (dist[a:a + window] > 0).all()
        if stuck and x @ dist[a:a + window] / (x @ x) > -1e-9:   # slope >= 0 up to rounding
            if ranges and ranges[-1][2] == mode and ranges[-1][1] >= a - 1:
                ranges[-1][1] = a + window - 1
            else:
                ranges.append([a, a + window - 1, int(mode)])
    return [f"band not reachable at lr {lr:g}: steps {a}-{b} the entropy stayed {'above' if mode > 0 else 'below'} "
            f"the band ([{lo[a]:.4g}, {hi[a]:.4g}] at step {a}, [{lo[b]:.4g}, {hi[b]:.4g}] at step {b}) with the "
            f"controller saturated at m = {mode:+d}, and its distance to the band did not shrink (mean "
            f"{dist[a:b + 1].mean():.3g} nats); try a larger lr or a wider band"
            for a, b, mode in ranges]


def controller_mode(entropy: float, low: float, high: float) -> int:
    """m = 1[H > h_high] - 1[H < h_low] (Alg. 1, step 2)."""
    return int(entropy > high) - int(entropy < low)


def graded_mode(entropy: float, low: float, high: float, u: float) -> int:
    """Beyond the paper: a proportional controller in expectation. Out of the band, m of Alg. 1; inside, the mode
    that pushes toward the band's centre with probability |e|, e = (H - centre) / half-width, else 0 (plain RL).
    `u` is a uniform draw in [0, 1)."""
    half = (high - low) / 2
    if half <= 0:
        return controller_mode(entropy, low, high)
    e = (entropy - (low + high) / 2) / half
    return int(np.sign(e)) if u < min(abs(e), 1.0) else 0


def signal_scale(n_signal: int, n_floor: float) -> float:
    """Beyond the paper: the graded rule's step size, min(1, n_signal / n_floor). Eq. 5's 1/|S| over the few
    rollouts that carry a switched estimator's signal (2 correct ones at 1% accuracy) makes a full-size step from
    them, which can carry the entropy across the whole band; below n_floor rollouts the step shrinks in proportion
    to the evidence."""
    return min(1.0, n_signal / n_floor) if n_floor > 0 else 1.0


def accept_mask(advantages, mode: int) -> np.ndarray:
    """Alg. 1 step 3: keep rollout i iff m * A_i >= 0 (zero-advantage rollouts are always kept)."""
    a = np.asarray(advantages, dtype=np.float64)
    return mode * a >= 0


@dataclass(frozen=True)
class FilterResult:
    mode: int
    accept: np.ndarray      # bool [N]
    kept: int
    kept_per_group: np.ndarray | None  # int [n_groups] when group ids are given


def entrocraft_filter(advantages, batch_entropy: float, band: tuple[float, float], group_ids=None) -> FilterResult:
    """The paper's filter over any estimator's sequence advantages: mode from the batch entropy, then m*A >= 0.

    Train on the accepted rollouts only, normalised by their number (Eq. 5).
    """
    mode = controller_mode(batch_entropy, *band)
    accept = accept_mask(advantages, mode)
    per_group = None
    if group_ids is not None:
        g = np.asarray(group_ids, dtype=np.int64)
        per_group = np.bincount(g, weights=accept.astype(np.float64)).astype(np.int64)
    return FilterResult(mode, accept, int(accept.sum()), per_group)


def release_advantages(rewards, grpo_advantages, mode: int) -> np.ndarray:
    """The authors' released `grpo_range` estimator [R core_algos L342-379]: out of band it switches estimators.

    m = +1 -> RAFT++ (raw reward, negatives set to 0); m = -1 -> NSR (raw reward, positives set to 0);
    m = 0 -> the GRPO advantages. Rejected rollouts keep a zero advantage instead of leaving the batch.
    """
    r = np.asarray(rewards, dtype=np.float64)
    if mode > 0:
        return np.where(r > 0, r, 0.0)
    if mode < 0:
        return np.where(r < 0, r, 0.0)
    return np.asarray(grpo_advantages, dtype=np.float64)


def batch_entropy(token_entropy, mask, seq_ids=None, aggregation: str = "token-mean") -> float:
    """Batch entropy: the mean over all response tokens ('token-mean', the released code's default) or the mean
    over sequences of each sequence's token mean ('seq-mean', the paper's definition in §2.2)."""
    h = np.asarray(token_entropy, dtype=np.float64)
    w = np.asarray(mask, dtype=np.float64)
    if aggregation == "token-mean":
        return float((h * w).sum() / max(w.sum(), 1.0))
    if aggregation == "seq-mean":
        if seq_ids is None:  # [N, L] layout: sequences are rows
            per_seq = (h * w).sum(-1) / np.maximum(w.sum(-1), 1.0)
            return float(per_seq[w.sum(-1) > 0].mean()) if (w.sum(-1) > 0).any() else 0.0
        s = np.asarray(seq_ids, dtype=np.int64)
        tot, cnt = np.bincount(s, weights=h * w), np.bincount(s, weights=w)
        return float((tot[cnt > 0] / cnt[cnt > 0]).mean()) if (cnt > 0).any() else 0.0
    raise UserInputError(f"entropy aggregation must be token-mean or seq-mean, got {aggregation!r}")


def tracking_error(entropy, low, high, skip: int = 0, tolerance: float = 0.05) -> dict:
    """How well a run tracked its band after `skip` transient steps: share of steps in the band, share within
    `tolerance` nats of it, RMSE of the distance to the band (0 inside), worst overshoot above / undershoot below."""
    h, lo, hi = (np.asarray(v, dtype=np.float64)[skip:] for v in (entropy, low, high))
    if h.size == 0:
        return {"in_band": float("nan"), "near_band": float("nan"), "rmse_to_band": float("nan"),
                "max_above": float("nan"), "max_below": float("nan"), "steps": 0}
    above, below = np.maximum(h - hi, 0.0), np.maximum(lo - h, 0.0)
    dist = above + below
    return {"in_band": float((dist == 0).mean()), "near_band": float((dist <= tolerance).mean()),
            "rmse_to_band": float(np.sqrt((dist ** 2).mean())),
            "max_above": float(above.max()), "max_below": float(below.max()), "steps": int(h.size)}


def theorem_condition(token_entropy, token_logp, seq_ids, n_seq: int) -> np.ndarray:
    """Theorem 2's condition per rollout, from the fused kernel's per-token (H, log p_y) alone:
    log pi(y|x) > sum_t log b_t with b_t = prod_{i!=y_t} p_i^{w_i}, w_i = p_i / (1 - p_y) (dp along e_y - p), i.e.
    log b_t = (-H_t - p_y log p_y) / (1 - p_y). Where it holds, A > 0 lowers entropy and A < 0 raises it."""
    h = np.asarray(token_entropy, dtype=np.float64)
    lp = np.asarray(token_logp, dtype=np.float64)
    p = np.exp(lp)
    log_b = (-h - p * lp) / np.maximum(1.0 - p, 1e-6)
    s = np.asarray(seq_ids, dtype=np.int64)
    return np.bincount(s, weights=lp, minlength=n_seq) > np.bincount(s, weights=log_b, minlength=n_seq)
