"""Exact values of the shaping core where mutation testing found them unchecked (scripts/mutation.sh;
docs/developing.md#mutation-testing): the Dirichlet ledger and posterior (toolbox/shaping/dirichlet.py) and the
hard / soft Bellman backups, policy evaluation and the second law (toolbox/shaping/mdp.py)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from toolbox.core.errors import UserInputError
from toolbox.shaping.dirichlet import Posterior, entropy_split, policy_entropy
from toolbox.shaping.mdp import (
    TabularMDP,
    backward_induction,
    boltzmann_policy,
    deepsea_soft_value_closed_form,
    discounted_policy_evaluation,
    greedy_policy,
    log_reference,
    logsumexp,
    optimal_values,
    policy_evaluation,
    second_law,
    single_state_mdp,
    soft_value,
    start_value,
    value_iteration,
)

EULER = 0.5772156649015329


def _psi(n: int) -> float:
    """digamma at a positive integer: H_{n-1} - gamma."""
    return sum(1.0 / k for k in range(1, n)) - EULER


# ---- dirichlet.py -------------------------------------------------------------------------------------------------
def test_entropy_split_closed_form_batch():
    # alpha = (1, 2): p = (1/3, 2/3); aleatoric = psi(4) - p1 psi(2) - p2 psi(3); alpha = (2, 3, 5) likewise
    split = entropy_split([[1.0, 2.0, 1e-300], [2.0, 3.0, 5.0]])
    assert split["predictive"].shape == (2,)
    p = np.array([2.0, 3.0, 5.0]) / 10
    want_pred = [math.log(3) - 2 / 3 * math.log(2), -(p * np.log(p)).sum()]
    want_alea = [_psi(4) - _psi(2) / 3 - 2 * _psi(3) / 3,
                 _psi(11) - 0.2 * _psi(3) - 0.3 * _psi(4) - 0.5 * _psi(6)]
    np.testing.assert_allclose(split["predictive"], want_pred, rtol=0, atol=1e-12)
    np.testing.assert_allclose(split["aleatoric"], want_alea, rtol=0, atol=1e-12)
    np.testing.assert_allclose(split["epistemic"], np.subtract(want_pred, want_alea), rtol=0, atol=1e-12)


def test_entropy_split_one_outcome_is_certain():
    split = entropy_split([[5.0], [0.5]])
    for key in ("predictive", "aleatoric", "epistemic"):
        np.testing.assert_allclose(split[key], [0.0, 0.0], atol=1e-15)


@pytest.mark.parametrize("alpha", [3.0, np.zeros((2, 0)), [1.0, 0.0], [1.0, -1.0], [[1.0, 1.0], [1.0, 0.0]]])
def test_entropy_split_rejects(alpha):
    with pytest.raises(UserInputError, match="non-empty array of positive"):
        entropy_split(alpha)


def test_policy_entropy_nats_with_zero_probabilities():
    np.testing.assert_allclose(policy_entropy(np.array([[0.5, 0.5], [1.0, 0.0], [0.25, 0.75]])),
                               [math.log(2), 0.0, -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))], atol=1e-15)


@pytest.mark.parametrize("kw", [dict(prior_mass=0.0), dict(reward_prior_count=0.0), dict(reward_std=0.0),
                                dict(prior_mass=-1.0), dict(reward_prior_count=-1.0), dict(reward_std=-0.5)])
def test_posterior_rejects_non_positive_settings(kw):
    with pytest.raises(UserInputError, match="must be > 0"):
        Posterior(2, 2, **kw)


def test_policy_entropy_is_over_the_last_axis_of_a_batch():
    # [H, S, A]: a time-dependent policy; the entropy is per (h, s), never across states or steps
    policy = np.array([[[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]], [[1 / 3, 1 / 3, 1 / 3], [0.0, 0.25, 0.75]]])
    h34 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    np.testing.assert_allclose(policy_entropy(policy), [[math.log(2), 0.0], [math.log(3), h34]], atol=1e-15)


def test_posterior_defaults():
    # documented defaults: Dir(1/S, ..., 1/S) (total pseudo-count 1), reward prior N(0, sigma^2 / 1), sigma = 1
    post = Posterior(4, 2)
    np.testing.assert_array_equal(post.prior, np.full((4, 2, 4), 0.25))
    assert (post.m0, post.k0, post.sigma) == (0.0, 1.0, 1.0)
    draws = post.sample_R(np.random.default_rng(0), 4000)
    # sd sigma / sqrt(k0) = 1 per (s, a); 32,000 draws give the sd to about 0.4% (1 / sqrt(2 * 32000))
    assert abs(draws.std() - 1.0) < 0.02


def test_posterior_statistics_exact():
    post = Posterior(2, 2, prior_mass=0.5, reward_prior_mean=2.0, reward_prior_count=3.0, reward_std=2.0)
    np.testing.assert_array_equal(post.prior, np.full((2, 2, 2), 0.25))
    # np.add.at: the repeated (0, 1) counts twice
    post.update(np.array([0, 0, 1]), np.array([1, 1, 0]), np.array([1.0, 4.0, -1.0]), np.array([1, 1, 0]))
    np.testing.assert_array_equal(post.counts[0, 1], [0.0, 2.0])
    np.testing.assert_array_equal(post.visits, [[0.0, 2.0], [1.0, 0.0]])
    np.testing.assert_array_equal(post.reward_sum, [[0.0, 5.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(post.alpha[0, 1], [0.25, 2.25])
    np.testing.assert_allclose(post.mean_P()[0, 1], [0.25 / 2.5, 2.25 / 2.5], atol=1e-15)
    np.testing.assert_allclose(post.mean_P()[0, 0], [0.5, 0.5], atol=1e-15)
    # (sum r + k0 m0) / (n + k0)
    np.testing.assert_allclose(post.mean_R(), [[2.0, (5 + 6) / 5], [(-1 + 6) / 4, 2.0]], atol=1e-15)
    gain = 0.5 * np.log(np.array([[4 / 3, 6 / 5], [5 / 4, 4 / 3]]))
    np.testing.assert_allclose(post.reward_information_gain(), gain, atol=1e-15)
    ledger = post.ledger()
    assert set(ledger) == {"predictive", "aleatoric", "epistemic", "reward_epistemic"}
    np.testing.assert_allclose(ledger["reward_epistemic"], gain, atol=1e-15)
    np.testing.assert_allclose(ledger["aleatoric"], entropy_split(post.alpha)["aleatoric"], atol=0)
    # sample_R: mean + sigma / sqrt(n + k0) * z with the same normal draws
    z = np.random.default_rng(5).standard_normal((3, 2, 2))
    want = post.mean_R() + 2.0 / np.sqrt(post.visits + 3.0) * z
    np.testing.assert_allclose(post.sample_R(np.random.default_rng(5), 3), want, atol=1e-14)
    assert post.sample_R(np.random.default_rng(5)).shape == (2, 2)
    np.testing.assert_allclose(post.sample_R(np.random.default_rng(5)), want[0], atol=1e-14)


def test_sample_p_shapes_normalisation_and_underflow_fallback():
    post = Posterior(3, 2, prior_mass=2.0)
    one = post.sample_P(np.random.default_rng(1))
    many = post.sample_P(np.random.default_rng(1), 4)
    assert one.shape == (3, 2, 3) and many.shape == (4, 3, 2, 3)
    np.testing.assert_allclose(one.sum(-1), 1.0, atol=1e-12)
    g = np.random.default_rng(1).standard_gamma(np.full((3, 2, 3), 2.0 / 3))
    np.testing.assert_allclose(one, g / g.sum(-1, keepdims=True), atol=1e-14)
    # a vanishing prior: every Gamma variate underflows to 0, and the posterior mean (uniform) is returned
    # (no 0/0 on the way: the division only sees the positive sums)
    tiny = Posterior(2, 1, prior_mass=1e-300)
    with np.errstate(all="raise"):
        draw = tiny.sample_P(np.random.default_rng(0), 3)
    np.testing.assert_array_equal(draw, np.full((3, 2, 1, 2), 0.5))


# ---- mdp.py -------------------------------------------------------------------------------------------------------
def _two_state(horizon=2, gamma=1.0):
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[1, 0, 1] = 1.0      # action 0 stays
    P[0, 1, 1] = P[1, 1, 0] = 1.0      # action 1 switches
    R = np.array([[0.0, 1.0], [2.0, 0.0]])
    return TabularMDP("two", P=P, R=R, horizon=horizon, start=np.array([1.0, 0.0]), gamma=gamma)


def test_mdp_properties_and_valid_edges():
    m = _two_state()
    assert (m.n_states, m.n_actions, m.discounted) == (2, 2, False)
    assert m.validate() is m
    assert _two_state(horizon=0, gamma=0.9).discounted
    _two_state(horizon=0, gamma=0.0).validate()
    _two_state(horizon=3, gamma=1.0).validate()
    wide = TabularMDP("wide", P=np.full((2, 3, 2), 0.5), R=np.zeros((2, 3)), horizon=1, start=np.ones(2) / 2)
    assert (wide.n_states, wide.n_actions) == (2, 3)
    wide.validate()


@pytest.mark.parametrize("change, message", [
    (dict(P=np.full((2, 2, 3), 1 / 3)), "must be \\[S, A, S\\]"),
    (dict(start=np.ones(3) / 3), "must be \\[S, A, S\\]"),
    (dict(P=np.full((2, 1, 2), 0.5)), "must be \\[S, A, S\\]"),     # shapes smaller than (S, A, S) and (S,)
    (dict(start=np.ones(1)), "must be \\[S, A, S\\]"),
    (dict(P=np.full((2, 2, 2), 0.6)), "probability distributions"),
    (dict(P=np.stack([np.array([[1.5, -0.5], [0.0, 1.0]])] * 2)), "probability distributions"),
    (dict(start=np.array([0.5, 0.4])), "start must sum to 1"),
    (dict(horizon=-1), "start must sum to 1"),
    (dict(gamma=-0.1), "gamma must be in"),
    (dict(gamma=1.1), "gamma must be in"),
    (dict(horizon=0, gamma=1.0), "gamma must be in"),
])
def test_mdp_validate_rejects(change, message):
    m = _two_state()
    for k, v in change.items():
        setattr(m, k, v)
    with pytest.raises(UserInputError, match=message):
        m.validate()


def test_log_reference():
    np.testing.assert_array_equal(log_reference(None, (2, 3)), np.zeros((2, 3)))
    np.testing.assert_allclose(log_reference([0.25, 0.75], (2, 2)), np.log([[0.25, 0.75]] * 2), atol=0)
    for bad in ([0.0, 1.0], [-0.5, 1.5]):
        with pytest.raises(UserInputError, match="must be > 0"):
            log_reference(bad, (2, 2))


def test_logsumexp_exact():
    x = np.array([[0.0, math.log(3.0)], [1000.0, 1000.0], [-np.inf, -np.inf]])
    with np.errstate(divide="ignore"):
        out = logsumexp(x)
    np.testing.assert_allclose(out[:2], [math.log(4.0), 1000.0 + math.log(2.0)], atol=1e-12)
    assert out[2] == -np.inf
    np.testing.assert_allclose(logsumexp(x[:2], b=np.array([[2.0, 1.0], [0.5, 0.5]])),
                               [math.log(5.0), 1000.0], atol=1e-12)
    np.testing.assert_allclose(logsumexp(x[:2], axis=0), [1000.0, 1000.0 + math.log1p(np.exp(math.log(3) - 1000))],
                               atol=1e-12)
    assert logsumexp(x[:2], keepdims=True).shape == (2, 1)
    np.testing.assert_allclose(logsumexp(np.array([-800.0, -800.0])), -800.0 + math.log(2.0), atol=1e-12)


def test_soft_value_and_boltzmann_policy_exact():
    Q = np.array([[0.0, 2.0], [1.0, 1.0]])
    np.testing.assert_array_equal(soft_value(Q, 0.0, np.zeros(2)), [2.0, 1.0])
    T = 0.5
    np.testing.assert_allclose(soft_value(Q, T, np.zeros(2)), T * np.log(np.exp(Q / T).sum(-1)), atol=1e-12)
    lp = np.log([0.25, 0.75])
    np.testing.assert_allclose(soft_value(Q, T, lp), T * np.log((np.exp(Q / T) * [0.25, 0.75]).sum(-1)), atol=1e-12)
    pi = boltzmann_policy(Q, T, prior=[0.25, 0.75])
    w = np.exp(Q / T) * [0.25, 0.75]
    np.testing.assert_allclose(pi, w / w.sum(-1, keepdims=True), atol=1e-14)
    np.testing.assert_array_equal(boltzmann_policy(Q, 0.0), [[0.0, 1.0], [0.5, 0.5]])


def test_greedy_policy_ties_and_random_breaking():
    np.testing.assert_array_equal(greedy_policy(np.array([1.0, 1.0 - 1e-13, 0.0])), [0.5, 0.5, 0.0])
    np.testing.assert_array_equal(greedy_policy(np.array([1.0, 1.0 - 1e-11, 0.0])), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(greedy_policy(np.array([1.0, 0.9]), atol=0.2), [0.5, 0.5])
    Q = np.array([[3.0, 3.0, 0.0, 3.0]] * 200)
    pick = greedy_policy(Q, np.random.default_rng(0))
    assert pick.shape == (200, 4) and (pick.sum(-1) == 1).all() and (pick[:, 2] == 0).all()
    assert (pick.sum(0)[[0, 1, 3]] > 40).all()    # every maximiser is drawn
    u = np.random.default_rng(0).random(Q.shape)
    np.testing.assert_array_equal(pick.argmax(-1), np.argmax((Q == 3.0) * u, -1))
    # a time-indexed [H, S, A] table: the choice is over the actions (last axis)
    Q3 = np.array([[[0.0, 1.0, 1.0], [2.0, 0.0, 2.0]]] * 3)
    pick3 = greedy_policy(Q3, np.random.default_rng(1))
    assert pick3.shape == (3, 2, 3) and (pick3.sum(-1) == 1).all()
    assert (pick3[..., 0, 0] == 0).all() and (pick3[..., 1, 1] == 0).all()


def test_backward_induction_hard_and_soft_exact():
    m = _two_state(gamma=0.5)
    with pytest.raises(UserInputError, match="temperature must be >= 0"):
        backward_induction(m.R, m.P, 2, temperature=-1e-3)
    Q, V = backward_induction(m.R, m.P, 2, gamma=0.5)
    assert Q.shape == (2, 2, 2) and V.shape == (3, 2)
    # last step: Q = R, V = max R = (1, 2); first: Q = R + 0.5 V_next[s']
    np.testing.assert_allclose(Q[1], m.R)
    np.testing.assert_allclose(V[1:], [[1.0, 2.0], [0.0, 0.0]])
    np.testing.assert_allclose(Q[0], [[0.5, 2.0], [3.0, 0.5]])
    np.testing.assert_allclose(V[0], [2.0, 3.0])
    T = 2.0
    Qs, Vs = backward_induction(m.R, m.P, 2, temperature=T, prior=[0.5, 0.5], gamma=0.5)
    v1 = T * np.log(0.5 * np.exp(m.R / T).sum(-1))
    np.testing.assert_allclose(Vs[1], v1, atol=1e-12)
    q0 = m.R + 0.5 * np.array([[v1[0], v1[1]], [v1[1], v1[0]]])
    np.testing.assert_allclose(Qs[0], q0, atol=1e-12)
    np.testing.assert_allclose(Vs[0], T * np.log(0.5 * np.exp(q0 / T).sum(-1)), atol=1e-12)


def test_value_iteration_fixed_point_iterations_and_errors():
    m = _two_state()
    for g in (1.0, -0.1):
        with pytest.raises(UserInputError, match="0 <= gamma < 1"):
            value_iteration(m.R, m.P, g)
        with pytest.raises(UserInputError, match="0 <= gamma < 1"):
            discounted_policy_evaluation(m.R, m.P, np.full((2, 2), 0.5), g)
    # gamma = 0: V = max R after one sweep, the second sweep changes nothing
    Q, V, it = value_iteration(m.R, m.P, 0.0)
    np.testing.assert_array_equal(Q, m.R)
    np.testing.assert_array_equal(V, [1.0, 2.0])
    assert it == 2
    # zero change is not below tol = 0: the cap is returned
    assert value_iteration(np.zeros((2, 2)), m.P, 0.5, tol=0.0, max_iter=5)[2] == 5
    assert value_iteration(np.zeros((2, 2)), m.P, 0.5, max_iter=5)[2] == 1
    # gamma = 0.5: the hard optimum is the solution of V = max_a (R + 0.5 P V): stay in 1 forever (4), go there (3)
    Q, V, _ = value_iteration(m.R, m.P, 0.5)
    np.testing.assert_allclose(V, [3.0, 4.0], atol=1e-9)
    np.testing.assert_allclose(Q, [[1.5, 3.0], [4.0, 1.5]], atol=1e-9)


def test_policy_evaluation_with_kl_exact():
    m = _two_state(gamma=0.5)
    pi = np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.25, 0.75], [0.5, 0.5]]])
    V = policy_evaluation(m.R, m.P, pi, gamma=0.5)
    v1 = (pi[1] * m.R).sum(-1)
    np.testing.assert_allclose(V[1], v1)
    np.testing.assert_allclose(V[0], [0.5 * (0.5 * v1[0]) + 0.5 * (1 + 0.5 * v1[1]), 2 + 0.5 * v1[1]])
    np.testing.assert_array_equal(V[2], [0.0, 0.0])
    T, prior = 0.3, np.array([0.2, 0.8])
    # KL(pi || pi0) over the actions with pi > 0 (0 log 0 = 0)
    kl = np.array([[sum(p * math.log(p / q) for p, q in zip(row, prior) if p > 0) for row in h] for h in pi])
    Vs = policy_evaluation(m.R, m.P, pi, temperature=T, prior=prior, gamma=0.5)
    w1 = v1 - T * kl[1]
    np.testing.assert_allclose(Vs[1], w1, atol=1e-12)
    np.testing.assert_allclose(Vs[0], [0.25 * w1[0] + 0.5 * (1 + 0.5 * w1[1]) - T * kl[0, 0],
                                       2 + 0.5 * w1[1] - T * kl[0, 1]], atol=1e-12)


def test_discounted_policy_evaluation_exact():
    m = _two_state(horizon=0, gamma=0.5)
    stay = np.array([[1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(discounted_policy_evaluation(m.R, m.P, stay, 0.5), [0.0, 4.0], atol=1e-12)
    mix = np.array([[0.5, 0.5], [1.0, 0.0]])
    # V1 = 2 / 0.5 = 4; V0 = 0.5 + 0.5 (0.5 V0 + 0.5 V1) -> V0 = (0.5 + 1) / 0.75
    np.testing.assert_allclose(discounted_policy_evaluation(m.R, m.P, mix, 0.5), [2.0, 4.0], atol=1e-12)
    T, prior = 0.4, [0.25, 0.75]
    kl0 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    kl1 = math.log(1 / 0.25)
    v1 = (2 - T * kl1) / 0.5
    v0 = (0.5 - T * kl0 + 0.25 * v1) / 0.75
    np.testing.assert_allclose(discounted_policy_evaluation(m.R, m.P, mix, 0.5, T, prior), [v0, v1], atol=1e-12)
    np.testing.assert_allclose(start_value(m, mix, T, prior), [v0, v1], atol=1e-12)
    np.testing.assert_allclose(start_value(m, mix), [2.0, 4.0], atol=1e-12)
    # at T = 0 the reference measure plays no part (not even its check)
    np.testing.assert_allclose(discounted_policy_evaluation(m.R, m.P, mix, 0.5, 0.0, [0.0, 1.0]), [2.0, 4.0],
                               atol=1e-12)
    # more actions than states: the system is S x S
    P = np.zeros((2, 3, 2))
    P[:, 0, 0] = P[:, 1, 1] = 1.0
    P[:, 2] = 0.5
    R = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 1.0]])
    pi = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    # V1 = 3 + 0.5 V1 = 6; V0 = 2 + 0.5 (V0 + V1) / 2 -> V0 = (2 + 1.5) / 0.75
    np.testing.assert_allclose(discounted_policy_evaluation(R, P, pi, 0.5), [3.5 / 0.75, 6.0], atol=1e-12)
    Q, V = optimal_values(m)
    np.testing.assert_allclose(V, [3.0, 4.0], atol=1e-9)
    assert Q.shape == (2, 2)


def test_second_law_on_a_bandit_exact():
    costs, T = np.array([0.0, 1.0, 3.0]), 0.5
    mdp = single_state_mdp(costs, horizon=1)
    assert mdp.n_actions == 3 and mdp.horizon == 1 and mdp.R.tolist() == [[-0.0, -1.0, -3.0]]
    assert mdp.start.tolist() == [1.0] and mdp.P.shape == (1, 3, 1)
    free = -T * math.log(np.exp(-costs / T).sum())
    uniform = np.full((1, 1, 3), 1 / 3)
    out = second_law(mdp, uniform, T)
    # work = E[c] + T KL(uniform || counting measure) = mean c - T log 3
    assert out["free_energy"] == pytest.approx(free, abs=1e-12)
    assert out["expected_cost"] == pytest.approx(4 / 3, abs=1e-12)
    assert out["work"] == pytest.approx(4 / 3 - T * math.log(3), abs=1e-12)
    assert out["kl_cost"] == pytest.approx(-T * math.log(3), abs=1e-12)
    assert out["gap"] == pytest.approx(out["work"] - free, abs=1e-12) and out["gap"] > 0
    given = second_law(mdp, uniform, T, free_energy=7.0)
    assert given["free_energy"] == 7.0 and given["gap"] == pytest.approx(out["work"] - 7.0, abs=1e-12)
    two = single_state_mdp(costs, horizon=2)
    assert second_law(two, np.full((2, 1, 3), 1 / 3), T)["free_energy"] == pytest.approx(2 * free, abs=1e-12)
    # discounted: F* = -V(s0) of the soft fixed point V = -T log(sum e^{-c/T}) ... / (1 - gamma)
    disc = single_state_mdp(costs, horizon=0)
    disc.gamma = 0.5
    res = second_law(disc, np.full((1, 3), 1 / 3), T)
    assert res["free_energy"] == pytest.approx(free / 0.5, abs=1e-8)
    assert res["work"] == pytest.approx((4 / 3 - T * math.log(3)) / 0.5, abs=1e-12)


@pytest.mark.parametrize("N, T, c", [(3, 0.05, 0.01), (4, 2.0, 0.3), (2, 0.5, 0.9), (5, 0.001, 0.01)])
def test_deepsea_closed_form_against_enumerated_paths(N, T, c):
    # every action sequence: k "right" moves cost c k / N, the all-right path also collects the reward 1; at
    # T = 0.001 the terms reach e^990 (beyond float64), so both sides must shift by the largest exponent
    exponents = [(-c * sum(path) / N + (1.0 if sum(path) == N else 0.0)) / T
                 for path in itertools.product((0, 1), repeat=N)]
    want = T * np.logaddexp.reduce(exponents)
    assert deepsea_soft_value_closed_form(N, T, c) == pytest.approx(want, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("temperature", [-0.1, float("inf"), float("nan")])
def test_discounted_value_iteration_rejects_a_temperature_that_is_not_finite_and_non_negative(temperature):
    R, P = np.zeros((2, 2)), np.full((2, 2, 2), 0.5)
    with pytest.raises(UserInputError, match="temperature"):
        value_iteration(R, P, 0.9, temperature)


# ---- survivors of the full mdp.py mutation run ----------------------------------------------------------------------

@pytest.mark.parametrize("gamma", [1.0, 1.5])
def test_discounted_solvers_reject_gamma_of_one_or_more(gamma):
    m = _two_state()
    with pytest.raises(UserInputError, match="0 <= gamma < 1"):
        value_iteration(m.R, m.P, gamma)
    with pytest.raises(UserInputError, match="0 <= gamma < 1"):
        discounted_policy_evaluation(m.R, m.P, np.full((2, 2), 0.5), gamma)


def test_discounted_policy_evaluation_at_gamma_zero_and_default_temperature():
    # gamma = 0: V = r_pi exactly; the default temperature is 0 (the plain expected return, no KL term)
    m, pi = _two_state(), np.array([[0.25, 0.75], [1.0, 0.0]])
    np.testing.assert_allclose(discounted_policy_evaluation(m.R, m.P, pi, 0.0), [0.75, 2.0], atol=1e-15)
    v = discounted_policy_evaluation(m.R, m.P, pi, 0.5)
    np.testing.assert_allclose(v, discounted_policy_evaluation(m.R, m.P, pi, 0.5, temperature=0.0), atol=0)
    # V = r + 0.5 P_pi V: P_pi = [[.25, .75], [0, 1]] -> V1 = 2 / 0.5 = 4, V0 = (0.75 + 0.375 * 4) / 0.875
    np.testing.assert_allclose(v, [(0.75 + 1.5) / 0.875, 4.0], rtol=1e-14)


def test_value_iteration_stops_at_exactly_max_iter():
    m = _two_state()
    for cap in (1, 2, 7):
        *_, iterations = value_iteration(m.R, m.P, 0.99, tol=0.0, max_iter=cap)  # tol 0: never converged
        assert iterations == cap
    Q, V, _ = value_iteration(m.R, m.P, 0.5, tol=0.0, max_iter=1)
    np.testing.assert_allclose(V, [1.0, 2.0])   # one backup from V = 0: max_a R


def test_greedy_policy_tolerance_is_inclusive():
    Q = np.array([[1.0, 0.5, 0.25]])
    np.testing.assert_array_equal(greedy_policy(Q, atol=0.5), [[0.5, 0.5, 0.0]])   # 0.5 = max - atol: a tie


def test_zero_temperature_ignores_the_reference_even_where_it_is_zero():
    # T = 0: the plain expected return, even for a policy with mass where pi0 = 0 (KL infinite, T * KL undefined)
    m, pi = _two_state(horizon=1), np.array([[[0.0, 1.0], [1.0, 0.0]]])
    prior = np.array([[1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(policy_evaluation(m.R, m.P, pi, 0.0, prior)[0], [1.0, 2.0], atol=0)
    np.testing.assert_allclose(discounted_policy_evaluation(m.R, m.P, pi[0], 0.5, 0.0, prior),
                               discounted_policy_evaluation(m.R, m.P, pi[0], 0.5), atol=0)


def test_deepsea_closed_form_at_a_tiny_temperature():
    # T -> 0: the soft value tends to the best return 1 - c (the treasure path); the log-sum must not underflow
    assert deepsea_soft_value_closed_form(4, 1e-5, 0.01) == pytest.approx(0.99, abs=1e-9)


def test_plain_return_is_the_default_of_policy_evaluation_and_start_value():
    # the defaults are T = 0: no KL penalty, even for a policy far from the uniform reference
    m, pi = _two_state(horizon=2), np.array([[[0.9, 0.1], [0.2, 0.8]]] * 2)
    np.testing.assert_array_equal(policy_evaluation(m.R, m.P, pi), policy_evaluation(m.R, m.P, pi, 0.0))
    np.testing.assert_allclose(policy_evaluation(m.R, m.P, pi)[1], [0.1, 0.4], atol=1e-15)   # one step: r_pi
    assert start_value(m, pi) == pytest.approx(start_value(m, pi, 0.0), abs=0)
    assert start_value(m, pi) != pytest.approx(start_value(m, pi, 1.0))


def test_value_iteration_on_a_batch_of_mdps():
    m = _two_state()
    R = np.stack([m.R, 2 * m.R, -m.R])
    Q, V, _ = value_iteration(R, np.stack([m.P] * 3), 0.5)
    assert V.shape == (3, 2)
    for b in range(3):
        np.testing.assert_allclose(V[b], value_iteration(R[b], m.P, 0.5)[1], atol=1e-9)


def test_value_iteration_stops_at_its_default_cap_of_100000_iterations():
    # with tol = 0 the sup-norm change (0 once V has converged in floating point) is never below tol, so the
    # default cap of 100,000 iterations ends the loop
    Q, V, iterations = value_iteration(np.ones((1, 1)), np.ones((1, 1, 1)), 0.5, tol=0.0)
    assert iterations == 100_000 and V.tolist() == [2.0] and Q.tolist() == [[2.0]]
