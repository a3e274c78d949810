"""Hypothesis fuzzing of every toolbox._core binding as a hostile caller would: wrong dtypes, strides and ranks,
empty and mis-shaped arrays, NaN / +-inf, out-of-range indices and parameters. Each drawn case is either nonsense
(it must raise a clean ValueError) or valid (the result must match the numpy reference). The row-entropy bindings
belong to tests/test_fused_entropy.py. `CASES` maps each binding to a strategy of `Case`s."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolbox.core import native, rng

pytestmark = pytest.mark.native
core = native.module()
BAD_FLOATS = [np.nan, np.inf, -np.inf]


@dataclass
class Case:
    name: str
    fn: Callable[[], Any]
    check: Callable[[Any], None] | None = None  # None: nonsense, must raise ValueError

    def run(self) -> None:
        if self.check is None:
            with pytest.raises(ValueError):
                self.fn()
        else:
            self.check(self.fn())


def _close(want, rtol=1e-9, atol=1e-12):
    def check(got):
        got = got if isinstance(got, tuple) else (got,)
        for g, w in zip(got, want if isinstance(want, tuple) else (want,)):
            np.testing.assert_allclose(np.asarray(g, dtype=np.float64), np.asarray(w, dtype=np.float64),
                                       rtol=rtol, atol=atol)
    return check


def _strided(a: np.ndarray) -> np.ndarray:
    """The same values as a non-contiguous view."""
    big = np.repeat(a[..., None], 2, axis=-1) if a.ndim else a
    return big[..., 0] if a.ndim else a


def _readonly(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a


# The generic array mutations: each makes the array nonsense for a binding that wants dtype `dtype`, rank a.ndim.
def _array_mutations(a: np.ndarray):
    other = np.float32 if a.dtype != np.float32 else np.float64
    out = [("dtype", a.astype(other)), ("rank", a[None]), ("list", a.tolist())]
    if a.size > 1:  # numpy calls any view of one element contiguous
        out.append(("strided", _strided(a)))
    return out


# --- core ----------------------------------------------------------------------------------------------------

@st.composite
def philox_cases(draw):
    seed, stream = draw(st.integers(0, 2**64 - 1)), draw(st.integers(0, 2**32 - 1))
    a0, b = draw(st.integers(0, 2**63)), draw(st.integers(0, 2**64 - 1))
    n = draw(st.integers(0, 13))
    kind = draw(st.sampled_from(["valid", "dtype", "rank", "strided", "readonly", "block"]))
    if kind == "block":
        words = [draw(st.integers(0, 2**32 - 1)) for _ in range(6)]
        want = rng.philox4x32_10(np.array(words[:4]), np.array(words[4:]))
        return Case(kind, lambda: core.philox4x32_10(*words), lambda got: np.testing.assert_array_equal(got, want))
    out = np.zeros(n)
    if kind == "valid":
        return Case(kind, lambda: (core.philox_uniform(seed, stream, a0, b, out), out)[1],
                    _close(rng.philox_uniform(seed, stream, n, a0, b), 0, 0))
    bad = {"dtype": out.astype(np.float32), "rank": out[None], "strided": _strided(np.zeros(n + 1)),
           "readonly": _readonly(out)}[kind]
    if kind == "strided" and n + 1 < 2:
        bad = np.zeros((2, 2))[:, 0]
    return Case(kind, lambda: core.philox_uniform(seed, stream, a0, b, bad))


# --- diffusion -----------------------------------------------------------------------------------------------

def _mixture(gen, k, d, point_mass=False):
    means = gen.normal(size=(k, d))
    weights = gen.random(k) + 0.1
    var = np.zeros(k) if point_mass else gen.random(k) + 0.2
    return means, np.log(weights / weights.sum()), var


@st.composite
def langevin_cases(draw):
    gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k, d, n = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(0, 4))
    direction = draw(st.sampled_from([0, 1, 2]))
    scheme = draw(st.sampled_from([0, 2] if direction else [0, 1, 2]))
    steps = draw(st.integers(0, 6))
    h = draw(st.floats(1e-3, 0.1))
    t_start = h * steps + draw(st.floats(0.01, 1.0)) if direction else draw(st.floats(0.01, 1.0))
    means, logw, var = _mixture(gen, k, d)
    x = gen.normal(size=(n, d))
    args = dict(direction=direction, scheme=scheme, t_start=t_start, h=h, steps=steps, seed=3, stream=1)
    kind = draw(st.sampled_from(["valid", "x", "means", "logw", "var", "nan_param", "past_zero", "negative_t",
                                 "bad_enum", "negative", "huge_steps", "unnormalised", "point_mass_at_zero",
                                 "snapshots"]))
    arrays = dict(means=means, log_weights=logw, variances=var, x=x)
    if kind == "valid":
        return Case(kind, lambda: _langevin_native(arrays, args), _langevin_check(arrays, args))
    bad = dict(arrays)
    if kind in ("x", "means", "logw", "var"):
        key = {"x": "x", "means": "means", "logw": "log_weights", "var": "variances"}[kind]
        choices = _array_mutations(arrays[key])
        if arrays[key].size:
            poisoned = arrays[key].copy()
            poisoned.flat[0] = draw(st.sampled_from(BAD_FLOATS if kind != "logw" else [np.nan, np.inf]))
            choices.append(("nonfinite", poisoned))
        if kind == "var":
            choices.append(("negative", -var))
        if kind == "x":
            choices.append(("readonly", _readonly(x)))
            choices.append(("wrong_d", np.zeros((n, d + 1))))
        label, bad[key] = draw(st.sampled_from(choices))
        kind = f"{kind}:{label}"
    elif kind == "nan_param":
        args = {**args, draw(st.sampled_from(["t_start", "h"])): draw(st.sampled_from(BAD_FLOATS))}
    elif kind == "past_zero":  # reverse / flow runs ending before t = 0
        args = {**args, "direction": draw(st.sampled_from([1, 2])), "scheme": 0, "steps": max(steps, 1),
                "t_start": h * max(steps, 1) * draw(st.floats(0.0, 0.9))}
    elif kind == "negative_t":
        args = {**args, "t_start": -draw(st.floats(1e-3, 10.0))}
    elif kind == "bad_enum":
        args = {**args, draw(st.sampled_from(["direction", "scheme"])): draw(st.sampled_from([-1, 3, 99]))}
    elif kind == "negative":
        args = {**args, draw(st.sampled_from(["h", "steps"])): -1}
    elif kind == "huge_steps":  # the Philox index step * d would overflow (and the run would never end)
        args = {**args, "direction": 0, "scheme": 0, "steps": 2**62 + 1, "h": 1e-300}
        bad["x"] = gen.normal(size=(1, d))
    elif kind == "unnormalised":
        bad["log_weights"] = logw + draw(st.sampled_from([1.0, -2.0]))
    elif kind == "point_mass_at_zero":  # a point mass has no density at t = 0
        bad["variances"] = np.zeros(k)
        args = {**args, "direction": 0, "scheme": 0, "t_start": 0.0}
    elif kind == "snapshots":
        stride = draw(st.integers(1, 3))
        snaps = draw(st.sampled_from([np.zeros((steps // stride, n, d)), np.zeros((steps // stride + 1, n, d + 1)),
                                      np.zeros((steps // stride + 1, max(n - 1, 0), d)),
                                      _readonly(np.zeros((steps // stride + 1, n, d)))]))
        if n == 0 and snaps.shape[1] == 0 and snaps.shape[2] == d and snaps.flags.writeable:
            snaps = np.zeros((steps // stride, n, d))
        return Case(kind, lambda: core.langevin(means, logw, var, x.copy(), *args.values(), 0, stride, snaps))
    return Case(kind, lambda: _langevin_native(bad, args))


def _langevin_native(arrays, args):
    x = arrays["x"]
    x = x.copy() if isinstance(x, np.ndarray) and x.flags.writeable and x.flags.c_contiguous else x
    out = core.langevin(arrays["means"], arrays["log_weights"], arrays["variances"], x, *args.values())
    return (x, *out)


def _langevin_check(arrays, args):
    from toolbox.diffusion.densities import GaussianMixture
    from toolbox.diffusion.sampler import DIRECTIONS, SCHEMES, langevin_reference

    def check(got):
        if args["steps"] == 0 or len(arrays["x"]) == 0:
            np.testing.assert_array_equal(got[0], arrays["x"])
            return
        dens = GaussianMixture(arrays["means"], arrays["variances"], np.exp(arrays["log_weights"]))
        direction = {v: k for k, v in DIRECTIONS.items()}[args["direction"]]
        scheme = {v: k for k, v in SCHEMES.items()}[args["scheme"]]
        span = args["h"] * args["steps"]
        t_lo, t_hi = (args["t_start"], args["t_start"] + span) if direction == "forward" else \
            (args["t_start"] - span, args["t_start"])
        want = langevin_reference(dens, arrays["x"], direction, scheme, t_lo, t_hi, args["steps"], args["seed"],
                                  args["stream"])[:5]
        _close(tuple(want), rtol=1e-7, atol=1e-9)(tuple(got))
    return check


@st.composite
def external_step_cases(draw):
    gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, d = draw(st.integers(0, 4)), draw(st.integers(1, 5))
    x, f, dx, heat = gen.normal(size=(n, d)), gen.normal(size=(n, d)), gen.normal(size=(n, d)), gen.normal(size=n)
    direction, h, step = draw(st.sampled_from([0, 1, 2])), draw(st.floats(1e-3, 0.5)), draw(st.integers(0, 50))
    move = draw(st.booleans())
    kind = draw(st.sampled_from(["valid", "x", "f", "dx", "heat", "step", "h", "direction", "d0", "huge_step"]))
    params = [direction, h, step, move, 7, 2]
    if kind == "valid":
        def call():
            xs, dxs, hs = x.copy(), dx.copy(), heat.copy()
            core.langevin_external_step(xs, f, dxs, hs, *params)
            return xs, dxs, hs
        return Case(kind, call, _external_check(x, f, dx, heat, direction, h, step, move))
    arrays = [x.copy(), f, dx.copy(), heat.copy()]
    if kind in ("x", "f", "dx", "heat"):
        i = ["x", "f", "dx", "heat"].index(kind)
        choices = _array_mutations(arrays[i])
        if kind != "f":
            choices.append(("readonly", _readonly(arrays[i])))
        if arrays[i].size and kind in ("x", "f"):
            poisoned = arrays[i].copy()
            poisoned.flat[0] = draw(st.sampled_from(BAD_FLOATS))
            choices.append(("nonfinite", poisoned))
        arrays[i] = draw(st.sampled_from(choices))[1]
    elif kind == "step":
        params[2] = draw(st.sampled_from([-1, -(2**40)]))
    elif kind == "huge_step":
        params[2] = 2**62
    elif kind == "h":
        params[1] = draw(st.sampled_from([0.0, -0.1, *BAD_FLOATS]))
    elif kind == "direction":
        params[0] = draw(st.sampled_from([-1, 3]))
    elif kind == "d0":
        arrays = [np.zeros((n, 0)), np.zeros((n, 0)), np.zeros((n, 0)), np.zeros(n)]
    return Case(kind, lambda: core.langevin_external_step(*arrays, *params))


def _external_check(x, f, dx, heat, direction, h, step, move):
    from toolbox.diffusion.densities import philox_normals

    def check(got):
        xs, dxs, hs = got
        work = (f * dx).sum(1) if step > 0 else np.zeros(len(x))
        want_x, want_dx = x, dx
        if move:
            noise = 0.0 if direction == 2 else np.sqrt(2 * h)
            z = philox_normals(7, 2, np.arange(len(x)), x.shape[1], step) if len(x) else np.zeros_like(x)
            want_dx = f * h + noise * z
            want_x = x + want_dx
            work = work + (f * want_dx).sum(1)
        _close((want_x, want_dx, heat + 0.5 * work), rtol=1e-12, atol=1e-12)((xs, dxs, hs))
    return check


# --- ISES ----------------------------------------------------------------------------------------------------

def _i32(a):
    return np.asarray(a, dtype=np.int32)


@st.composite
def ises_table_cases(draw):
    gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    wordle = draw(st.booleans())
    pegs = draw(st.integers(1, 5 if wordle else 4))
    colors = 26 if wordle else draw(st.integers(1, 8))
    g = gen.integers(0, colors, (draw(st.integers(0, 6)), pegs)).astype(np.uint8)
    s = gen.integers(0, colors, (draw(st.integers(0, 6)), pegs)).astype(np.uint8)
    from toolbox.ises import engine

    call = (lambda g, s: core.ises_wordle_table(g, s)) if wordle else \
        (lambda g, s: core.ises_mastermind_table(g, s, colors))
    kind = draw(st.sampled_from(["valid", "symbol", "pegs", "dtype", "strided", "colors"]))
    if kind == "valid":
        want = engine.wordle_table_reference(g, s) if wordle else engine.mastermind_table_reference(g, s, colors)
        return Case(kind, lambda: call(g, s), lambda got: np.testing.assert_array_equal(got, want))
    if kind == "symbol":
        g = np.full((1, pegs), colors if colors < 256 else 255, np.uint8)
    elif kind == "pegs":
        s = np.zeros((2, pegs + 1), np.uint8) if pegs < 5 or not wordle else np.zeros((2, 6), np.uint8)
        g = s if wordle and pegs == 5 else g
    elif kind == "dtype":
        g = g.astype(np.int64)
    elif kind == "strided":
        g = np.zeros((2, 2 * pegs), np.uint8)[:, ::2]
    elif kind == "colors":
        if wordle:
            g = np.zeros((1, 6), np.uint8)
            s = g
        else:
            return Case(kind, lambda: core.ises_mastermind_table(g, s, draw(st.sampled_from([0, -1, 65]))))
    return Case(kind, lambda: call(g, s))


def _random_table(gen, n_actions, n_secrets, n_outcomes):
    return gen.integers(0, n_outcomes, (n_actions, n_secrets)).astype(np.uint8)


@st.composite
def partition_cases(draw):
    from toolbox.ises import engine

    gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    na, ns, no = draw(st.integers(1, 6)), draw(st.integers(1, 8)), draw(st.integers(1, 6))
    table = _random_table(gen, na, ns, no)
    cand = _i32(gen.integers(0, ns, draw(st.integers(0, 6))))
    actions = _i32(gen.integers(0, na, draw(st.integers(0, 5))))
    w = gen.random(ns) + 0.05 if draw(st.booleans()) else None
    kind = draw(st.sampled_from(["valid", "code_too_big", "n_outcomes", "cand_range", "action_range", "weights",
                                 "weights_shape", "zero_mass", "dtype", "filter_valid", "filter_outcome",
                                 "filter_action", "sample_valid", "sample_bad"]))
    if kind == "valid":
        want = engine.partition_scores_reference(table, cand, actions, no, w)
        return Case(kind, lambda: core.ises_partition_scores(table, cand, actions, no, w), _close(want, 1e-9, 1e-9))
    if kind == "filter_valid":
        a, o = int(gen.integers(0, na)), int(gen.integers(0, no))
        want = engine.filter_set_reference(table, cand, a, o)
        return Case(kind, lambda: core.ises_filter(table, cand, a, o),
                    lambda got: np.testing.assert_array_equal(got, want))
    if kind == "sample_valid":
        cand = cand if len(cand) else _i32([0])
        m = draw(st.integers(0, 9))
        want = engine.sample_states_reference(cand, m, 5, 1, 2)
        return Case(kind, lambda: core.ises_sample_states(cand, m, 5, 1, 2),
                    lambda got: np.testing.assert_array_equal(got, want))
    if kind == "sample_bad":
        bad = draw(st.sampled_from([("empty", _i32([]), 3), ("negative_m", _i32([0, 1]), -1),
                                    ("negative_index", _i32([-1, 2]), 3), ("dtype", np.arange(3), 3)]))
        return Case(kind, lambda: core.ises_sample_states(bad[1], bad[2], 0, 0, 0))
    if kind == "filter_outcome":
        return Case(kind, lambda: core.ises_filter(table, cand, 0, draw(st.sampled_from([-1, 256, 10**6]))))
    if kind == "filter_action":
        return Case(kind, lambda: core.ises_filter(table, cand, draw(st.sampled_from([-1, na])), 0))
    args = [table, cand, actions, no, w]
    if kind == "code_too_big":  # a code >= n_outcomes inside the scored region: 'gain 2 bits, 0 classes'
        cand = cand if len(cand) else _i32([0])
        actions = actions if len(actions) else _i32([0])
        bad = table.copy()
        bad[actions[0], cand[0]] = no + draw(st.integers(0, 255 - no))
        args = [bad, cand, actions, no, w]
    elif kind == "n_outcomes":
        args[3] = draw(st.sampled_from([0, -3, 257]))
    elif kind == "cand_range":
        args[1] = _i32([ns])
    elif kind == "action_range":
        args[2] = _i32([-1])
    elif kind == "weights":
        ww = gen.random(ns) + 0.05
        ww[0] = draw(st.sampled_from([-1.0, *BAD_FLOATS]))
        args[4] = ww
    elif kind == "weights_shape":
        args[4] = np.ones(ns + 1)
    elif kind == "zero_mass":
        args[1], args[4] = _i32([0]), np.zeros(ns)
    elif kind == "dtype":
        args[draw(st.sampled_from([0, 1, 2]))] = draw(st.sampled_from([np.zeros((2, 2)), np.zeros(2, np.int64)]))
    return Case(kind, lambda: core.ises_partition_scores(*args))


def _optimal_total(table, win, sa, cand, first=None):
    """Brute-force minimum total guesses (T({s}) = 1) for tiny consistent tables."""
    memo = {}

    def value(c):
        if len(c) == 1:
            return 1
        if c not in memo:
            memo[c] = min(v for a in range(len(table)) if (v := after(c, a)) is not None)
        return memo[c]

    def after(c, a):
        parts = {}
        for s in c:
            if table[a, s] != win:
                parts.setdefault(int(table[a, s]), []).append(s)
        if any(len(p) == len(c) for p in parts.values()):
            return None
        return len(c) + sum(value(tuple(p)) for p in parts.values())

    return value(tuple(cand)) if first is None else after(tuple(cand), first)


def _consistent_table(gen, n, extra_actions, n_outcomes):
    """A guess game: action s (s < n) wins against secret s only (outcome n_outcomes - 1)."""
    win = n_outcomes - 1
    table = gen.integers(0, win, (n + extra_actions, n)).astype(np.uint8)
    table[np.arange(n), np.arange(n)] = win
    return table, win


@st.composite
def solver_cases(draw):
    gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, extra, no = draw(st.integers(1, 5)), draw(st.integers(0, 2)), draw(st.integers(2, 4))
    table, win = _consistent_table(gen, n, extra, no)
    sa = _i32(np.arange(n))
    cand = _i32(np.sort(gen.choice(n, draw(st.integers(1, n)), replace=False)))
    kind = draw(st.sampled_from(["valid", "first", "best", "inconsistent", "double_win", "win", "sa_range",
                                 "code_too_big", "cand_unsorted", "cand_empty", "first_range", "history"]))
    make = lambda t=table, w=win, s=sa: core.IsesOptimalSolver(t, no, w, s)  # noqa: E731
    if kind == "valid":
        return Case(kind, lambda: make().solve(cand), lambda got: _assert_eq(got, _optimal_total(table, win, sa, cand)))
    if kind == "first":
        a = int(gen.integers(0, n + extra))
        want = _optimal_total(table, win, sa, cand, a)
        if want is None:  # a useless first guess: its value is |cand| + T(cand)
            want = len(cand) + _optimal_total(table, win, sa, cand)
        return Case(kind, lambda: make().solve(cand, a), lambda got: _assert_eq(got, want))
    if kind == "best":
        def check(a):
            v = _optimal_total(table, win, sa, cand, int(a)) if len(cand) > 1 else 1
            _assert_eq(v, _optimal_total(table, win, sa, cand))
        return Case(kind, lambda: make().best_action(cand), check)
    if kind == "inconsistent":  # some secret's own action does not win: no strategy identifies it
        bad = table.copy()
        bad[0, 0] = (win + 1) % no
        return Case(kind, lambda: make(bad).solve(cand))
    if kind == "double_win":  # action 0 wins against two secrets
        bad = np.hstack([table, table[:, :1]]) if n < 2 else table.copy()
        bad[0, 1] = win
        if n < 2:
            return Case(kind, lambda: core.IsesOptimalSolver(bad, no, win, _i32([0, 1 % len(bad)])))
        return Case(kind, lambda: make(bad).solve(cand))
    if kind == "win":
        return Case(kind, lambda: make(w=draw(st.sampled_from([-1, no]))))
    if kind == "sa_range":
        return Case(kind, lambda: make(s=_i32(np.full(n, n + extra))))
    if kind == "code_too_big":
        bad = table.copy()
        bad[-1, -1] = no
        return Case(kind, lambda: make(bad))
    if kind == "cand_unsorted":
        return Case(kind, lambda: make().solve(_i32(np.concatenate([cand, cand[:1]]))))
    if kind == "cand_empty":
        return Case(kind, lambda: make().solve(_i32([])))
    if kind == "first_range":
        return Case(kind, lambda: make().solve(cand, draw(st.sampled_from([-2, n + extra]))))
    return Case(kind, lambda: make().solve(cand, -1, _i32([n + extra])))


def _assert_eq(got, want):
    assert got == want, (got, want)


# --- gPoE ----------------------------------------------------------------------------------------------------

@st.composite
def gpoe_cases(draw):
    from toolbox.gpoe import fusion

    gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    m, n = draw(st.integers(0, 4)), draw(st.integers(0, 6))
    dt = draw(st.sampled_from([np.float32, np.float64]))
    mean = gen.normal(size=(m, n)).astype(dt)
    var = (gen.random((m, n)) + 0.05).astype(dt)
    if m and n and draw(st.booleans()):  # experts may be NaN / inf / 0 by design: left out at that point
        mean[0, 0], var[-1, -1] = draw(st.sampled_from(BAD_FLOATS)), draw(st.sampled_from([0.0, -1.0, *BAD_FLOATS]))
    wp = np.array([2.0], dt)
    pv = np.array([1.5], dt)
    weight, combine = draw(st.integers(0, 1)), draw(st.integers(0, 2))
    kind = draw(st.sampled_from(["valid", "mean", "var", "prior_var", "prior_mean", "weight_prior", "eps",
                                 "enum", "broadcast"]))
    args = [mean, var, wp, pv, None, weight, combine, 1e-9, True]
    if kind == "valid":
        rule = {v: k for k, v in fusion.RULES.items()}[(("one", "entropy")[weight],
                                                        ("product", "normalised", "corrected")[combine])]
        want = fusion.fuse_reference(mean.astype(np.float64), var.astype(np.float64), 1.5, rule, 0.0, 2.0)
        tol = 1e-4 if dt == np.float32 else 1e-9
        return Case(kind, lambda: core.gpoe_fuse(*args)[:3], _close((want.mean, want.var, want.fallback), tol, tol))
    if kind in ("mean", "var"):
        i = 0 if kind == "mean" else 1
        args[i] = draw(st.sampled_from([a for _, a in _array_mutations(args[i]) if not isinstance(a, list)]
                                       + [np.zeros((m + 1, n), dt)]))
        if args[i].shape == args[1 - i].shape and args[i].dtype == args[1 - i].dtype and \
                args[i].flags.c_contiguous:
            args[i] = np.zeros((m + 1, n + 1), dt)
    elif kind == "prior_var":
        args[3] = np.array([draw(st.sampled_from([0.0, -1.0, *BAD_FLOATS]))], dt)
    elif kind == "prior_mean":
        args[4] = np.array([draw(st.sampled_from(BAD_FLOATS))], dt)
    elif kind == "weight_prior":
        args[2] = np.array([draw(st.sampled_from([-1.0, np.nan]))], dt)
    elif kind == "eps":
        args[7] = draw(st.sampled_from([-1.0, np.nan]))
    elif kind == "enum":
        args[draw(st.sampled_from([5, 6]))] = draw(st.sampled_from([-1, 3]))
    elif kind == "broadcast":
        args[2] = np.ones((m + 2, 1), dt)
    return Case(kind, lambda: core.gpoe_fuse(*args))


# --- NoisyNN -------------------------------------------------------------------------------------------------

@st.composite
def noisynn_cases(draw):
    import torch

    from toolbox.noisynn import kernels

    gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k, m = draw(st.integers(1, 5)), draw(st.integers(0, 9))
    x = gen.normal(size=(k, m)).astype(np.float32)
    keys = gen.integers(-5, 1000, k).astype(np.int64)
    xt, kt = torch.from_numpy(x), torch.from_numpy(keys)
    op = draw(st.sampled_from(["optimal", "circulant", "gaussian", "impulse"]))
    kind = draw(st.sampled_from(["valid", "x", "empty", "keys", "param"]))
    alpha, shift = draw(st.floats(-2, 2)), draw(st.sampled_from([1, -1, 7, 2**62, -(2**63)]))
    p = draw(st.floats(0, 1))
    calls = {
        "optimal": (lambda x=x: core.noisynn_mix_optimal(x), lambda: kernels.mix_optimal_reference(xt)),
        "circulant": (lambda x=x: core.noisynn_mix_circulant(x, alpha, shift),
                      lambda: kernels.mix_circulant_reference(xt, alpha, shift % k)),
        "gaussian": (lambda x=x, keys=keys: core.noisynn_gaussian(x, keys, 4, 1, 0.5, 2.0),
                     lambda: kernels.gaussian_reference(xt, kt, 4, 1, 0.5, 2.0)),
        "impulse": (lambda x=x, keys=keys: core.noisynn_impulse(x, keys, 4, 1, p, -1.0, 1.0),
                    lambda: kernels.impulse_reference(xt, kt, 4, 1, p, -1.0, 1.0)),
    }
    fn, ref = calls[op]
    if kind == "valid":
        want = ref()
        want = tuple(w.numpy() for w in want) if isinstance(want, tuple) else want.numpy()
        return Case(f"{op}", fn, _close(want, 1e-5, 1e-5))
    if kind == "x":
        return Case(kind, lambda: fn(x=draw(st.sampled_from([a for _, a in _array_mutations(x)]))))
    if kind == "empty":
        return Case(kind, lambda: fn(x=np.zeros((0, m), np.float32)))
    if kind == "keys" and op in ("gaussian", "impulse"):
        return Case(kind, lambda: fn(keys=draw(st.sampled_from([keys[:-1], keys.astype(np.int32)]))))
    bad = draw(st.sampled_from(BAD_FLOATS))
    params = {
        "optimal": lambda: core.noisynn_mix_optimal(np.zeros((k, m), np.float64)),
        "circulant": lambda: core.noisynn_mix_circulant(x, bad, 1),
        "gaussian": lambda: core.noisynn_gaussian(x, keys, 4, 1, *draw(st.sampled_from([(bad, 1.0), (0.0, bad)]))),
        "impulse": lambda: core.noisynn_impulse(x, keys, 4, 1, *draw(st.sampled_from(
            [(bad, 0.0, 1.0), (1.5, 0.0, 1.0), (-0.1, 0.0, 1.0), (0.5, bad, 1.0), (0.5, 0.0, bad)]))),
    }
    return Case(kind, params[op])


# --- choice --------------------------------------------------------------------------------------------------

@st.composite
def choice_cases(draw):
    from toolbox.choice.misspec import batched_effects_reference

    gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t, n, d, kh = draw(st.integers(0, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    features = gen.normal(size=(t, n, d))
    assumed = (gen.random((t, n)) < 0.6).astype(np.uint8)
    truth = (gen.random((t, n)) < 0.6).astype(np.uint8)
    assumed[:, 0] = truth[:, -1] = 1
    star = gen.integers(0, kh, t).astype(np.int64)
    thetas = gen.normal(size=(kh, d))
    prior = gen.random(kh) + 0.1
    prior /= prior.sum()
    beta = draw(st.floats(0.1, 5))
    args = [features, assumed, truth, star, thetas, np.log(prior), beta]
    kind = draw(st.sampled_from(["valid", "features", "star", "empty_set", "log_prior", "beta", "dim", "mask"]))
    if kind == "valid":
        want = batched_effects_reference(features, assumed, truth, star, thetas, prior, beta)
        return Case(kind, lambda: core.choice_effects(*args), _close(want, 1e-7, 1e-9))
    if kind == "features":
        if t:
            bad = features.copy()
            bad.flat[0] = draw(st.sampled_from(BAD_FLOATS))
            args[0] = draw(st.sampled_from([bad, features.astype(np.float32)]))
        else:
            args[0] = features.astype(np.float32)
    elif kind == "star":
        args[3] = np.full(max(t, 1), draw(st.sampled_from([-1, kh])), np.int64)
        if not t:
            args[0], args[1], args[2] = np.zeros((1, n, d)), np.ones((1, n), np.uint8), np.ones((1, n), np.uint8)
    elif kind == "empty_set":
        args[0], args[3] = np.zeros((1, n, d)), np.zeros(1, np.int64)
        args[1], args[2] = draw(st.sampled_from([(np.zeros((1, n), np.uint8), np.ones((1, n), np.uint8)),
                                                  (np.ones((1, n), np.uint8), np.zeros((1, n), np.uint8))]))
    elif kind == "log_prior":
        bad = np.log(prior)
        bad[0] = draw(st.sampled_from([np.nan, np.inf]))
        args[5] = draw(st.sampled_from([bad, np.log(prior) + 1.0, np.full(kh, -np.inf)]))
    elif kind == "beta":
        args[6] = draw(st.sampled_from([0.0, -1.0, *BAD_FLOATS]))
    elif kind == "dim":
        args[0], args[4] = np.zeros((t, n, 17)), np.zeros((kh, 17))
    elif kind == "mask":
        args[1] = assumed.astype(bool).astype(np.int64)
    return Case(kind, lambda: core.choice_effects(*args))


# --- shaping -------------------------------------------------------------------------------------------------

def _mdp(gen, b, s, a):
    R = gen.normal(size=(b, s, a))
    P = gen.random((b, s, a, s)) + 0.01
    return R, P / P.sum(-1, keepdims=True)


@st.composite
def shaping_cases(draw):
    from toolbox.shaping import mdp

    gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    b, s, a, h = draw(st.integers(0, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 5))
    R, P = _mdp(gen, b, s, a)
    prior = gen.random((s, a)) + 0.1
    prior /= prior.sum(-1, keepdims=True)
    lp = np.log(prior)
    temp = draw(st.sampled_from([0.0, 0.3, 2.0]))
    pi = gen.random((b, h, s, a)) + 0.01
    pi[..., 0] = 0.0 if a > 1 and draw(st.booleans()) else pi[..., 0]
    pi /= pi.sum(-1, keepdims=True)
    kind = draw(st.sampled_from(["bi_valid", "pe_valid", "R", "P", "log_prior", "temperature", "horizon",
                                 "policy_negative", "policy_unnormalised", "policy_nan", "shape"]))
    bi = lambda R=R, P=P, lp=lp, h=h, temp=temp: core.shaping_backward_induction(R, P, lp, h, temp)  # noqa: E731
    pe = lambda R=R, P=P, pi=pi, lp=lp, temp=temp: core.shaping_policy_evaluation(R, P, pi, lp, temp)  # noqa: E731
    if kind == "bi_valid":
        want = mdp.backward_induction(R, P, h, temp, prior)
        return Case(kind, bi, _close(want, 1e-9, 1e-9))
    if kind == "pe_valid":
        want = np.stack([mdp.policy_evaluation(R[i], P[i], pi[i], temp, prior) for i in range(b)]) if b else \
            np.zeros((0, h + 1, s))
        return Case(kind, pe, _close(want, 1e-9, 1e-9))
    which = draw(st.sampled_from([bi, pe]))
    if kind == "R":
        bad = R.copy()
        if bad.size:
            bad.flat[0] = draw(st.sampled_from(BAD_FLOATS))
        else:
            bad = R.astype(np.float32)
        return Case(kind, lambda: which(R=bad))
    if kind == "P":
        bad = P.copy() if P.size else np.ones((1, s, a, s))
        i = draw(st.sampled_from(["negative", "unnormalised", "nan"]))
        bad.flat[0] = {"negative": -0.5, "unnormalised": 3.0, "nan": np.nan}[i]
        Rb = R if P.size else np.zeros((1, s, a))
        pib = pi if P.size else np.full((1, h, s, a), 1.0 / a)
        return Case(kind, lambda: (bi if which is bi else pe)(R=Rb, P=bad, **({} if which is bi else {"pi": pib})))
    if kind == "log_prior":
        bad = lp.copy()
        bad[0, 0] = draw(st.sampled_from([np.nan, np.inf]))
        return Case(kind, lambda: which(lp=bad))
    if kind == "temperature":
        return Case(kind, lambda: which(temp=draw(st.sampled_from([-1.0, *BAD_FLOATS]))))
    if kind == "horizon":
        return Case(kind, lambda: bi(h=draw(st.sampled_from([0, -5]))))
    if kind == "shape":
        return Case(kind, lambda: which(P=np.ascontiguousarray(P[..., :0]) if s > 1 else np.zeros((b, s, a, s + 1))))
    if b == 0:
        R, P, pi = np.zeros((1, s, a)), np.full((1, s, a, s), 1.0 / s), np.full((1, h, s, a), 1.0 / a)
    bad = pi.copy()
    if kind == "policy_negative":  # pi with a negative entry that still sums to 1
        bad[0, 0, 0, 0] = -0.5
        bad[0, 0, 0, -1] += 0.5 + (1.0 if a == 1 else 0.0)
        if a == 1:
            bad[0, 0, 0, 0] = -1.0
    elif kind == "policy_unnormalised":
        bad[0, 0, 0] *= 2.0
    else:
        bad[0, 0, 0, 0] = draw(st.sampled_from(BAD_FLOATS))
    return Case(kind, lambda: core.shaping_policy_evaluation(R, P, bad, lp, temp))


# --- entrocraft ----------------------------------------------------------------------------------------------

@st.composite
def epilogue_cases(draw):
    gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    tokens, seqs = draw(st.integers(0, 12)), draw(st.integers(1, 5))
    h = (gen.random(tokens) * 2).astype(np.float32)
    seq = gen.integers(0, seqs, tokens).astype(np.int64)
    adv = gen.normal(size=seqs).astype(np.float32)
    groups = draw(st.integers(1, 3))
    gid = gen.integers(0, groups, seqs).astype(np.int64)
    low = draw(st.floats(0, 1.5))
    high = low + draw(st.floats(0, 1))
    seq_mean = draw(st.booleans())
    kind = draw(st.sampled_from(["valid", "inverted", "nan_band", "inf_band", "entropy_nan", "adv_nan",
                                 "seq_range", "group_range", "groups", "dtype"]))
    args = [h, seq, adv, gid, groups, seq_mean, low, high]
    if kind == "valid":
        return Case(kind, lambda: core.rejection_epilogue(*args), _epilogue_check(*args))
    if kind == "inverted":
        args[6], args[7] = high + 0.5, low
    elif kind == "nan_band":
        args[draw(st.sampled_from([6, 7]))] = np.nan
    elif kind == "inf_band":
        args[6], args[7] = draw(st.sampled_from([(-np.inf, 1.0), (0.0, np.inf), (np.inf, np.inf)]))
    elif kind == "entropy_nan":
        args[0] = np.concatenate([h, np.array([draw(st.sampled_from(BAD_FLOATS))], np.float32)])
        args[1] = np.concatenate([seq, [0]])
    elif kind == "adv_nan":
        args[2] = adv.copy()
        args[2][0] = draw(st.sampled_from(BAD_FLOATS))
    elif kind == "seq_range":
        args[0], args[1] = np.zeros(1, np.float32), np.array([draw(st.sampled_from([-1, seqs]))], np.int64)
    elif kind == "group_range":
        args[3] = np.full(seqs, draw(st.sampled_from([-1, groups])), np.int64)
    elif kind == "groups":
        args[4] = draw(st.sampled_from([0, -1]))
    else:
        args[0] = h.astype(np.float64)
    return Case(kind, lambda: core.rejection_epilogue(*args))


def _epilogue_check(h, seq, adv, gid, groups, seq_mean, low, high):
    def check(got):
        if seq_mean:
            means = [h[seq == s].astype(np.float64).mean() for s in range(len(adv)) if (seq == s).any()]
            ent = float(np.mean(means)) if means else 0.0
        else:
            ent = float(h.astype(np.float64).mean()) if len(h) else 0.0
        assert got[0] == pytest.approx(ent, abs=1e-9)
        lo, hi = float(np.float32(low)), float(np.float32(high))  # the binding takes the band as float32
        mode = int(got[0] > hi) - int(got[0] < lo)
        accept = (np.float32(mode) * adv >= 0).astype(np.uint8)
        assert got[1] == mode
        np.testing.assert_array_equal(got[2], accept)
        np.testing.assert_array_equal(got[3], np.bincount(gid, weights=accept, minlength=groups).astype(np.int64))
    return check


# --- CUDA twins: bad parameters fail before any pointer is used -------------------------------------------------

@st.composite
def cuda_cases(draw):
    bad = draw(st.sampled_from(BAD_FLOATS))
    options = {
        "philox_n": lambda: core.philox_uniform_cuda(0, 0, 0, 0, -1, 0, 0),
        "langevin_h": lambda: core.langevin_cuda(0, 0, 0, 1, 1, 0, 1, 0, 0, 0.5, bad, 3, 0, 0, 0, 0, 1, 0, 0, 0, 0,
                                                 0, 0, 0),
        "langevin_past_zero": lambda: core.langevin_cuda(0, 0, 0, 1, 1, 0, 1, 1, 0, 0.1, 0.1, 3, 0, 0, 0, 0, 1, 0, 0,
                                                         0, 0, 0, 0, 0),
        "langevin_null": lambda: core.langevin_cuda(0, 0, 0, 1, 1, 0, 1, 0, 0, 0.5, 0.1, 3, 0, 0, 0, 0, 1, 0, 0, 0,
                                                    0, 0, 0, 0),
        "external_step": lambda: core.langevin_external_step_cuda(0, 0, 0, 0, 1, 1, 0, 0.1, -1, True, 0, 0, 0, 0),
        "external_d0": lambda: core.langevin_external_step_cuda(1, 1, 1, 1, 1, 0, 0, 0.1, 0, True, 0, 0, 0, 0),
        "shaping_temp": lambda: core.shaping_backward_induction_cuda(1, 1, 1, 1, 1, 1, 1, bad, 1, 1, 0),
        "choice_beta": lambda: core.choice_effects_cuda(1, 1, 1, 1, 1, 1, bad, 1, 1, 1, 1, 1, 1, 0),
        "gpoe_eps": lambda: core.gpoe_fuse_cuda(0, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, np.nan, 1, 1, 0, 0, 0),
        "noisynn_p": lambda: core.noisynn_impulse_cuda(1, 1, 1, 1, 0, 0, bad, 0.0, 1.0, 1, 1, 0),
        "noisynn_alpha": lambda: core.noisynn_mix_circulant_cuda(1, 1, 1, bad, 1, 1, 0),
        "noisynn_scale": lambda: core.noisynn_gaussian_cuda(1, 1, 1, 1, 0, 0, 0.0, bad, 1, 0),
        "epilogue_band": lambda: core.rejection_epilogue_cuda(1, 1, 1, 1, 0, 1, 0, False, 1.0, 0.0, 1, 1, 1, 1, 1, 0),
    }
    name = draw(st.sampled_from(sorted(options)))
    return Case(name, options[name])


@st.composite
def so_ismcts_cases(draw):
    """SO-ISMCTS (a random query game, the Python reference for valid cases) and its SplitMix64 generator."""
    from toolbox.ises import engine
    from toolbox.ises.agents import SOISMCTS, State
    from toolbox.ises.game_api import TableGame

    gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    na, ns, no = draw(st.integers(1, 5)), draw(st.integers(1, 7)), draw(st.integers(1, 4))
    table = _random_table(gen, na, ns, no)
    cand = _i32(np.sort(gen.choice(ns, draw(st.integers(1, ns)), replace=False)))
    prior = gen.random(ns) + 0.05 if draw(st.booleans()) else None
    game = TableGame("fuzz", [f"s{i}" for i in range(ns)], [f"a{i}" for i in range(na)],
                     [str(o) for o in range(no)], table, turn_limit=3, prior=prior)
    args = dict(table=table, cand=cand, win=-1, secret_action=None, twin_class=game.twin_class, prior=prior,
                seed=draw(st.integers(0, 2**63 - 1)), stream=4, counter=draw(st.integers(0, 20)), budget_ms=0.0,
                iterations=draw(st.integers(1, 30)), c=draw(st.floats(0.0, 2.0)), consistent=False, horizon=6)
    kind = draw(st.sampled_from(["valid", "rng_valid", "rng_bound", "table", "cand", "cand_range", "twin_class",
                                 "prior", "budget", "horizon", "c"]))
    if kind == "valid":
        state = State(game, cand, seed=args["seed"], step=args["counter"])
        want = SOISMCTS(iterations=args["iterations"], c=args["c"]).search(state)

        def check(got):
            assert list(got[0]) == want[0] and list(got[1]) == want[1] and tuple(got[3:]) == tuple(want[3:])
            np.testing.assert_allclose(got[2], want[2], rtol=1e-12, atol=0)
        return Case(kind, lambda: core.ises_so_ismcts(**args), check)
    if kind == "rng_valid":
        bounds = np.array(draw(st.lists(st.integers(0, 2**53), max_size=6)), np.int64)
        ref = engine.SplitMix64(args["seed"], 4, args["counter"])
        want = [ref.uniform() if b == 0 else float(ref.below(int(b))) for b in bounds]
        return Case(kind, lambda: core.ises_splitmix64(args["seed"], 4, args["counter"], bounds),
                    lambda got: np.testing.assert_array_equal(got, want))
    if kind == "rng_bound":
        bad = draw(st.sampled_from([np.array([-1], np.int64), np.array([2**53 + 1], np.int64), np.zeros(2)]))
        return Case(kind, lambda: core.ises_splitmix64(0, 0, 0, bad))
    bad = {"table": draw(st.sampled_from([m for _, m in _array_mutations(table)])),
           "cand": draw(st.sampled_from([m for _, m in _array_mutations(cand)] + [_i32([])])),
           "cand_range": _i32([draw(st.sampled_from([-1, ns]))]),
           "twin_class": draw(st.sampled_from([None, game.twin_class[:-1], game.twin_class.astype(np.int32)])),
           "prior": draw(st.sampled_from([np.full(ns, np.nan), -np.ones(ns), np.zeros(ns), np.ones(ns + 1)])),
           "budget": draw(st.sampled_from([(0.0, 0), (-1.0, 5), (np.inf, 5), (0.0, -2)])),
           "horizon": draw(st.sampled_from([0, -3])), "c": draw(st.sampled_from([-0.5, np.nan, np.inf]))}[kind]
    if kind == "budget":
        args["budget_ms"], args["iterations"] = bad
    else:
        args[kind if kind != "cand_range" else "cand"] = bad
    return Case(kind, lambda: core.ises_so_ismcts(**args))


CASES = {
    "philox": philox_cases(), "langevin": langevin_cases(), "langevin_external_step": external_step_cases(),
    "ises_tables": ises_table_cases(), "ises_partition_filter_sample": partition_cases(),
    "ises_solver": solver_cases(), "ises_so_ismcts": so_ismcts_cases(), "gpoe_fuse": gpoe_cases(), "noisynn": noisynn_cases(),
    "choice_effects": choice_cases(), "shaping": shaping_cases(), "rejection_epilogue": epilogue_cases(),
    "cuda_twins": cuda_cases(),
}
EXAMPLES = {"choice_effects": 120}


@pytest.mark.parametrize("binding", sorted(CASES))
def test_fuzz_binding(binding):
    @settings(max_examples=EXAMPLES.get(binding, 250), deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(CASES[binding])
    def run(case):
        case.run()

    run()


def test_every_binding_is_fuzzed():
    """A new export must join CASES (or the row-entropy suite, which owns row_entropy_*)."""
    covered = {"build_info", "cuda_status", "philox4x32_10", "philox_uniform", "philox_uniform_cuda", "langevin",
               "langevin_cuda", "langevin_external_step", "langevin_external_step_cuda", "ises_mastermind_table",
               "ises_wordle_table", "ises_partition_scores", "ises_filter", "ises_sample_states",
               "ises_so_ismcts", "ises_splitmix64", "IsesOptimalSolver", "gpoe_fuse", "gpoe_fuse_cuda", "noisynn_mix_optimal", "noisynn_mix_circulant",
               "noisynn_gaussian", "noisynn_impulse", "noisynn_mix_optimal_cuda", "noisynn_mix_circulant_cuda",
               "noisynn_gaussian_cuda", "noisynn_impulse_cuda", "choice_effects", "choice_effects_cuda",
               "shaping_backward_induction", "shaping_policy_evaluation", "shaping_backward_induction_cuda",
               "rejection_epilogue", "rejection_epilogue_cuda"}
    exported = {n for n in dir(core) if not n.startswith("_") and not n.startswith("row_entropy")}
    assert exported == covered

