"""Backtest on a synthetic shop: files written, Life Cycle ordering, AUC, calibration."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from workbench.errors import InputDataError
from workbench.models.backtest import BACKTEST_FIGURE, BACKTEST_JSON, run_backtest
from workbench.params import load_params


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    from workbench.synth import generate

    root = tmp_path_factory.mktemp("shop")
    generate(4_000, 11, root, days=730, events=False, progress=False)
    truth = json.loads((root / "truth" / "truth.json").read_text())
    return load_params(root / "params.yaml"), date.fromisoformat(truth["end"][:10])


def test_backtest_on_synthetic_shop(shop, tmp_path):
    params, end = shop
    cutoff = end - timedelta(days=params.models.horizon_days + 1)
    result = run_backtest(params, cutoff, tmp_path / "bt", progress=False)
    assert (tmp_path / "bt" / BACKTEST_JSON).exists()
    assert (tmp_path / "bt" / BACKTEST_FIGURE).stat().st_size > 10_000
    assert (tmp_path / "bt" / "data" / "orders.parquet").exists()
    assert json.loads((tmp_path / "bt" / BACKTEST_JSON).read_text()) == json.loads(
        json.dumps(result, default=str)
    )
    assert result["horizon_days"] == 90 and result["holdout_complete"]
    # the share that orders again falls from just_ordered to lost
    shares = [
        result["life_cycle"][k]["share_ordered"]
        for k in ("just_ordered", "active", "slipping_away", "lost")
    ]
    assert result["life_cycle_monotonic"] and shares[0] > shares[-1] + 0.2
    assert result["auc"]["p_order"] > 0.75
    assert result["auc_repeat_buyers"]["p_alive"] > 0.7
    # the planted model is the fitted one: totals within 15%
    assert result["totals"]["orders_ratio"] == pytest.approx(1.0, abs=0.15)
    assert result["totals"]["revenue_ratio"] == pytest.approx(1.0, abs=0.2)
    buckets = [row["frequency"] for row in result["per_frequency"]]
    assert buckets[0] == "0" and buckets[-1] == "7+"
    assert result["model"]["clv"]["bgnbd"]["kind"] == "bgnbd"
    assert set(result["timings"]) == {"ingest", "fit_and_score"}


def test_backtest_rejects_a_cutoff_outside_the_data(shop, tmp_path):
    params, end = shop
    with pytest.raises(InputDataError, match="leaves no data after it"):
        run_backtest(params, end + timedelta(days=5), tmp_path / "late", progress=False)
    with pytest.raises(InputDataError, match="before the first order"):
        run_backtest(params, date(2000, 1, 1), tmp_path / "early", progress=False)
