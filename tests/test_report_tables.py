"""Report tables, unit tier: each figure the report shows, on hand-made files with known values."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import ibis
import pandas as pd
import pytest

from workbench.report import audience
from workbench.report import sections as rs
from workbench.report.headline import headline

AS_OF = datetime(2024, 3, 31, 23, 59, 59, tzinfo=UTC)


def _orders() -> ibis.Table:
    rows = [  # order_id, customer, day, revenue, is_return
        ("o1", "A", "2023-12-15", 10.0, False),  # before both windows
        ("o2", "A", "2024-01-20", 20.0, False),  # previous 60-day window (Dec 2, Jan 31]
        ("o3", "B", "2024-02-10", 30.0, False),  # current 60-day, previous 30-day window
        ("o4", "A", "2024-03-05", 40.0, False),  # current window
        ("o4", "A", "2024-03-05", 10.0, False),  # second line of the same order
        ("o5", "C", "2024-03-20", 60.0, False),  # current window
        ("r1", "C", "2024-03-25", -15.0, True),  # return: reduces revenue, not an order
        ("o6", "D", "2024-04-02", 99.0, False),  # after as_of: ignored
    ]
    frame = pd.DataFrame(rows, columns=["order_id", "customer_id", "day", "revenue", "is_return"])
    frame["ordered_at"] = pd.to_datetime(frame.pop("day")).dt.tz_localize("UTC")
    return ibis.memtable(frame)


def test_headline_windows_growth_and_all_time():
    head = headline(_orders(), AS_OF, 60)
    # current window: (Jan 31, Mar 31]; previous: (Dec 2, Jan 31]
    assert head["current"] == {
        "active_customers": 3,
        "orders": 3,
        "net_revenue": 125.0,
        "aov": 46.67,  # sales 140 / 3 orders (the return is not a sale)
        "orders_per_active_customer": 1.0,
    }
    assert head["previous"]["active_customers"] == 1  # A (o1, o2)
    assert head["previous"]["orders"] == 2 and head["previous"]["net_revenue"] == 30.0
    assert head["previous_window_covered"] is False  # first order Dec 15 > Dec 2
    assert all(v is None for v in head["growth"].values())
    assert head["all_time"] == {"customers": 3, "orders": 5, "net_revenue": 155.0}
    longer = headline(_orders(), AS_OF, 30)  # previous window (Jan 31, Mar 1] is covered
    assert longer["previous_window_covered"] is True
    assert longer["current"]["orders"] == 2 and longer["previous"]["orders"] == 1
    assert longer["growth"]["orders"] == pytest.approx(1.0)


def test_label_distribution_keeps_the_label_order():
    metrics = {
        "labels": {
            "distribution": {
                "life_cycle": {
                    "lost": {"customers": 5, "share_customers": 0.5, "share_revenue": 0.1},
                    "just_ordered": {"customers": 5, "share_customers": 0.5, "share_revenue": 0.9},
                }
            }
        }
    }
    table = rs.label_distribution(metrics, "life_cycle")
    assert list(table["life_cycle"]) == ["just_ordered", "lost"]
    assert list(table["share of revenue"]) == [0.9, 0.1]


def test_holdout_table_and_summary():
    metrics = {
        "holdout": {
            "cutoff": "2024-01-01",
            "horizon_days": 90,
            "auc": {"p_alive": 0.7, "p_order": 0.8},
            "totals": {"orders_ratio": 1.1, "revenue_ratio": 0.9},
            "life_cycle": {
                "active": {
                    "customers": 10,
                    "share_ordered": 0.4,
                    "mean_p_order": 0.35,
                    "predicted_orders": 5.0,
                    "actual_orders": 6,
                },
                "just_ordered": {
                    "customers": 4,
                    "share_ordered": 0.75,
                    "mean_p_order": 0.6,
                    "predicted_orders": 3.0,
                    "actual_orders": 4,
                },
            },
        }
    }
    table = rs.holdout_table(metrics)
    assert list(table["life_cycle at cutoff"]) == ["just_ordered", "active"]
    assert rs.holdout_summary(metrics)["auc_p_order"] == 0.8
    assert rs.holdout_summary(metrics)["auc_p_alive_repeat_buyers"] is None


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    (run / "segments" / "analytics").mkdir(parents=True)
    (run / "exports" / "gads").mkdir(parents=True)
    (run / "segments" / "diff").mkdir()
    summary = pd.DataFrame(
        {
            "segment": ["", "vip", "lapsed"],
            "scope": ["store", "segment", "segment"],
            "customers": [100, 10, 0],
            "share": [1.0, 0.1, 0.0],
            "revenue": [1000.0, 400.0, 0.0],
            "revenue_share": [1.0, 0.4, 0.0],
            "orders": [200, 40, 0],
            "aov": [5.0, 10.0, None],
            "order_frequency": [2.0, 4.0, None],
            "avg_clv": [20.0, 80.0, None],
            "churn_risk": [0.5, 0.2, None],
            "aov_vs_store": [1.0, 2.0, None],
            "order_frequency_vs_store": [1.0, 2.0, None],
            "avg_clv_vs_store": [1.0, 4.0, None],
            "churn_risk_vs_store": [1.0, 0.4, None],
        }
    )
    summary.to_csv(run / "segments" / "summary.csv", index=False)
    diff = pd.DataFrame(
        {
            "segment": ["vip", "lapsed"],
            "previous_run": ["m_2024-02-29", "m_2024-02-29"],
            "previous": [8, 3],
            "current": [10, 0],
            "added": [4, 0],
            "removed": [2, 3],
            "stayed": [6, 0],
        }
    )
    diff.to_parquet(run / "segments" / "analytics" / "diff.parquet", index=False)
    diff.to_csv(run / "segments" / "analytics" / "diff.csv", index=False)
    (run / "segments" / "diff" / "vip.added.csv").write_text("customer_id\n1\n2\n3\n4\n")
    members = "customer_id,email\n" + "".join(f"{i},x{i}@example.com\n" for i in range(10))
    (run / "segments" / "vip.csv").write_text(members)
    (run / "segments" / "lapsed.csv").write_text("customer_id,email\n")
    (run / "exports" / "gads" / "vip.csv").write_text("Email\n" + "h\n" * 9)
    scorers = {
        "model": {"auc": 0.8, "lift@5%": 6.0},
        "random": {"auc": 0.5, "lift@5%": 1.0},
        "heaviest_buyers": {"auc": 0.6, "lift@5%": 2.0},
        "bought_before": {"auc": 0.7, "lift@5%": 7.0},
        "popularity": {"auc": 0.65, "lift@5%": 3.0},
    }
    evaluation = {
        "levels": {
            "brand": {
                "scorers": {
                    s: {"overall": v, "new_to_target": {**v, "auc": v["auc"] - 0.1}}
                    for s, v in scorers.items()
                }
            }
        }
    }
    (run / "interest_eval.json").write_text(json.dumps(evaluation))
    return run


def test_segment_table_is_summary_csv_renamed(run_dir):
    table = audience.segment_table(run_dir, "EUR")
    assert list(table["segment"]) == ["All customers", "vip", "lapsed"]
    assert list(table["customers"]) == [100, 10, 0]
    assert table.loc[1, "AOV (EUR)"] == 10.0 and table.loc[1, "CLV vs store"] == 4.0
    assert pd.isna(table.loc[2, "AOV (EUR)"])
    assert set(audience.SEGMENT_PERCENT) <= set(table.columns)
    assert audience.segment_names(run_dir) == ["vip", "lapsed"]


def test_membership_changes_and_exported_files(run_dir):
    changes = audience.membership_changes(run_dir)
    assert changes.set_index("segment").loc["vip"].to_dict() == {
        "previous": 8,
        "current": 10,
        "added": 4,
        "removed": 2,
        "stayed": 6,
    }
    files = audience.exported_files(run_dir).set_index("file")
    expected = ["exports/gads/vip.csv", "segments/lapsed.csv", "segments/vip.csv"]
    assert sorted(files.index) == expected
    assert files.loc["segments/vip.csv", "rows"] == 10
    assert files.loc["exports/gads/vip.csv", "rows"] == 9
    assert files.loc["exports/gads/vip.csv", "added"] == 4
    assert files.loc["segments/lapsed.csv", "removed"] == 3


def test_interest_table_and_verdict(run_dir):
    table = audience.interest_table(run_dir)
    assert len(table) == 10  # 5 scorers x 2 subsets
    assert list(table["scorer"][:5]) == ["model", *audience.BASELINES]
    verdict = audience.interest_verdict(run_dir).set_index("subset")
    row = verdict.loc["all pairs"]
    assert row["best baseline AUC"] == 0.7 and row["baseline (AUC)"] == "bought_before"
    assert row["best baseline lift@5%"] == 7.0
    assert not row["beats every baseline"]  # lift 6 < bought_before's 7


def test_baselines_are_the_evaluation_scorers():
    from workbench.models.interest_eval import SCORERS

    assert ("model", *audience.BASELINES) == SCORERS


def test_missing_files_give_empty_tables(tmp_path):
    assert audience.segment_table(tmp_path).empty
    assert audience.membership_changes(tmp_path).empty
    assert audience.exported_files(tmp_path).empty
    assert audience.interest_table(tmp_path).empty
    assert audience.interest_verdict(tmp_path).empty
    assert audience.analytics_table(tmp_path, "growth") is None


def test_threshold_table_rounds_for_reading_only():
    metrics = {
        "labels": {
            "thresholds": {
                "life_cycle": {"rule": "r", "store_mean_interval_days": 45.84363606902698, "n": 3}
            }
        }
    }
    table = rs.threshold_table(metrics)
    assert table.loc[0, "thresholds"] == "store_mean_interval_days = 45.84, n = 3"
