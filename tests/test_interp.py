"""The compiled interpolation equals numpy.interp bit for bit (the blender relies on it)."""

import numpy as np
import pytest

from workbench.models.interp import Interpolator


@pytest.mark.parametrize("knots", [2, 7, 260, 5000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interpolator_equals_numpy_interp_bit_for_bit(knots, dtype):
    rng = np.random.default_rng(knots)
    xp = np.sort(rng.normal(0, 3, knots))
    xp = np.unique(np.r_[xp, xp[0] + 1e-12])  # two knots closer than a grid cell
    fp = np.cumsum(rng.random(len(xp)))  # isotonic-like, with a flat run below
    fp[: len(fp) // 3] = fp[0]
    x = np.r_[
        rng.normal(0, 4, 100_000),
        xp,  # exactly on every knot
        (xp[:-1] + xp[1:]) / 2,
        [np.nan, np.inf, -np.inf, xp[0] - 1, xp[-1] + 1, 0.0, -0.0],
    ].astype(dtype)
    got = Interpolator(xp, fp)(x)
    want = np.interp(x, xp, fp)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.float64
    low = Interpolator(xp, fp)(x.reshape(-1, 1), floor=fp[len(fp) // 2], dtype=np.float32)
    np.testing.assert_array_equal(
        low, np.maximum(want, fp[len(fp) // 2]).astype(np.float32).reshape(-1, 1)
    )


def test_interpolator_falls_back_to_numpy_on_a_single_or_repeated_knot():
    x = np.linspace(-2, 2, 9)
    for xp, fp in (([0.5], [3.0]), ([0.0, 0.0, 1.0], [1.0, 2.0, 3.0])):
        got = Interpolator(np.array(xp), np.array(fp))(x)
        np.testing.assert_array_equal(got, np.interp(x, xp, fp))
    ints = np.arange(-3, 4)
    np.testing.assert_array_equal(
        Interpolator([0.0, 1.0], [0.0, 2.0])(ints), np.interp(ints, [0, 1], [0, 2])
    )
