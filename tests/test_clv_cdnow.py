"""Reproduce the published CDNOW results through our own pipeline.

Ingest of ``data/cdnow/CDNOW_sample.txt`` with ``params/cdnow.yaml``, our summary in weeks with
calibration through 1997-09-30, our adapter. Published (Fader, Hardie & Lee 2005, see
../shared/data/README.md): BG/NBD r = 0.243, alpha = 4.414, a = 0.793, b = 2.426,
log-likelihood -9582.4; Gamma-Gamma p = 6.25, q = 3.74, v = 15.44.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from workbench import config, engine
from workbench.ingest.pipeline import ingest
from workbench.models.features import customer_features, end_of_day
from workbench.models.summary import holdout_activity, rfm_summary, sufficient_statistics
from workbench.models.value import CustomerValueModel
from workbench.params import load_params

BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
LOG_LIKELIHOOD = -9582.4
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}
CALIBRATION_END = end_of_day(date(1997, 9, 30))


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cdnow")
    params = load_params(config.PARAMS_DIR / "cdnow.yaml")
    con = engine.connect("duckdb", threads=1)
    ingest(params, run_dir, con=con, progress=False)
    return engine.read_parquet(con, run_dir / "data" / "orders.parquet")


@pytest.fixture(scope="module")
def model(cdnow):
    return CustomerValueModel(time_unit="weeks").fit(customer_features(cdnow, CALIBRATION_END))


def test_summary_in_weeks_matches_the_papers_data(cdnow):
    summary = rfm_summary(cdnow, CALIBRATION_END, "weeks").to_pandas()
    assert len(summary) == 2357
    assert (summary["frequency"] > 0).sum() == 946
    # a 1997-01-01 buyer observed through 1997-09-30: T = 272 days = 38.86 weeks
    assert summary["T"].max() == pytest.approx(272 / 7)
    assert len(sufficient_statistics(summary, "weeks")) == 1016


@pytest.mark.parametrize("backend", ["lifetimes", "scipy"])
def test_bgnbd_reproduces_published_parameters(cdnow, backend):
    stats = sufficient_statistics(rfm_summary(cdnow, CALIBRATION_END, "weeks"), "weeks")
    model = CustomerValueModel(time_unit="weeks", backend=backend).fit(
        customer_features(cdnow, CALIBRATION_END)
    )
    bg = model.bgnbd_
    assert bg.kind_ == "bgnbd" and bg.n_rows_ == len(stats) == 1016
    for name, published in BGNBD.items():
        assert bg.params_[name] == pytest.approx(published, rel=0.01), name
    assert bg.log_likelihood_ == pytest.approx(LOG_LIKELIHOOD, abs=0.5)
    assert bg.warnings_ == []


def test_gamma_gamma_reproduces_published_parameters(model):
    gg = model.gamma_gamma_
    assert gg.kind_ == "gamma_gamma" and gg.n_customers_ == 946
    for name, published in GAMMA_GAMMA.items():
        assert gg.params_[name] == pytest.approx(published, rel=0.02), name


def test_summary_and_holdout_equal_lifetimes_utilities(cdnow):
    """Per customer, our calibration summary and holdout counts equal lifetimes' own."""
    import pandas as pd
    from lifetimes.utils import calibration_and_holdout_data

    raw = pd.read_csv(
        config.DATA_DIR / "cdnow" / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "customer_id", "date", "cds", "dollars"],
    )
    raw["date"] = pd.to_datetime(raw["date"].astype(str), format="%Y%m%d")
    raw["customer_id"] = raw["customer_id"].astype(str).str.zfill(4)
    ref = calibration_and_holdout_data(
        raw,
        "customer_id",
        "date",
        calibration_period_end="1997-09-30",
        observation_period_end="1998-06-30",
        freq="D",
        freq_multiplier=7,
    )
    ours = rfm_summary(cdnow, CALIBRATION_END, "weeks").to_pandas().set_index("customer_id")
    actual = holdout_activity(cdnow, CALIBRATION_END, 273).to_pandas().set_index("customer_id")
    ours = ours.join(actual).fillna({"holdout_order_days": 0}).loc[ref.index]
    np.testing.assert_array_equal(ours["frequency"], ref["frequency_cal"])
    np.testing.assert_allclose(ours["recency"], ref["recency_cal"])
    np.testing.assert_allclose(ours["T"], ref["T_cal"])
    np.testing.assert_array_equal(ours["holdout_order_days"], ref["frequency_holdout"])


def test_holdout_prediction(cdnow, model):
    """39-week holdout: 1,653 repeat purchases predicted (lifetimes gives the same), 1,882 made."""
    feats = customer_features(cdnow, CALIBRATION_END).to_pandas()
    scores = CustomerValueModel(horizon_days=273, time_unit="weeks").fit(feats).predict(feats)
    actual = holdout_activity(cdnow, CALIBRATION_END, 273).to_pandas()
    assert scores.notna().all().all()
    assert scores["expected_orders"].sum() == pytest.approx(1653.41, abs=0.05)
    assert actual["holdout_order_days"].sum() == 1882
    assert np.all((scores["churn_risk"] >= 0) & (scores["churn_risk"] <= 1))
    assert np.all(scores["p_alive"] >= 1 - scores["churn_risk"] - 1e-12)
