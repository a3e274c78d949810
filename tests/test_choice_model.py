"""Reward-rational choice model, exact posterior, gridworld choice sets and the MCMC sampler (infer-choice)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolbox.choice import sampler
from toolbox.choice.gridworld import Gridworld, avoiding, corrections
from toolbox.choice.model import (ChoiceProblem, Observation, choice_logprobs, entropy, posterior, regret,
                                  robot_choice, unit_directions)
from toolbox.choice.scenarios import builtin, peanuts
from toolbox.core.errors import UserInputError
from toolbox.core.rng import numpy_generator


@pytest.mark.parametrize("beta, want", [(1.0, 0.268941), (2.0, 0.119203)])
def test_peanuts_reference_values(beta, want):
    scn = peanuts(beta)
    b_mis = posterior(scn.problem, scn.observations)
    b_cor = posterior(scn.problem, [Observation(0, scn.true)])
    assert b_mis[scn.true_theta] == pytest.approx(want, abs=1e-6)
    assert b_mis[scn.true_theta] == pytest.approx(1 / (1 + np.exp(beta)), abs=1e-12)  # closed form
    assert abs(b_cor[scn.true_theta] - 0.5) < 1e-9


def _random_problem(rng, n=6, d=2, k=12, beta=1.5):
    return ChoiceProblem(rng.standard_normal((n, d)), unit_directions(d, k), rng.random(k) + 0.1, beta)


def test_posterior_is_bayes_rule_and_sequential_equals_batch():
    rng = numpy_generator(0)
    p = _random_problem(rng)
    full = np.ones(p.n_options, dtype=bool)
    obs = [Observation(1, full), Observation(3, p.mask([0, 3, 4]))]
    b = posterior(p, obs)
    # Bayes by hand: prior * product of softmax probabilities
    util = p.utilities()
    lik1 = np.exp(util[:, 1]) / np.exp(util).sum(1)
    lik2 = np.exp(util[:, 3]) / np.exp(util[:, [0, 3, 4]]).sum(1)
    want = p.prior * lik1 * lik2
    np.testing.assert_allclose(b, want / want.sum(), rtol=1e-12)
    step1 = posterior(p, obs[:1])
    p2 = ChoiceProblem(p.features, p.thetas, step1, p.beta)
    np.testing.assert_allclose(posterior(p2, obs[1:]), b, rtol=1e-10)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(-5, 5))
def test_posterior_invariant_to_common_feature_shift(seed, shift):
    """Adding the same vector to every option's features adds theta.c to every utility: the softmax ignores it."""
    rng = numpy_generator(seed)
    p = _random_problem(rng)
    obs = [Observation(int(rng.integers(p.n_options)), np.ones(p.n_options, dtype=bool))]
    shifted = ChoiceProblem(p.features + shift, p.thetas, p.prior, p.beta)
    np.testing.assert_allclose(posterior(shifted, obs), posterior(p, obs), atol=1e-10)


def test_singleton_choice_set_carries_no_information():
    p = _random_problem(numpy_generator(1))
    np.testing.assert_allclose(posterior(p, [Observation(2, p.mask([2]))]), p.prior, atol=1e-12)


def test_choice_outside_assumed_set_is_evaluated_over_set_plus_choice():
    p = _random_problem(numpy_generator(2))
    b_out = posterior(p, [Observation(5, p.mask([0, 1]))])
    b_union = posterior(p, [Observation(5, p.mask([0, 1, 5]))])
    np.testing.assert_allclose(b_out, b_union, rtol=1e-12)


def test_logprobs_normalised_and_entropy_known_values():
    util = numpy_generator(3).standard_normal((4, 7))
    mask = np.array([1, 0, 1, 1, 0, 1, 1], bool)
    lp = choice_logprobs(util, mask)
    np.testing.assert_allclose(np.exp(lp).sum(axis=1), 1.0, rtol=1e-12)
    assert np.isneginf(lp[:, ~mask]).all()
    assert entropy(np.full(8, 1 / 8)) == pytest.approx(np.log(8))
    assert entropy(np.array([1.0, 0.0])) == 0.0


def test_robot_choice_and_regret():
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.6]])
    thetas = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert robot_choice(feats, thetas, np.array([0.5, 0.5])) == 2  # 0.6 > 0.5 under the mean theta
    assert regret(feats, thetas[0], 2) == pytest.approx(0.4)


@pytest.mark.parametrize("d, k", [(1, 2), (2, 16), (3, 32), (5, 10)])
def test_unit_directions_on_sphere(d, k):
    dirs = unit_directions(d, k)
    assert dirs.shape[1] == d
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0)


@pytest.mark.parametrize("bad", [
    dict(features=np.zeros((0, 2))),
    dict(features=np.zeros((2, 3))),  # mismatched with thetas [K, 2]
    dict(prior=np.array([1.0, -1.0])),
    dict(prior=np.array([1.0])),
    dict(beta=0.0),
    dict(features=np.array([[np.nan, 0.0], [0.0, 1.0]])),
])
def test_problem_validation_is_a_user_error(bad):
    args = dict(features=np.eye(2), thetas=np.eye(2), prior=np.array([0.5, 0.5]), beta=1.0) | bad
    with pytest.raises(UserInputError):
        ChoiceProblem(**args)


def test_empty_and_malformed_choice_sets_rejected():
    p = _random_problem(numpy_generator(4))
    with pytest.raises(UserInputError, match="empty"):
        posterior(p, [Observation(0, np.zeros(p.n_options, bool))])
    with pytest.raises(UserInputError, match="shape"):
        posterior(p, [Observation(0, np.ones(p.n_options + 1, bool))])
    with pytest.raises(UserInputError, match="outside"):
        posterior(p, [Observation(p.n_options, np.ones(p.n_options, bool))])


def test_gridworld_trajectory_count_equals_walk_count():
    """Distinct trajectories = walks of length T from the start in the move graph (stay included): (A^T 1)[start]."""
    world = Gridworld(("S.M", ".#G"), 4)
    paths = world.trajectories()
    nxt = world.neighbours()
    adj = np.zeros((nxt.shape[0],) * 2)
    for s, row in enumerate(nxt):
        for t in row[row >= 0]:
            adj[s, t] = 1
    assert len(paths) == int(np.linalg.matrix_power(adj, 4).sum(axis=1)[world.start()])
    assert len({tuple(p) for p in paths}) == len(paths)
    assert not np.isin(paths, [world.cell(1, 1)]).any()  # the wall is never entered


def test_gridworld_features_and_sets():
    scn = builtin("gridworld", 1.0, 16, 3, 0)
    paths, world = scn.meta["paths"], scn.meta["world"]
    direct = int(np.flatnonzero((paths[:, 1:] == [1, 2, 3, 4, 4, 4]).all(axis=1))[0])
    np.testing.assert_array_equal(scn.problem.features[direct], [3.0, 3.0])  # 3 steps at the goal, 3 in mud
    assert scn.true[direct] and scn.assumed.all()
    assert (scn.true == avoiding(paths, [world.cell(1, c) for c in range(5)])).all()
    cor = corrections(paths, direct, 1)
    assert cor[direct] and ((paths[cor] != paths[direct]).sum(axis=1) <= 1).all()


def test_compressed_likelihood_equals_plain_model():
    scn = builtin("gridworld", 2.0, 16, 4, 1)
    thetas = unit_directions(2, 50)
    fast = sampler.observation_loglik(scn.problem.features, 2.0, scn.observations)(thetas)
    slow = sampler.observation_loglik(scn.problem.features, 2.0, scn.observations, compress=False)(thetas)
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-10)


def test_sampler_matches_exact_gridworld_posterior():
    """Must show: MCMC over continuous theta agrees with exact enumeration (TV < 0.02) on a gridworld posterior."""
    scn = builtin("gridworld", 1.0, 16, 3, 0)
    p = scn.problem
    loglik = sampler.observation_loglik(p.features, p.beta, scn.observations)
    samples, acceptance = sampler.sample_sphere_posterior(loglik, 2, numpy_generator(0, 2), chains=64, steps=2000)
    exact = sampler.exact_angle_posterior(sampler.observation_loglik(p.features, p.beta, scn.observations,
                                                                     compress=False), bins=36)
    tv = sampler.total_variation(exact, sampler.angle_histogram(samples, 36))
    assert 0.2 < acceptance < 0.9
    assert tv < 0.02
    assert exact.max() > 2 / 36  # the posterior is informative, so the check is not trivially uniform


def test_sampler_detects_a_wrong_target():
    """The TV check can fail: samples from the prior (no data) are far from a peaked posterior."""
    scn = builtin("gridworld", 3.0, 16, 8, 0)
    p = scn.problem
    exact = sampler.exact_angle_posterior(sampler.observation_loglik(p.features, p.beta, scn.observations))
    flat, _ = sampler.sample_sphere_posterior(lambda t: np.zeros(len(t)), 2, numpy_generator(0), steps=600)
    assert sampler.total_variation(exact, sampler.angle_histogram(flat, 36)) > 0.2


def test_sampler_posterior_mean_in_three_dimensions():
    """d = 3: the MCMC posterior mean matches Fibonacci-lattice quadrature of the exact posterior."""
    rng = numpy_generator(11)
    feats = rng.standard_normal((6, 3))
    truth = np.array([0.6, -0.48, 0.64])
    probs = np.exp(2.0 * feats @ truth)
    full = np.ones(6, bool)
    obs = [Observation(int(c), full) for c in rng.choice(6, size=6, p=probs / probs.sum())]
    loglik = sampler.observation_loglik(feats, 2.0, obs)
    samples, _ = sampler.sample_sphere_posterior(loglik, 3, numpy_generator(12), chains=64, steps=1500)
    exact = sampler.exact_sphere_mean(sampler.observation_loglik(feats, 2.0, obs, compress=False), 3)
    assert np.linalg.norm(exact) > 0.3  # informative: the mean is far from the sphere's centre
    assert np.linalg.norm(samples.mean(axis=0) - exact) < 0.03
