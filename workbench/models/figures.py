"""Figures of the customer models (seaborn), for notebooks/02_features.ipynb and the backtest.

Each function returns a matplotlib Figure and never shows it; callers decide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from workbench.models.customers import LABEL_VALUES
from workbench.models.lifecycle import LABELS as LIFE_CYCLE


def save(fig: Figure, path: Path, dpi: int = 110) -> Path:
    """Write a figure as PNG (creating the folder) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def label_shares(summary: dict[str, Any]) -> pd.DataFrame:
    """Long table (label, value, measure, share) of a label summary.

    ``summary`` is the output of :func:`~workbench.models.customers.label_summary`.
    """
    rows = []
    for label, values in summary.items():
        for value, stats in values.items():
            rows.append((label, value, "customers", stats["share_customers"]))
            rows.append((label, value, "revenue", stats["share_revenue"]))
    return pd.DataFrame(rows, columns=["label", "value", "measure", "share"])


def plot_labels(summary: dict[str, Any]) -> Figure:
    """Share of customers and of revenue per value of each label."""
    data = label_shares(summary)
    fig, axes = plt.subplots(1, len(LABEL_VALUES), figsize=(4 * len(LABEL_VALUES), 3.6))
    for ax, (label, values) in zip(np.atleast_1d(axes), LABEL_VALUES.items(), strict=True):
        sel = data[data["label"] == label]
        sns.barplot(sel, x="value", y="share", hue="measure", order=list(values), ax=ax)
        ax.set_title(label.replace("_", " "))
        ax.set_xlabel("")
        ax.set_ylabel("share")
        ax.tick_params(axis="x", rotation=30)
        ax.legend(title=None, fontsize="small")
    fig.tight_layout()
    return fig


def plot_calibration(per_frequency: list[dict[str, Any]], horizon_days: int) -> Figure:
    """Predicted vs actual repeat orders per customer in the holdout, by calibration frequency."""
    data = pd.DataFrame(per_frequency)
    long = data.melt(
        id_vars=["frequency", "customers"],
        value_vars=["predicted_orders_mean", "actual_orders_mean"],
        var_name="series",
        value_name="orders",
    )
    long["series"] = long["series"].map(
        {"predicted_orders_mean": "predicted", "actual_orders_mean": "actual"}
    )
    fig, ax = plt.subplots(figsize=(7, 4))
    sns.lineplot(long, x="frequency", y="orders", hue="series", style="series", markers=True, ax=ax)
    ax.set_xlabel("repeat purchase days before the cutoff")
    ax.set_ylabel(f"mean repeat purchase days in the next {horizon_days} days")
    ax.set_title("Calibration vs holdout")
    fig.tight_layout()
    return fig


def plot_p_alive_matrix(matrix: pd.DataFrame, tenure_days: int) -> Figure:
    """Heatmap of P(alive) by frequency (columns) and days since the last order (rows)."""
    fig, ax = plt.subplots(figsize=(8, 5))
    sns.heatmap(matrix, vmin=0, vmax=1, cmap="viridis", ax=ax, cbar_kws={"label": "P(alive)"})
    ax.set_title(f"P(alive) of a customer whose first order was {tenure_days} days ago")
    ax.set_xlabel("repeat purchase days (frequency)")
    ax.set_ylabel("days since the last order")
    fig.tight_layout()
    return fig


def plot_clv_distribution(customers: pd.DataFrame, column: str, currency: str) -> Figure:
    """Distribution of predicted CLV (log scale) by Importance."""
    data = customers.loc[customers[column] > 0]
    fig, ax = plt.subplots(figsize=(8, 4))
    if len(data):
        sns.histplot(
            data,
            x=column,
            hue="importance",
            hue_order=[v for v in LABEL_VALUES["importance"] if v in set(data["importance"])],
            log_scale=True,
            element="step",
            bins=40,
            ax=ax,
        )
    zero = int((customers[column] <= 0).sum())
    ax.set_xlabel(f"{column} ({currency})")
    note = f" ({zero:,} customers at zero not shown)" if zero else ""
    ax.set_title(f"Predicted value within the horizon{note}")
    fig.tight_layout()
    return fig


def plot_backtest(metrics: dict[str, Any]) -> Figure:
    """The backtest in one figure: Life Cycle shares and calibration by frequency."""
    h = metrics["horizon_days"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    life = metrics["life_cycle"]
    shares = [life[k].get("share_ordered", np.nan) for k in LIFE_CYCLE]
    sns.barplot(x=list(LIFE_CYCLE), y=shares, ax=left)
    left.set_ylabel(f"ordered within {h} days")
    left.set_title("Life Cycle at the cutoff")
    data = pd.DataFrame(metrics["per_frequency"])
    left_x = np.arange(len(data))
    right.plot(left_x, data["predicted_orders_mean"], marker="o", label="predicted")
    right.plot(left_x, data["actual_orders_mean"], marker="s", label="actual")
    right.set_xticks(left_x, data["frequency"])
    right.set_xlabel("repeat purchase days before the cutoff")
    right.set_ylabel(f"mean repeat purchase days, next {h} days")
    right.set_title(f"Calibration vs holdout (cutoff {metrics['cutoff'][:10]})")
    right.legend()
    fig.tight_layout()
    return fig
