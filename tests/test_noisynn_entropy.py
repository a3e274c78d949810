"""NoisyNN task entropy: the closed forms against the note's reference table and an explicit k x k oracle, and the
Gaussian estimator on the scalar linear-Gaussian model."""
import math
import warnings

import numpy as np
import pytest

from toolbox.core.errors import UserInputError
from toolbox.noisynn import entropy as E


@pytest.mark.parametrize("k,want", [(2, 1.098612), (10, 21.581057), (14, 35.204653), (16, 42.498200),
                                    (24, 74.034144)])
def test_optimal_q_reference_table(k, want):
    assert E.entropy_change("optimal", k) == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("k,alpha,want", [(14, 0.3, 4.993456), (10, 0.3, 3.566959), (16, 0.1, 1.685768),
                                          (15, 0.5, 9.704061)])
def test_circulant_reference_table(k, alpha, want):
    assert E.entropy_change("linear", k, alpha) == pytest.approx(want, abs=1e-6)
    assert math.exp(-E.entropy_change("linear", 14, 0.3)) == pytest.approx(6.782183e-3, rel=1e-6)


def test_singular_circulant_is_infinite_with_a_warning():
    with pytest.warns(E.SingularTransformWarning, match="singular"):
        assert E.entropy_change("linear", 16, 0.5) == math.inf


@pytest.mark.parametrize("k", [1, 2, 3, 7, 12])
@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.3, 0.7, 0.9, 1.0, 1.5, -0.4])
def test_closed_forms_match_explicit_matrices(k, alpha):
    want = E.entropy_change_matrix(E.q_matrix("linear", k, alpha))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = E.entropy_change("linear", k, alpha)
    if math.isinf(want):
        assert math.isinf(got)
    else:
        assert got == pytest.approx(want, abs=1e-9)
    assert E.entropy_change("optimal", k) == pytest.approx(E.entropy_change_matrix(E.q_matrix("optimal", k)),
                                                           abs=1e-9)


def test_optimal_q_rows_sum_to_one_and_huge_k_needs_no_matrix():
    k = 9
    assert np.allclose((np.eye(k) + E.q_matrix("optimal", k)).sum(1), 1.0)
    assert E.entropy_change("optimal", 1_200_000) == pytest.approx(1_199_999 * math.log(1_200_001))
    assert math.isfinite(E.entropy_change("linear", 1_200_001, 0.3))


def test_bad_k_is_a_user_error():
    with pytest.raises(UserInputError):
        E.entropy_change("optimal", 0)
    with pytest.raises(UserInputError):
        E.entropy_change("gaussian", 4)


def test_scalar_gaussian_entropy_change_matches_the_note():
    result = E.scalar_gaussian_experiment(1.0, n=100_000, seed=0)
    assert result["delta_S_closed_form"] == pytest.approx(-0.202733, abs=1e-6)
    assert result["delta_S_estimate"] == pytest.approx(-0.2027, abs=0.01)


@pytest.mark.parametrize("variance,want", [(0.1, -0.043506), (0.5, -0.143841), (4.0, -0.293893)])
def test_gaussian_noise_is_harmful_for_every_variance(variance, want):
    assert E.scalar_gaussian_delta_s(variance) == pytest.approx(want, abs=1e-6)
    assert E.scalar_gaussian_experiment(variance, n=50_000, seed=1)["delta_S_estimate"] < 0


def test_multivariate_gaussian_conditional_entropy_closed_form():
    gen = np.random.default_rng(3)
    n, a = 200_000, np.array([[1.0, -0.5], [0.3, 2.0]])
    z = gen.standard_normal((n, 2))
    y = z @ a.T + 0.5 * gen.standard_normal((n, 2))  # Sigma_Y|Z = 0.25 I
    want = 0.5 * (2 * math.log(2 * math.pi * math.e) + math.log(0.25 ** 2))
    assert E.gaussian_conditional_entropy(y, z) == pytest.approx(want, abs=0.01)
