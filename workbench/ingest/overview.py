"""Tables and figures the ingest notebook shows: what was kept, what was quarantined and why."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.ingest.normalise import REASON_TEXT

if TYPE_CHECKING:
    import ibis
    from matplotlib.figure import Figure


def quarantine_table(summary: dict[str, Any]) -> pd.DataFrame:
    """Quarantined rows per table and reason, with the share of the table's rows."""
    rows = []
    for name, rep in summary["tables"].items():
        for reason, n in rep.get("quarantined", {}).items():
            rows.append(
                {
                    "table": name,
                    "reason": reason,
                    "meaning": REASON_TEXT.get(reason, ""),
                    "rows": n,
                    "share_of_table": n / rep["rows_read"] if rep["rows_read"] else 0.0,
                }
            )
    columns = ["table", "reason", "meaning", "rows", "share_of_table"]
    return pd.DataFrame(rows, columns=columns).sort_values(
        "rows", ascending=False, ignore_index=True
    )


def rows_table(summary: dict[str, Any]) -> pd.DataFrame:
    """Rows read, kept and quarantined per table."""
    return pd.DataFrame(
        [
            {
                "table": name,
                "source": rep["source"],
                "rows_read": rep["rows_read"],
                "rows_kept": rep["rows_kept"],
                "rows_quarantined": rep["rows_read"] - rep["rows_kept"],
            }
            for name, rep in summary["tables"].items()
        ]
    )


def monthly_activity(orders: ibis.Table) -> pd.DataFrame:
    """Orders, customers, net revenue and returned revenue per calendar month (UTC)."""
    month = orders.ordered_at.truncate("M").name("month")
    sales = ~orders.is_return
    agg = (
        orders.group_by(month)
        .aggregate(
            orders=orders.order_id.nunique(where=sales),
            customers=orders.customer_id.nunique(where=sales),
            revenue=orders.revenue.cast("float64").sum(),
            returned=(-orders.revenue.cast("float64")).sum(where=orders.is_return),
        )
        .order_by("month")
        .to_pandas()
    )
    agg["month"] = pd.to_datetime(agg["month"]).dt.tz_localize(None).dt.to_period("M")
    return agg.fillna({"returned": 0.0})


def plot_quarantine(summary: dict[str, Any]) -> Figure:
    """Horizontal bars: quarantined rows per reason."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    table = quarantine_table(summary)
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(table), 2) + 1))
    if table.empty:
        ax.text(0.5, 0.5, "no rows quarantined", ha="center", va="center")
        ax.set_axis_off()
        return fig
    labels = table["table"] + ": " + table["reason"]
    sns.barplot(x=table["rows"], y=labels, ax=ax, color="#c0504d")
    for i, n in enumerate(table["rows"]):
        ax.text(n, i, f" {n:,}", va="center")
    ax.set_xlabel("rows quarantined")
    ax.set_ylabel("")
    ax.set_title("Rows set aside at ingest, by reason")
    fig.tight_layout()
    return fig


def plot_monthly(monthly: pd.DataFrame, currency: str) -> Figure:
    """Two panels: net revenue per month, and orders and customers per month."""
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    x = monthly["month"].astype(str)
    top.bar(x, monthly["revenue"], color="#4f81bd", label="net revenue")
    top.bar(x, -monthly["returned"], color="#c0504d", label="returns")
    top.set_ylabel(currency)
    top.legend(loc="upper left")
    top.set_title("Revenue, orders and customers per month")
    bottom.plot(x, monthly["orders"], marker="o", label="orders")
    bottom.plot(x, monthly["customers"], marker="s", label="customers")
    bottom.legend(loc="upper left")
    bottom.tick_params(axis="x", rotation=60)
    fig.tight_layout()
    return fig
