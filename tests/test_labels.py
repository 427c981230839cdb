"""Life Cycle, Importance, Price Sensitivity and Behaviour: rules and data-driven thresholds."""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import numpy as np
import pandas as pd
import pytest

from workbench import engine
from workbench.models.behaviour import BehaviourModel, trend_period_days
from workbench.models.features import customer_features, end_of_day
from workbench.models.importance import ImportanceModel
from workbench.models.lifecycle import LifeCycleModel
from workbench.models.price import PriceSensitivityModel

from .test_features import write_orders

AS_OF_DAY = date(2025, 6, 30)
AS_OF = end_of_day(AS_OF_DAY)
#: Background customers: intervals scale * these multipliers (CV 0.45, mean 1).
PATTERN = [0.5, 1.5, 1.0, 0.6, 1.4]
#: A realistic quarterly buyer over two years: about 91 days apart, give or take two weeks.
QUARTERLY = [70, 120, 85, 100, 75, 110, 95, 80]
YEARLY = [360, 370]


def history(cid: str, days_since_last: int, intervals: list[int]) -> list[tuple]:
    """Order rows of one customer whose last order was ``days_since_last`` days ago."""
    last = AS_OF_DAY - timedelta(days=days_since_last)
    days = [last]
    for gap in reversed(intervals):
        days.insert(0, days[0] - timedelta(days=gap))
    return [(f"{cid}-{i}", cid, f"{d} 12:00", "P", 1, 25.0, False) for i, d in enumerate(days)]


def store_rows() -> list[tuple]:
    rows = []
    for k in range(40):
        scale = 20 + k  # mean intervals 20 .. 59 days
        rows += history(f"bg{k:02d}", 5 + k, [round(scale * m) for m in PATTERN])
    return rows


@pytest.fixture
def features_for(tmp_path):
    con = engine.connect("duckdb", threads=1)

    def _features(extra: list[tuple]) -> ibis.Table:
        path = write_orders(tmp_path / f"orders{len(extra)}.parquet", store_rows() + extra)
        return customer_features(engine.read_parquet(con, path), AS_OF)

    return _features


def labels_of(model: LifeCycleModel, feats: ibis.Table) -> dict[str, str]:
    out = feats.select("customer_id", life_cycle=model.label(feats)).to_pandas()
    return dict(zip(out["customer_id"], out["life_cycle"], strict=True))


def test_quarterly_buyer_slips_after_four_months(features_for):
    extra = (
        history("q_95", 95, QUARTERLY)
        + history("q_122", 122, QUARTERLY)  # four months
        + history("q_200", 200, QUARTERLY)
        + history("q_20", 20, QUARTERLY)
    )
    feats = features_for(extra)
    model = LifeCycleModel().fit(feats)
    assert 0.35 < model.cv_prior_ < 0.6  # the store's typical regularity (PATTERN: 0.45)
    labels = labels_of(model, feats)
    assert labels["q_20"] == "just_ordered"
    assert labels["q_95"] == "active"
    assert labels["q_122"] == "slipping_away"
    assert labels["q_200"] == "lost"


def test_yearly_buyer_is_active_after_nine_months(features_for):
    feats = features_for(history("y_274", 274, YEARLY) + history("y_600", 600, YEARLY))
    labels = labels_of(LifeCycleModel().fit(feats), feats)
    assert labels["y_274"] == "active"
    assert labels["y_600"] == "lost"


def test_one_order_customers_use_the_store_distribution(features_for):
    feats = features_for([])
    model = LifeCycleModel().fit(feats)
    # the store statistics are those of all intervals pooled
    intervals = []
    for k in range(40):
        intervals += [round((20 + k) * m) for m in PATTERN]
    assert model.store_mean_interval_days_ == pytest.approx(np.mean(intervals))
    assert model.store_sd_interval_days_ == pytest.approx(np.std(intervals, ddof=1))
    mean, sd = model.store_mean_interval_days_, model.store_sd_interval_days_
    extra = [
        *history("one_10", 10, []),
        *history("one_active", int(mean + 0.5 * sd), []),
        *history("one_slipping", int(mean + 1.5 * sd), []),
        *history("one_lost", int(mean + 2 * sd) + 2, []),
    ]
    feats = features_for(extra)
    model = LifeCycleModel().fit(feats)
    labels = labels_of(model, feats)
    assert labels["one_10"] == "just_ordered"
    assert labels["one_active"] == "active"
    assert labels["one_slipping"] == "slipping_away"
    assert labels["one_lost"] == "lost"
    t = model.thresholds()
    assert t["one_order_active_until_days"] == pytest.approx(mean + sd, abs=0.01)
    assert "median interval CV" in t["cv_prior_source"]


def test_life_cycle_without_any_repeat_purchase(tmp_path):
    con = engine.connect("duckdb", threads=1)
    rows = [r for k in range(5) for r in history(f"c{k}", 40 * k + 1, [])]
    feats = customer_features(
        engine.read_parquet(con, write_orders(tmp_path / "o.parquet", rows)), AS_OF
    )
    model = LifeCycleModel().fit(feats)
    assert model.store_mean_interval_days_ == 90.0 and model.warnings_
    assert set(labels_of(model, feats).values()) <= {
        "just_ordered",
        "active",
        "slipping_away",
        "lost",
    }


def _table(**columns) -> ibis.Table:
    return ibis.memtable(pd.DataFrame(columns))


def test_importance_rules_and_thresholds():
    n = 100
    rng = np.random.default_rng(1)
    value = np.arange(n, dtype=float)  # 0 .. 99
    frequency = np.where(np.arange(n) % 5 == 0, 0, 3)
    order_days = frequency + 1
    cv = np.where(np.arange(n) % 2 == 0, 0.2, 0.9) + rng.uniform(0, 0.01, n)
    feats = _table(
        customer_id=[f"c{i}" for i in range(n)],
        predicted_clv=value,
        revenue=value * 2,
        frequency=frequency,
        order_days=order_days,
        interval_cv=cv,
    )
    model = ImportanceModel().fit(feats)
    assert model.vip_threshold_ == 90.0  # top 10% of all customers
    out = feats.mutate(importance=model.label(feats)).to_pandas()
    assert (out.loc[out["frequency"] == 0, "importance"] == "one_time").all()  # even c95
    vip = out[out["importance"] == "vip"]
    assert vip["predicted_clv"].min() >= 90 and len(vip) == 8  # 90..99 less c90 and c95
    loyal = out[out["importance"] == "loyal"]
    assert (loyal["interval_cv"] <= model.loyal_cv_threshold_).all() and len(loyal) > 0
    frequent = out[out["importance"] == "frequent"]
    assert (frequent["interval_cv"] > model.loyal_cv_threshold_).all()
    assert model.thresholds()["value_basis"] == "predicted_clv"


def test_importance_two_purchase_days_cannot_be_loyal_and_zero_values_use_revenue():
    feats = _table(
        customer_id=["a", "b", "c"],
        predicted_clv=[0.0, 0.0, 0.0],
        revenue=[10.0, 500.0, 20.0],
        frequency=[1, 1, 2],
        order_days=[2, 2, 3],
        interval_cv=[None, None, 0.1],
    )
    model = ImportanceModel(vip_share=0.34).fit(feats)
    assert model.value_basis_ == "revenue"
    out = feats.mutate(importance=model.label(feats)).to_pandas().set_index("customer_id")
    assert out.loc["b", "importance"] == "vip"
    assert out.loc["a", "importance"] == "frequent"
    assert out.loc["c", "importance"] == "loyal"


def test_price_sensitivity_thresholds_on_the_log_index():
    idx = np.exp(np.linspace(-0.5, 0.5, 101))
    feats = _table(customer_id=[f"c{i}" for i in range(102)], price_index=[*idx, None])
    model = PriceSensitivityModel().fit(feats)
    logs = np.log(idx)
    assert model.cheap_below_ == pytest.approx(np.exp(logs.mean() - logs.std(ddof=1)))
    assert model.expensive_above_ == pytest.approx(np.exp(logs.mean() + logs.std(ddof=1)))
    out = feats.mutate(p=model.label(feats)).to_pandas()
    counts = out["p"].value_counts()
    assert (
        counts["cheap"] == counts["expensive"] and counts["cheap"] == 21
    )  # uniform: 0.5 - 1/sqrt(12)
    assert out["p"].iloc[-1] == "average"  # unknown index
    same = _table(customer_id=["a", "b"], price_index=[1.0, 1.0])
    flat = PriceSensitivityModel().fit(same)
    assert set(same.mutate(p=flat.label(same)).to_pandas()["p"]) == {"average"}


def _counts(rows: list[tuple[int, int, int, int]]) -> ibis.Table:
    n0, n1, e0, e1 = zip(*rows, strict=True)
    return _table(
        customer_id=[f"c{i}" for i in range(len(rows))],
        orders_p0=n0,
        orders_p1=n1,
        exposure_p0=e0,
        exposure_p1=e1,
    )


def test_behaviour_trend_against_the_store():
    store = [(2, 2, 60, 60)] * 50  # the store is flat: s = 0.5
    probes = [(6, 0, 60, 60), (0, 6, 60, 60), (3, 2, 60, 60), (1, 0, 60, 60), (4, 0, 60, 0)]
    counts = _counts(store + probes)
    model = BehaviourModel().fit(counts, 60)
    assert model.store_share_last_ == pytest.approx(0.5, abs=0.01)
    out = counts.mutate(t=model.label(counts)).to_pandas()["t"].tolist()[-5:]
    assert out == ["rising", "falling", "stable", "stable", "stable"]


def test_behaviour_follows_a_seasonal_store():
    store = [(4, 2, 60, 60)] * 50  # everybody doubles: s = 2/3
    counts = _counts([*store, (4, 2, 60, 60), (2, 4, 60, 60), (12, 0, 60, 60)])
    model = BehaviourModel().fit(counts, 60)
    assert model.store_share_last_ == pytest.approx(2 / 3, abs=0.01)
    out = counts.mutate(t=model.label(counts)).to_pandas()["t"].tolist()[-3:]
    assert out == ["stable", "falling", "rising"]


def test_trend_period_is_the_median_interval(features_for):
    feats = features_for([])
    intervals = [np.mean([round((20 + k) * m) for m in PATTERN]) for k in range(40)]
    assert trend_period_days(feats) == int(np.clip(round(float(np.median(intervals))), 30, 365))
