"""Gradients against central finite differences in float64, for every loss and option set."""

from __future__ import annotations

import numpy as np
import pytest
from problems import SPECS, all_cases, assert_close, call, loss_shape, make_problem

STEP = 1e-6  # central differences: truncation ~STEP**2, rounding ~1e-16/STEP; both far below RTOL
RTOL = 1e-6


def central_differences(f, x):
    grad = np.empty_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = STEP
        grad[i] = (f(x + e) - f(x - e)) / (2 * STEP)
    return grad


# Small shapes keep the 2*size loss evaluations cheap; 5 classes and 3 x 7 elements still put
# every row on both sides of each kink and cover the ignored rows.
@pytest.mark.parametrize(("name", "case"), all_cases())
def test_gradient_matches_finite_differences(backend, rng, name, case):
    shape = (4, 5) if SPECS[name].rowwise else (3, 7)
    x, t, opts = make_problem(name, shape, rng, case, min_gap=1e-3)
    g = rng.uniform(0.5, 2.0, loss_shape(name, shape))  # per-loss weights exercise grad_output too

    def weighted_loss(z):
        return float(np.sum(g * call(name, "loss", z, t, reduction="none", **opts)))

    grad = call(name, "grad", x, t, reduction="none", grad_output=g, **opts)
    assert_close(grad, central_differences(weighted_loss, x), RTOL)


@pytest.mark.parametrize(("name", "case"), all_cases())
def test_mean_gradient_matches_finite_differences(backend, rng, name, case):
    shape = (3, 4) if SPECS[name].rowwise else (2, 5)
    x, t, opts = make_problem(name, shape, rng, case, min_gap=1e-3)

    def mean_loss(z):
        return float(call(name, "loss", z, t, reduction="mean", **opts))

    grad = call(name, "grad", x, t, reduction="mean", **opts)
    assert_close(grad, central_differences(mean_loss, x), RTOL)


# Long rows (the scan over the ordered classes in the row kernels) and the class axis first (tiles).
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize(("shape", "axis"), [((3, 40), -1), ((40, 3), 0)])
def test_wasserstein_gradient_through_the_cumulative_sum(backend, rng, p, shape, axis):
    x, t, opts = make_problem("wasserstein_loss", shape, rng, {"p": p}, axis=axis, min_gap=1e-3)
    g = rng.uniform(0.5, 2.0, loss_shape("wasserstein_loss", shape, axis))

    def weighted_loss(z):
        return float(np.sum(g * call("wasserstein_loss", "loss", z, t, axis=axis, reduction="none", **opts)))

    grad = call("wasserstein_loss", "grad", x, t, axis=axis, reduction="none", grad_output=g, **opts)
    assert_close(grad, central_differences(weighted_loss, x), RTOL)
