"""Regression tests for the kernel boundaries of issue #16 (each nonsense input is a clean ValueError), for the
chunked Langevin kernel (bit-identical to one pass) and for Ctrl-C stopping long native loops."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from toolbox.core import native

pytestmark = pytest.mark.native
core = native.module()

MIX = (np.array([[1.0], [-1.0]]), np.log([0.5, 0.5]), np.array([0.5, 0.5]))


def _langevin(x, direction=0, scheme=0, t_start=0.5, h=0.1, steps=3, means=MIX[0], logw=MIX[1], var=MIX[2]):
    return core.langevin(means, logw, var, x, direction, scheme, t_start, h, steps, 0, 0)


# --- diffusion -----------------------------------------------------------------------------------------------

def test_reverse_langevin_past_t0_is_rejected():
    with pytest.raises(ValueError, match="end at t >= 0"):
        _langevin(np.zeros((2, 1)), direction=1, t_start=0.2, h=0.1, steps=3)
    with pytest.raises(ValueError, match="end at t >= 0"):
        _langevin(np.zeros((2, 1)), direction=2, t_start=0.2, h=0.1, steps=3)
    _langevin(np.zeros((2, 1)), direction=1, t_start=0.3, h=0.1, steps=3)  # ends at t = 0 (up to rounding)


def test_negative_t_start_is_rejected():
    with pytest.raises(ValueError, match="t_start must be >= 0"):
        _langevin(np.zeros((2, 1)), t_start=-0.5)


def test_point_mass_at_t0_is_rejected():
    with pytest.raises(ValueError, match="point-mass"):
        _langevin(np.zeros((2, 1)), t_start=0.0, var=np.zeros(2))
    with pytest.raises(ValueError, match="point-mass"):
        _langevin(np.zeros((2, 1)), direction=1, t_start=0.3, steps=3, var=np.zeros(2))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_langevin_inputs_are_rejected(bad):
    with pytest.raises(ValueError):
        _langevin(np.array([[bad]]))
    with pytest.raises(ValueError):
        _langevin(np.zeros((1, 1)), means=np.array([[bad], [0.0]]))
    with pytest.raises(ValueError):
        _langevin(np.zeros((1, 1)), h=bad)
    with pytest.raises(ValueError, match="normalised"):
        _langevin(np.zeros((1, 1)), logw=np.log([0.5, 0.6]))


def test_external_step_minus_one_and_d0_are_rejected():
    x, f, dx, heat = np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(2)
    with pytest.raises(ValueError, match="step must be"):
        core.langevin_external_step(x, f, dx, heat, 1, 0.1, -1, True, 0, 0)
    e = np.zeros((2, 0))
    with pytest.raises(ValueError, match="d must be >= 1"):
        core.langevin_external_step(e, e, e, heat, 1, 0.1, 0, True, 0, 0)


def test_huge_step_counts_are_rejected():
    with pytest.raises(ValueError, match="Philox"):
        _langevin(np.zeros((1, 1)), steps=2**62 + 1, h=1e-300)


@pytest.mark.parametrize("d,components,n,direction,scheme", [
    (2, 63, 1 << 16, 0, 0),   # registers (d <= 4), forward EM: one step per chunk
    (1, 63, 1 << 17, 0, 1),   # exact OU
    (3, 63, 1 << 15, 2, 2),   # flow Heun
    (5, 63, 1 << 15, 1, 0),   # workspace (d > 4), reverse EM: the Philox block crosses chunk boundaries
])
def test_chunked_langevin_is_bit_identical(d, components, n, direction, scheme):
    """Many particles make the kernel run one step per chunk; the first 16 alone run in one chunk. Both must give
    the same bits (the noise is keyed by particle), snapshots included."""
    gen = np.random.default_rng(d)
    means, w, var = gen.normal(size=(components, d)), gen.random(components) + 0.1, gen.random(components) + 0.1
    logw = np.log(w / w.sum())
    x = gen.normal(size=(n, d))
    steps, t_start = 4, 1.0
    out = []
    for xs in (x.copy(), x[:16].copy()):
        snaps = np.zeros((steps + 1, len(xs), d))
        res = core.langevin(means, logw, var, xs, direction, scheme, t_start, 0.05, steps, 9, 3, 0, 1, snaps)
        out.append((xs[:16], *(r[:16] for r in res), snaps[:, :16]))
    for big, small in zip(*out):
        np.testing.assert_array_equal(big, small)


def test_sampler_reference_rejects_the_same_nonsense(monkeypatch):
    from toolbox.diffusion.densities import GaussianMixture
    from toolbox.diffusion.sampler import simulate

    dens = GaussianMixture.symmetric()
    for backend in ("reference", "native"):
        with pytest.raises(ValueError):
            simulate(dens, 2, t_lo=0.1, t_hi=np.inf, steps=3, backend=backend)
        with pytest.raises(ValueError):
            simulate(dens, 2, t_lo=-0.1, t_hi=1.0, steps=3, backend=backend)
        with pytest.raises(ValueError):
            simulate(dens, 1, t_lo=0.1, t_hi=1.0, steps=3, x_start=np.array([[np.nan]]), backend=backend)


# --- shaping -------------------------------------------------------------------------------------------------

def test_policy_with_negative_entries_is_rejected():
    R, P = np.zeros((1, 1, 2)), np.ones((1, 1, 2, 1))
    pi = np.array([[[[-0.5, 1.5]]]])
    with pytest.raises(ValueError, match="policy"):
        core.shaping_policy_evaluation(R, P, pi, np.zeros((1, 2)), 0.0)


def test_transitions_must_be_distributions():
    R, P = np.zeros((1, 2, 1)), np.array([[[[0.7, 0.7]], [[1.0, 0.0]]]])
    with pytest.raises(ValueError, match="P"):
        core.shaping_backward_induction(R, P, np.zeros((2, 1)), 3, 0.5)


# --- entrocraft ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("band", [(0.6, 0.4), (np.nan, 1.0), (0.0, np.nan), (0.0, np.inf)])
def test_inverted_or_nan_entropy_bands_are_rejected(band):
    from toolbox.entrocraft.epilogue import rejection_epilogue, rejection_epilogue_reference

    h, seq, adv = np.ones(3, np.float32), np.zeros(3, np.int64), np.ones(1, np.float32)
    with pytest.raises(ValueError, match="band"):
        core.rejection_epilogue(h, seq, adv, None, 0, False, *band)
    for fn in (rejection_epilogue, rejection_epilogue_reference):
        with pytest.raises(ValueError, match="band"):
            fn(torch.from_numpy(h), torch.from_numpy(seq), torch.from_numpy(adv), band)


def test_nan_advantages_are_rejected():
    with pytest.raises(ValueError, match="finite"):
        core.rejection_epilogue(np.ones(2, np.float32), np.zeros(2, np.int64), np.array([np.nan], np.float32))


# --- ISES ----------------------------------------------------------------------------------------------------

def test_outcome_codes_beyond_n_outcomes_are_rejected():
    """Was: 'gain 2 bits, 0 classes' for codes >= n_outcomes."""
    table = np.array([[5, 6, 7, 8]], np.uint8)
    cand, actions = np.arange(4, dtype=np.int32), np.zeros(1, np.int32)
    with pytest.raises(ValueError, match="n_outcomes"):
        core.ises_partition_scores(table, cand, actions, 3, None)
    from toolbox.ises import engine

    with pytest.raises(ValueError, match="n_outcomes"):
        engine.partition_scores_reference(table, cand, actions, 3)
    with pytest.raises(ValueError, match="outcome"):
        core.ises_filter(table, cand, 0, 300)


def test_weights_must_be_a_prior():
    table = np.zeros((1, 3), np.uint8)
    cand, actions = np.arange(3, dtype=np.int32), np.zeros(1, np.int32)
    for w in (np.array([-1.0, 1.0, 1.0]), np.array([np.nan, 1.0, 1.0]), np.zeros(3)):
        with pytest.raises(ValueError, match="weights"):
            core.ises_partition_scores(table, cand, actions, 1, w)


def test_optimal_solver_rejects_an_inconsistent_table():
    """Was: 2^61 - 1 guesses. Secret 1's own action does not win against it: no strategy identifies it."""
    table = np.array([[2, 0], [0, 0]], np.uint8)
    with pytest.raises(ValueError, match="inconsistent"):
        core.IsesOptimalSolver(table, 3, 2, np.arange(2, dtype=np.int32)).solve(np.arange(2, dtype=np.int32))
    good = np.array([[2, 0], [1, 2]], np.uint8)
    solver = core.IsesOptimalSolver(good, 3, 2, np.arange(2, dtype=np.int32))
    assert solver.solve(np.arange(2, dtype=np.int32)) == 3
    with pytest.raises(ValueError, match="increasing"):
        solver.solve(np.array([1, 0], np.int32))


# --- Ctrl-C --------------------------------------------------------------------------------------------------

_LONG_LANGEVIN = """
import numpy as np, toolbox._core as c
print('running', flush=True)
c.langevin(np.zeros((1, 1)), np.zeros(1), np.ones(1), np.zeros((1, 1)), 0, 0, 0.1, 1e-3, 10**15, 0, 0)
"""

_LONG_SOLVE = """
import itertools, numpy as np, toolbox._core as c
codes = np.array(list(itertools.product(range(7), repeat=4)), np.uint8)
table = c.ises_mastermind_table(codes, codes, 7)
solver = c.IsesOptimalSolver(table, 25, 20, np.arange(len(codes), dtype=np.int32))
print('running', flush=True)
solver.solve(np.arange(len(codes), dtype=np.int32))
"""


@pytest.mark.parametrize("script", [_LONG_LANGEVIN, _LONG_SOLVE], ids=["langevin", "ises_solver"])
def test_ctrl_c_stops_long_native_loops(script, tmp_path):
    # run outside the repository, so that the installed package is imported, not the source folder toolbox/
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)
    try:
        assert proc.stdout.readline().strip() == "running"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "KeyboardInterrupt" in err
    assert proc.returncode != 0

