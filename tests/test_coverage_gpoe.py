"""Coverage (#19): the fusion's prior checks, and fusion rules in closed form for two experts (kernel and
reference)."""
from __future__ import annotations

import numpy as np
import pytest

from toolbox.core.errors import UserInputError
from toolbox.gpoe import fusion


def test_prior_checks():
    mean, var = np.zeros((2, 3)), np.ones((2, 3))
    with pytest.raises(UserInputError, match="prior_var must be finite and > 0"):
        fusion.fuse(mean, var, np.array([1.0, 0.0, 1.0]))
    with pytest.raises(UserInputError, match="prior_mean must be finite"):
        fusion.fuse(mean, var, 1.0, prior_mean=np.nan)
    with pytest.raises(UserInputError, match="eps must be finite and >= 0, got -1"):
        fusion.fuse_reference(mean, var, 1.0, eps=-1.0)
    with pytest.raises(UserInputError, match="unknown fusion rule 'median'"):
        fusion.fuse(mean, var, 1.0, "median")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_two_experts_in_closed_form(dtype):
    """PoE: precision 1/v1 + 1/v2, mean (m1/v1 + m2/v2) / precision; gPoE with uniform weights 1/2 each: precision
    (1/v1 + 1/v2) / 2, same mean. The kernel (when built) and the reference agree."""
    m = np.array([[1.0, -2.0], [3.0, 0.5]], dtype=dtype)
    v = np.array([[0.5, 2.0], [1.5, 0.25]], dtype=dtype)
    prec = 1 / v[0].astype(float) + 1 / v[1].astype(float)
    mean = (m[0] / v[0] + m[1] / v[1]).astype(float) / prec
    tol = 1e-6 if dtype == np.float32 else 1e-12
    for fuse in (fusion.fuse, fusion.fuse_reference):
        poe = fuse(m, v, 10.0, "poe")
        np.testing.assert_allclose(poe.var, 1 / prec, rtol=tol)
        np.testing.assert_allclose(poe.mean, mean, rtol=tol)
        uniform = fuse(m, v, 10.0, "gpoe-uniform")
        np.testing.assert_allclose(uniform.var, 2 / prec, rtol=tol)
        np.testing.assert_allclose(uniform.mean, mean, rtol=tol)
        assert not poe.fallback.any()
