"""The blender's logistic regression: scikit-learn's objective, computed by a compiled pass."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import sparse
from sklearn._loss.loss import HalfBinomialLoss
from sklearn.linear_model import LogisticRegression
from sklearn.linear_model._linear_loss import LinearModelLoss

from workbench.models import logistic
from workbench.models.interest_blend import Blender, hat_design, knots_for


@pytest.fixture(scope="module")
def problem():
    """A design like the blender's: two always-on features, a masked one, a single-knot one."""
    rng = np.random.default_rng(3)
    n = 6000
    x = {
        "a": rng.normal(size=n).astype(np.float32),
        "b": rng.exponential(size=n).astype(np.float32),
        "c": rng.uniform(size=n).astype(np.float32),
        "d": np.ones(n, np.float32),
    }
    masks = {"a": None, "b": None, "c": rng.random(n) < 0.4, "d": rng.random(n) < 0.5}
    logit = -2 + np.sin(2 * x["a"]) + 0.5 * x["b"] + np.where(masks["c"], 2 * x["c"], 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    weight = rng.uniform(0.5, 2.0, n)
    b = Blender()
    b.features_ = list(x)
    b.knots_ = {k: knots_for(v if masks[k] is None else v[masks[k]]) for k, v in x.items()}
    assert len(b.knots_["d"]) == 1
    return b._design(x, masks, n), x, masks, y, weight, b


def _csr(b, x, masks, n):
    """The design as the blender built it before: a CSR matrix of hat_design entries."""
    rows, cols, vals, offset = [], [], [], 0
    for name in b.features_:
        knots, mask = b.knots_[name], masks[name]
        r, c, v = hat_design(x[name] if mask is None else x[name][mask], knots)
        base = np.arange(n) if mask is None else np.flatnonzero(mask)
        rows.append(base[r])
        cols.append(c + offset)
        vals.append(v)
        offset += len(knots)
    return sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, offset)
    )


def test_the_compact_design_is_the_hat_basis(problem):
    design, x, masks, _, _, b = problem
    expected = _csr(b, x, masks, design.shape[0])
    assert (abs(design.to_csr() - expected)).max() == 0
    coef = np.random.default_rng(0).normal(size=design.shape[1])
    np.testing.assert_allclose(design.raw(coef, 0.3), expected @ coef + 0.3, atol=1e-13)


def test_loss_and_gradient_equal_scikit_learns(problem):
    design, _, _, y, weight, _ = problem
    X = design.to_csr()
    theta = np.random.default_rng(1).normal(size=design.shape[1] + 1)
    rows = np.flatnonzero(np.arange(len(y)) % 3 > 0)
    for C, subset in ((0.1, None), (1.0, rows)):
        r = np.arange(len(y)) if subset is None else subset
        value, grad = logistic.objective(design, y, weight, C, subset)(theta)
        loss = LinearModelLoss(base_loss=HalfBinomialLoss(), fit_intercept=True)
        l2 = 1.0 / (C * weight[r].sum())
        ref_value, ref_grad = loss.loss_gradient(
            theta, X[r], y[r].astype(np.float64), weight[r], l2
        )
        np.testing.assert_allclose(value, ref_value, rtol=1e-12)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-14)


def test_fit_reaches_scikit_learns_optimum(problem):
    design, _, _, y, weight, _ = problem
    X = design.to_csr()
    for C in (0.01, 1.0):
        coef, intercept = logistic.fit_logistic(design, y, weight, C)
        lr = LogisticRegression(C=C, tol=1e-5, max_iter=1000).fit(X, y, sample_weight=weight)
        f = logistic.objective(design, y, weight, C)
        ours, theirs = f(np.r_[coef, intercept])[0], f(np.r_[lr.coef_[0], lr.intercept_])[0]
        assert ours <= theirs * (1 + 1e-7)
        logit = design.raw(coef, intercept)
        ref = X @ lr.coef_[0] + lr.intercept_[0]
        assert np.abs(logit - ref).max() < 0.01
        # a warm start from the solution stays there
        again = logistic.fit_logistic(design, y, weight, C, start=(coef, intercept))
        assert f(np.r_[again[0], again[1]])[0] <= ours * (1 + 1e-12)


def test_results_do_not_depend_on_the_thread_count(problem):
    design, _, _, y, weight, _ = problem
    before = numba.get_num_threads()
    try:
        fits = []
        for threads in (1, before):
            numba.set_num_threads(threads)
            fits.append(logistic.fit_logistic(design, y, weight, 0.1))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(fits[0][0], fits[1][0])
    assert fits[0][1] == fits[1][1]
