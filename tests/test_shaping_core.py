"""shape-reward: soft/hard Bellman, the second law, the Dirichlet entropy split, environments and the kernels."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from toolbox.core import native as core_native
from toolbox.shaping import native
from toolbox.shaping.agents import certainty_equivalent, optimistic_transitions
from toolbox.shaping.checks import analytic_checks
from toolbox.shaping.dirichlet import Posterior, entropy_split
from toolbox.shaping.envs import (chain, deepsea, deepsea_bad_episode, make_env, random_mdp, riverswim,
                                  sample_episode, sixarms)
from toolbox.shaping.mdp import (backward_induction, boltzmann_policy, deepsea_soft_value_closed_form,
                                 greedy_policy, policy_evaluation, second_law, single_state_mdp, value_iteration)
from toolbox.core.errors import UserInputError
from native_calls import native_calls

UNIFORM3 = np.full(3, 1 / 3)


@pytest.mark.parametrize("N,T,ref", [(10, 1.0, 6.9281413017), (10, 0.1, 0.9947678887), (5, 1.0, 3.5127883549)])
@pytest.mark.parametrize("solver", [backward_induction,
                                    pytest.param(native.backward_induction, marks=pytest.mark.native)])
def test_deepsea_soft_value_matches_notes(N, T, ref, solver):
    env = deepsea(N, mapping_seed=3)
    with native_calls("shaping_backward_induction") as calls:
        V = solver(env.R, env.P, N, T)[1]
    assert calls["shaping_backward_induction"] == (solver is native.backward_induction)
    assert V[0] @ env.start == pytest.approx(ref, abs=1e-8)
    assert deepsea_soft_value_closed_form(N, T) == pytest.approx(ref, abs=1e-8)


def test_bandit_soft_value_is_log_1_plus_e():
    bandit = single_state_mdp([-1.0, 0.0])
    assert backward_induction(bandit.R, bandit.P, 1, 1.0)[1][0, 0] == pytest.approx(1.3132616875, abs=1e-10)


def test_second_law_one_state():
    one = single_state_mdp([1.0, 0.0, 2.0])
    Q, V = backward_induction(one.R, one.P, 1, 0.5, UNIFORM3)
    pi = boltzmann_policy(Q, 0.5, UNIFORM3)
    assert -V[0, 0] == pytest.approx(0.477840, abs=1e-6)
    np.testing.assert_allclose(pi[0, 0], [0.117310, 0.866813, 0.015876], atol=1e-6)
    assert second_law(one, pi, 0.5, UNIFORM3)["gap"] == pytest.approx(0.0, abs=1e-12)
    assert second_law(one, np.full((1, 1, 3), 1 / 3), 0.5, UNIFORM3)["work"] == pytest.approx(1.0)
    assert second_law(one, np.array([[[0.0, 1.0, 0.0]]]), 0.5, UNIFORM3)["work"] == pytest.approx(0.549306,
                                                                                                 abs=1e-6)
    policies = np.random.default_rng(0).dirichlet(np.ones(3), 1000)
    gaps = np.array([second_law(one, p[None, None], 0.5, UNIFORM3)["gap"] for p in policies])
    assert gaps.min() >= -1e-12 and gaps.max() > 0


def test_second_law_multistep_random_mdp():
    """W[pi] >= F* for random time-indexed policies on a random MDP; equality exactly at the Boltzmann policy."""
    mdp = random_mdp(6, 3, horizon=7, seed=4)
    prior = np.random.default_rng(1).dirichlet(np.ones(3), 6)
    Q, _ = backward_induction(mdp.R, mdp.P, mdp.horizon, 0.3, prior)
    assert second_law(mdp, boltzmann_policy(Q, 0.3, prior), 0.3, prior)["gap"] == pytest.approx(0, abs=1e-10)
    rng = np.random.default_rng(2)
    for _ in range(50):
        pi = rng.dirichlet(np.ones(3) * 0.5, (7, 6))
        assert second_law(mdp, pi, 0.3, prior)["gap"] > 0


def test_soft_tends_to_hard_and_discounted_fixed_point():
    mdp = random_mdp(8, 3, horizon=10, seed=1)
    hard = backward_induction(mdp.R, mdp.P, 10, 0.0)[1]
    soft = backward_induction(mdp.R, mdp.P, 10, 1e-4, np.full(3, 1 / 3))[1]
    np.testing.assert_allclose(soft, hard, atol=10 * 1e-4 * np.log(3) + 1e-9)
    Q, V, iters = value_iteration(mdp.R, mdp.P, 0.9, 0.2, np.full(3, 1 / 3), tol=1e-12)
    np.testing.assert_allclose(V, 0.2 * np.log(np.exp(Q / 0.2).mean(-1)), atol=1e-12)
    np.testing.assert_allclose(Q, mdp.R + 0.9 * mdp.P @ V, atol=1e-10)
    assert iters < 1000


def test_policy_evaluation_of_greedy_policy_is_the_optimum():
    mdp = riverswim()
    Q, V = backward_induction(mdp.R, mdp.P, mdp.horizon)
    np.testing.assert_allclose(policy_evaluation(mdp.R, mdp.P, greedy_policy(Q)), V, atol=1e-12)


def test_dirichlet_split_reference_values():
    for alpha, ref in {(1, 1): (0.693147, 0.5, 0.193147), (1, 1, 1): (1.098612, 0.833333, 0.265279)}.items():
        split = entropy_split(alpha)
        np.testing.assert_allclose([split["predictive"], split["aleatoric"], split["epistemic"]], ref, atol=1e-6)
    assert entropy_split([10, 10])["epistemic"] == pytest.approx(0.024376, abs=1e-6)
    assert entropy_split([100, 100])["epistemic"] == pytest.approx(0.002494, abs=1e-6)


def test_dirichlet_aleatoric_monte_carlo():
    rng = np.random.default_rng(0)
    alpha = np.array([0.7, 2.0, 3.5])
    theta = rng.dirichlet(alpha, 200_000)
    mc = -(theta * np.log(theta)).sum(-1).mean()
    assert entropy_split(alpha)["aleatoric"] == pytest.approx(mc, abs=3e-3)


def test_epistemic_shrinks_with_data_and_is_nonnegative():
    alphas = np.array([[0.1, 0.1], [1, 1], [10, 10], [100, 100], [1000, 1000]])
    mi = entropy_split(alphas)["epistemic"]
    assert (mi >= 0).all() and (np.diff(mi) < 0).all()


def test_generalised_vi_limits_and_monotonicity():
    values, weights = np.array([0.2, 0.9]), np.array([0.5, 0.5])
    for beta, ref in {-50: 0.2139, -1: 0.4900, 0: 0.5500, 1: 0.6100, 50: 0.8861}.items():
        assert certainty_equivalent(values, beta, weights) == pytest.approx(ref, abs=5e-5)
    ce = [certainty_equivalent(values, b, weights) for b in np.linspace(-500, 500, 1001)]
    assert np.all(np.diff(ce) >= -1e-12)
    assert ce[0] == pytest.approx(0.2, abs=2e-3) and ce[-1] == pytest.approx(0.9, abs=2e-3)


def test_analytic_checks_all_pass():
    rows = analytic_checks(random_policies=200)
    assert all(r["ok"] for r in rows), [r for r in rows if not r["ok"]]


def test_riverswim_spec():
    mdp = riverswim()
    Q, V = backward_induction(mdp.R, mdp.P, mdp.horizon)
    assert Q[0, 0].argmax() == 1  # swim right first
    always_left = np.zeros((20, 6, 2))
    always_left[..., 0] = 1
    assert policy_evaluation(mdp.R, mdp.P, always_left)[0, 0] == pytest.approx(0.100, abs=1e-12)
    np.testing.assert_allclose(mdp.P[2, 1, 1:4], [0.05, 0.6, 0.35])


def test_deepsea_spec_and_bad_episodes():
    env = deepsea(8, mapping_seed=5)
    V = backward_induction(env.R, env.P, 8)[1]
    assert V[0, 0] == pytest.approx(0.99)
    right_index = np.append(env.right_action.ravel(), 0)  # the end state's action is irrelevant
    right = np.broadcast_to(np.eye(2)[right_index], (8, env.n_states, 2))
    rng = np.random.default_rng(0)
    good = sample_episode(env, right, rng)
    assert good["rewards"].sum() == pytest.approx(0.99) and not deepsea_bad_episode(env, good)
    left = 1.0 - right
    assert deepsea_bad_episode(env, sample_episode(env, left, rng))
    stochastic = deepsea(8, deterministic=False)
    assert backward_induction(stochastic.R, stochastic.P, 8)[1][0, 0] < 0.99
    assert stochastic.reward_noise.sum() == 4  # two end cells x two actions


def test_other_environments_are_valid():
    for name in ("sixarms", "chain-5", "random-7x4", "deepsea-stochastic-6"):
        make_env(name).validate()
    six = sixarms()
    Q, V = backward_induction(six.R, six.P, six.horizon)
    assert V[0, 0] > 0 and chain(5).horizon == 10
    with pytest.raises(UserInputError):
        make_env("mountaincar")


def test_posterior_updates_and_samples():
    post = Posterior(3, 2, prior_mass=3.0)
    post.update(np.array([0, 0, 1]), np.array([1, 1, 0]), np.array([1.0, 0.0, 0.5]), np.array([2, 2, 0]))
    np.testing.assert_allclose(post.alpha[0, 1], [1, 1, 3])
    assert post.mean_R()[0, 1] == pytest.approx(1.0 / 3)
    draws = post.sample_P(np.random.default_rng(0), 20_000)
    np.testing.assert_allclose(draws.mean(0)[0, 1], [0.2, 0.2, 0.6], atol=5e-3)
    assert post.ledger()["epistemic"][0, 1] < post.ledger()["epistemic"][2, 0]


def test_optimistic_transitions_solve_the_l1_program():
    rng = np.random.default_rng(3)
    for _ in range(20):
        S = 5
        P_hat = rng.dirichlet(np.ones(S), 4)
        radius = rng.uniform(0, 1.5, 4)
        V = rng.normal(size=S)
        p = optimistic_transitions(P_hat, radius, V)
        assert np.allclose(p.sum(-1), 1) and (p >= -1e-12).all()
        assert (np.abs(p - P_hat).sum(-1) <= radius + 1e-9).all()
        for i in range(4):  # LP: max p.V s.t. sum p = 1, p >= 0, |p - P_hat|_1 <= r (split p - P_hat = u - w)
            c = np.concatenate([-V, np.zeros(2 * S)])
            A_eq = np.block([[np.ones(S), np.zeros(2 * S)], [np.eye(S), -np.eye(S), np.eye(S)]])
            b_eq = np.concatenate([[1.0], P_hat[i]])
            A_ub = np.concatenate([np.zeros(S), np.ones(2 * S)])[None]
            lp = linprog(c, A_ub=A_ub, b_ub=[radius[i]], A_eq=A_eq, b_eq=b_eq, bounds=(0, None))
            assert p[i] @ V == pytest.approx(-lp.fun, abs=1e-8)


def test_native_matches_reference_batched():
    if not native.available():
        pytest.skip("native extension without shape-reward kernels")
    rng = np.random.default_rng(7)
    R = rng.normal(size=(4, 9, 3))
    P = rng.dirichlet(np.ones(9), (4, 9, 3))
    prior = rng.dirichlet(np.ones(3), 9)
    for T in (0.0, 0.05, 2.0):
        Qn, Vn = native.backward_induction(R, P, 12, T, prior)
        Qr, Vr = backward_induction(R, P, 12, T, prior)
        np.testing.assert_allclose(Qn, Qr, atol=1e-11)
        np.testing.assert_allclose(Vn, Vr, atol=1e-11)


@pytest.mark.parametrize("bad", [
    lambda R, P, L: (R.astype(np.float32), P, L),
    lambda R, P, L: (R, P[:, :, :, :-1].copy(), L),
    lambda R, P, L: (R, np.asfortranarray(P), L),
    lambda R, P, L: (R, P, L[:, :1].copy()),
    lambda R, P, L: (R[:, :0].copy(), P[:, :0].copy(), L[:0].copy()),
    lambda R, P, L: (R[0], P, L),
])
def test_binding_rejects_bad_arrays(bad):
    core = core_native.module()
    if core is None or not hasattr(core, "shaping_backward_induction"):
        pytest.skip("native extension without shape-reward kernels")
    R = np.zeros((2, 3, 2))
    P = np.full((2, 3, 2, 3), 1 / 3)
    L = np.zeros((3, 2))
    with pytest.raises(ValueError):
        core.shaping_backward_induction(*bad(R, P, L), 4, 0.1)
    with pytest.raises(ValueError):
        core.shaping_backward_induction(R, P, L, 0, 0.1)
    with pytest.raises(ValueError):
        core.shaping_backward_induction(R, P, L, 4, -1.0)


def test_wrapper_rejects_bad_input():
    with pytest.raises(UserInputError):
        native.backward_induction(np.zeros((3, 2)), np.zeros((3, 2, 4)), 5)
    with pytest.raises(UserInputError):
        native.backward_induction(np.zeros((3, 2)), np.full((3, 2, 3), 1 / 3), 5, -0.1)
    with pytest.raises(UserInputError):
        entropy_split([1.0, 0.0])


@pytest.mark.cuda
def test_cuda_kernel_matches_reference():
    import torch

    rng = np.random.default_rng(11)
    R = rng.normal(size=(64, 30, 4))
    P = rng.dirichlet(np.ones(30), (64, 30, 4))
    for T in (0.0, 0.3):
        Q, V = native.backward_induction_torch(torch.from_numpy(R).cuda(), torch.from_numpy(P).cuda(), 15, T,
                                               np.full(4, 0.25))
        Qr, Vr = backward_induction(R, P, 15, T, np.full(4, 0.25))
        np.testing.assert_allclose(Q.cpu().numpy(), Qr, atol=1e-10)
        np.testing.assert_allclose(V.cpu().numpy(), Vr, atol=1e-10)


@pytest.mark.native
@pytest.mark.parametrize("T", [0.0, 0.5])
def test_policy_evaluation_native_matches_reference(T):
    """The kernel behind every regret figure against mdp.policy_evaluation (zeros in pi: 0 log 0 = 0)."""
    mdp = random_mdp(5, 3, horizon=6, seed=7)
    prior = np.random.default_rng(3).dirichlet(np.ones(3), 5)
    rng = np.random.default_rng(4)
    for pi in (rng.dirichlet(np.ones(3), (6, 5)), greedy_policy(rng.normal(size=(6, 5, 3)))):
        with native_calls("shaping_policy_evaluation") as calls:
            got = native.policy_evaluation(mdp.R, mdp.P, pi, T, prior)
        assert calls["shaping_policy_evaluation"] == 1
        np.testing.assert_allclose(got, policy_evaluation(mdp.R, mdp.P, pi, T, prior), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("case", ["negative_pi", "unnormalised_pi", "nan_pi", "bad_P", "nan_R", "temperature"])
def test_policy_evaluation_rejects_bad_input(backend, case, monkeypatch):
    if backend == "reference":
        monkeypatch.setenv("TOOLBOX_KERNELS", "reference")
    elif core_native.module() is None:
        pytest.skip("toolbox._core is not built")
    mdp = random_mdp(3, 2, horizon=2, seed=1)
    R, P, pi, T = mdp.R.copy(), mdp.P.copy(), np.full((2, 3, 2), 0.5), 0.5
    if case == "negative_pi":
        pi[0, 0] = [-0.5, 1.5]
    elif case == "unnormalised_pi":
        pi[1, 2] = [0.5, 0.6]
    elif case == "nan_pi":
        pi[0, 1, 0] = np.nan
    elif case == "bad_P":
        P[0, 0] = P[0, 0] * 2
    elif case == "nan_R":
        R[1, 1] = np.inf
    else:
        T = np.nan
    with pytest.raises(ValueError):
        native.policy_evaluation(R, P, pi, T)
