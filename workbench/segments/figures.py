"""Figures of the segment analytics (seaborn), for notebooks/03_segments.ipynb and the report.

Each function returns a matplotlib Figure and never shows it; the store is drawn as
"All customers" so every figure reads without the code behind it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from workbench.segments.analytics import CHURN_BANDS, STORE, VALUE_TIERS

__all__ = ["plot_active", "plot_growth", "plot_matrix", "plot_overlap", "plot_summary"]

ALL = "All customers"


def _named(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["segment"] = out["segment"].replace({STORE: ALL})
    return out


def plot_summary(summary: pd.DataFrame, currency: str = "") -> Figure:
    """Share of customers vs share of revenue, and AOV / frequency / CLV / churn vs the store."""
    seg = summary[summary["scope"] == "segment"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.55 * max(len(seg), 3) + 1.8))
    shares = seg.melt(
        id_vars="segment",
        value_vars=["share", "revenue_share"],
        var_name="measure",
        value_name="value",
    )
    shares["measure"] = shares["measure"].map(
        {"share": "share of customers", "revenue_share": "share of revenue"}
    )
    sns.barplot(shares, y="segment", x="value", hue="measure", ax=axes[0], orient="h")
    axes[0].xaxis.set_major_formatter(PercentFormatter(1.0))
    axes[0].set(title="Size and revenue of each segment", xlabel="share of the store", ylabel="")
    axes[0].legend(title=None, fontsize="small")
    ratios = seg.melt(
        id_vars="segment",
        value_vars=[
            "aov_vs_store",
            "order_frequency_vs_store",
            "avg_clv_vs_store",
            "churn_risk_vs_store",
        ],
        var_name="measure",
        value_name="ratio",
    )
    ratios["measure"] = ratios["measure"].str.replace("_vs_store", "").str.replace("_", " ")
    ratios["measure"] = ratios["measure"].replace(
        {"aov": f"AOV{f' ({currency})' if currency else ''}", "avg clv": "predicted CLV"}
    )
    sns.barplot(ratios, y="segment", x="ratio", hue="measure", ax=axes[1], orient="h")
    axes[1].axvline(1.0, color="0.3", lw=1, ls="--")
    axes[1].set(title="Compared with all customers (1 = like the store)", xlabel="ratio", ylabel="")
    axes[1].legend(title=None, fontsize="small")
    fig.tight_layout()
    return fig


def plot_active(active: pd.DataFrame) -> Figure:
    """Active customers over the last 1-12 months, and growth against the period before."""
    data = _named(active)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    sns.lineplot(data, x="months", y="active_share", hue="segment", marker="o", ax=axes[0])
    axes[0].yaxis.set_major_formatter(PercentFormatter(1.0))
    axes[0].set(
        title="Active customers: members who ordered in the last N months",
        xlabel="months back from as_of",
        ylabel="share of the segment's members",
    )
    sns.lineplot(data, x="months", y="growth", hue="segment", marker="o", ax=axes[1], legend=False)
    axes[1].axhline(0.0, color="0.3", lw=1, ls="--")
    axes[1].yaxis.set_major_formatter(PercentFormatter(1.0))
    axes[1].set(
        title="Growth vs the N months before",
        xlabel="months back from as_of",
        ylabel="change in active customers",
    )
    axes[0].legend(title=None, fontsize="small")
    for ax in axes:
        ax.set_xticks(range(1, int(data["months"].max()) + 1))
    fig.tight_layout()
    return fig


def plot_growth(growth: pd.DataFrame) -> Figure:
    """Members of each segment at each month end (left), as a share of all customers (right)."""
    data = _named(growth)
    data["date"] = pd.to_datetime(data["date"])
    seg = data[data["segment"] != ALL]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    sns.lineplot(seg, x="date", y="members", hue="segment", marker="o", ax=axes[0])
    axes[0].set(title="Customer base growth: members at each month end", xlabel="", ylabel="")
    sns.lineplot(seg, x="date", y="share", hue="segment", marker="o", ax=axes[1], legend=False)
    axes[1].yaxis.set_major_formatter(PercentFormatter(1.0))
    axes[1].set(title="Members as a share of all customers", xlabel="", ylabel="")
    axes[0].legend(title=None, fontsize="small")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def plot_matrix(
    matrix: pd.DataFrame, segments: list[str] | None = None, currency: str = ""
) -> Figure:
    """Audience Insights: customers (and revenue) per value tier x churn-risk band."""
    names = [STORE, *(segments if segments is not None else [])]
    names = [n for n in names if n in set(matrix["segment"])]
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.9 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names, strict=False):
        sel = matrix[matrix["segment"] == name]
        counts = sel.pivot(index="value_tier", columns="churn_risk_band", values="customers")
        revenue = sel.pivot(index="value_tier", columns="churn_risk_band", values="revenue")
        order = list(VALUE_TIERS)[::-1]
        counts = counts.reindex(index=order, columns=list(CHURN_BANDS))
        revenue = revenue.reindex(index=order, columns=list(CHURN_BANDS))
        labels = (
            counts.astype(int).astype(str) + "\n" + revenue.map(lambda v: f"{v:,.0f} {currency}")
        )
        sns.heatmap(counts, annot=labels, fmt="", cmap="Blues", cbar=False, ax=ax, linewidths=0.5)
        ax.set(
            title=ALL if name == STORE else name,
            xlabel="churn risk",
            ylabel="predicted value",
        )
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    fig.suptitle("Customers and revenue by predicted value and churn risk", y=1.0)
    fig.tight_layout()
    return fig


def plot_overlap(overlap: pd.DataFrame) -> Figure:
    """Share of each segment (row) that is also in another segment (column)."""
    names = list(dict.fromkeys(overlap["segment"]))
    grid = overlap.pivot(index="segment", columns="other", values="share_of_segment")
    grid = grid.reindex(index=names, columns=names)
    shared = overlap.pivot(index="segment", columns="other", values="shared")
    shared = shared.reindex(index=names, columns=names)
    size = 0.7 * len(names) + 2.5
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    labels = grid.map(lambda v: "" if pd.isna(v) else f"{v:.0%}") + "\n" + shared.astype(str)
    sns.heatmap(grid, annot=labels, fmt="", cmap="Purples", vmin=0, vmax=1, ax=ax, cbar=False)
    ax.set(
        title="Overlap: share of the row segment also in the column segment",
        xlabel="",
        ylabel="",
    )
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig
