"""BG/NBD and Gamma-Gamma: recovery of planted parameters, weighted fits, predictions."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from workbench.models import bgnbd
from workbench.models.backends import LifetimesBackend, ScipyBackend
from workbench.models.clv import BGNBDModel, GammaGammaModel
from workbench.models.features import customer_features, end_of_day
from workbench.models.simulate import simulate_bgnbd, simulate_spend
from workbench.models.summary import coarsen_statistics, spend_statistics, sufficient_statistics
from workbench.models.value import CustomerValueModel

TRUTH = {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}  # alpha in weeks
GG_TRUTH = {"p": 5.0, "q": 4.0, "v": 36.0}


def _histories(seed: int, n: int = 10_000, future: float = 0.0) -> pd.DataFrame:
    """Simulated customers observed 26-52 weeks, times on whole days like real data."""
    rng = np.random.default_rng(seed)
    T = np.round(rng.uniform(26, 52, n) * 7) / 7
    d = simulate_bgnbd(n, **TRUTH, T=T, future=future, random_state=rng)
    d["recency"] = np.minimum(np.round(d["recency"] * 7) / 7, d["T"])
    return d


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bgnbd_recovers_planted_parameters(seed):
    stats = sufficient_statistics(_histories(seed)[["frequency", "recency", "T"]])
    model = BGNBDModel().fit(stats)
    assert model.kind_ == "bgnbd" and model.method_ == "lifetimes.BetaGeoFitter"
    assert model.n_customers_ == 10_000 and model.n_rows_ < 10_000
    for name in ("r", "alpha"):
        assert model.params_[name] == pytest.approx(TRUTH[name], rel=0.10), name
    for name in ("a", "b"):
        assert model.params_[name] == pytest.approx(TRUTH[name], rel=0.20), name
    assert model.at_boundary_ == [] and model.warnings_ == []


@pytest.mark.parametrize("seed", [1, 2])
def test_gamma_gamma_recovers_planted_parameters(seed):
    rng = np.random.default_rng(seed)
    freq = rng.integers(1, 12, size=8_000)
    m = simulate_spend(freq, **GG_TRUTH, random_state=rng)
    stats, how = spend_statistics(pd.DataFrame({"frequency": freq, "monetary": m}))
    assert how == "exact to 10^-2"
    model = GammaGammaModel().fit(stats, store_mean_spend=float(m.mean()))
    assert model.kind_ == "gamma_gamma"
    # p and q trade off along a ridge; the mean spend p v / (q - 1) is pinned down tightly
    for name in ("p", "q", "v"):
        assert model.params_[name] == pytest.approx(GG_TRUTH[name], rel=0.25), name
    p, q, v = (model.params_[k] for k in ("p", "q", "v"))
    assert p * v / (q - 1) == pytest.approx(5.0 * 36.0 / 3.0, rel=0.05)


def test_weighted_fit_equals_per_customer_fit():
    d = _histories(7, n=4_000)[["frequency", "recency", "T"]]
    weighted = sufficient_statistics(d)
    assert weighted["weight"].sum() == len(d) and len(weighted) < len(d)
    per_customer = d.assign(weight=1.0)
    a = BGNBDModel().fit(weighted)
    b = BGNBDModel().fit(per_customer)
    for name in TRUTH:
        assert a.params_[name] == pytest.approx(b.params_[name], rel=1e-4), name
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, abs=1e-6)


def test_backends_agree_on_fit_and_predictions():
    d = _histories(11, n=5_000)
    stats = sufficient_statistics(d[["frequency", "recency", "T"]])
    lib = BGNBDModel(backend="lifetimes").fit(stats)
    own = BGNBDModel(backend="scipy").fit(stats)
    for name in TRUTH:
        assert own.params_[name] == pytest.approx(lib.params_[name], rel=1e-3), name
    x, t_x, T = (d[c].to_numpy() for c in ("frequency", "recency", "T"))
    params = lib.params_
    np.testing.assert_allclose(
        LifetimesBackend().bgnbd_p_alive(params, x, t_x, T),
        ScipyBackend().bgnbd_p_alive(params, x, t_x, T),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        LifetimesBackend().bgnbd_expected(params, 13.0, x, t_x, T),
        ScipyBackend().bgnbd_expected(params, 13.0, x, t_x, T),
        rtol=1e-8,
    )
    gg = {"p": 6.25, "q": 3.74, "v": 15.44}
    np.testing.assert_allclose(
        LifetimesBackend().gg_expected_spend(gg, x, t_x + 1),
        ScipyBackend().gg_expected_spend(gg, x, t_x + 1),
        rtol=1e-12,
    )


def test_predictions_match_simulated_future():
    """With the planted parameters, P(no order), E[orders] and P(alive) match what happens."""
    d = _histories(5, n=40_000, future=13.0)
    model = BGNBDModel().fit(sufficient_statistics(d[["frequency", "recency", "T"]]))
    model.params_ = dict(TRUTH)
    pred = model.predict(13.0, d["frequency"], d["recency"], d["T"])
    d = d.assign(bucket=np.minimum(d["frequency"], 5))
    for bucket, sel in d.groupby("bucket"):
        p, n = pred.loc[sel.index], len(sel)
        quiet = (sel["future_purchases"] == 0).to_numpy()
        # within 3.5 standard errors of the simulated outcome
        se_quiet = np.sqrt(quiet.mean() * (1 - quiet.mean()) / n)
        assert p["p_no_order"].mean() == pytest.approx(quiet.mean(), abs=3.5 * se_quiet), bucket
        se_orders = sel["future_purchases"].std() / np.sqrt(n)
        assert p["expected_orders"].mean() == pytest.approx(
            sel["future_purchases"].mean(), abs=3.5 * se_orders
        ), bucket
        if bucket > 0:
            alive = sel["alive_at_T"].to_numpy()
            se_alive = np.sqrt(alive.mean() * (1 - alive.mean()) / n)
            assert p["p_alive"].mean() == pytest.approx(alive.mean(), abs=3.5 * se_alive), bucket


def test_churn_formula_for_a_new_customer_is_the_nbd_zero_probability():
    params = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    p0 = bgnbd.p_no_purchase(params, 10.0, np.array([0]), np.array([0.0]), np.array([0.0]))
    assert p0[0] == pytest.approx((4.414 / 14.414) ** 0.243)


def test_synthetic_shop_recovers_planted_parameters(tmp_path):
    """The synthetic shop's planted BG/NBD comes back through our features and adapter."""
    from workbench import engine
    from workbench.synth import generate

    info = generate(
        6_000, 3, tmp_path / "shop", days=730, events=False, progress=False, return_rate=0.0
    )
    truth = json.loads((tmp_path / "shop" / "truth" / "truth.json").read_text())
    con = engine.connect("duckdb", threads=1)
    orders = engine.read_parquet(con, info["paths"]["orders"])
    orders = orders.mutate(revenue=orders.quantity * orders.unit_price, is_return=False)
    last_day = date.fromisoformat(truth["end"][:10]) - timedelta(days=1)
    feats = customer_features(orders, end_of_day(last_day))
    model = CustomerValueModel(time_unit="days").fit(feats)
    fitted = model.bgnbd_.params_
    for name in ("r", "alpha"):
        assert fitted[name] == pytest.approx(truth["bgnbd"][name], rel=0.15), name
    for name in ("a", "b"):
        assert fitted[name] == pytest.approx(truth["bgnbd"][name], rel=0.35), name
    gg, planted = model.gamma_gamma_.params_, truth["gamma_gamma"]
    mean_spend = gg["p"] * gg["v"] / (gg["q"] - 1)
    assert mean_spend == pytest.approx(planted["p"] * planted["v"] / (planted["q"] - 1), rel=0.1)


def test_coarsened_statistics_bound_the_rows_and_keep_the_fit():
    """Beyond max_rows, day counts are rounded to a grid: rows bounded, parameters close."""
    rng = np.random.default_rng(21)
    T = rng.integers(200, 1100, 20_000).astype(float)
    d = simulate_bgnbd(20_000, 0.3, 35.0, 0.7, 2.2, T=T, random_state=rng)
    days = pd.DataFrame(
        {
            "frequency": d["frequency"],
            "repeat_span_days": np.floor(d["recency"]).astype("int64"),
            "tenure_days": d["T"].astype("int64"),
        }
    )
    exact = sufficient_statistics(days, "days")
    coarse, how = coarsen_statistics(exact, 8_000, "days")
    assert len(exact) > 8_000 >= len(coarse) and how == "rounded to 14 days"
    assert coarse["weight"].sum() == exact["weight"].sum() == 20_000
    assert (coarse["recency"] <= coarse["T"]).all()
    same, how = coarsen_statistics(exact, len(exact), "days")
    assert how == "exact (whole days)" and same is exact
    a = BGNBDModel(backend="scipy").fit(exact)
    b = BGNBDModel(backend="scipy").fit(coarse)
    for name in ("r", "alpha", "a", "b"):
        assert b.params_[name] == pytest.approx(a.params_[name], rel=0.03), name
