"""Figures of the report (seaborn), each drawn from a table of :mod:`workbench.report.sections`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_label_shares(tables: dict[str, pd.DataFrame]) -> Figure:
    """One panel per label: share of customers vs share of revenue per label value."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    tables = {k: v for k, v in tables.items() if len(v)}
    fig, axes = plt.subplots(1, max(len(tables), 1), figsize=(4.2 * max(len(tables), 1), 3.6))
    axes = [axes] if len(tables) <= 1 else list(axes)
    for ax, (label, table) in zip(axes, tables.items(), strict=False):
        long = table.melt(
            id_vars=[label],
            value_vars=["share of customers", "share of revenue"],
            var_name="measure",
            value_name="share",
        )
        sns.barplot(data=long, x=label, y="share", hue="measure", ax=ax, palette="Set2")
        ax.set_title(label.replace("_", " ").title())
        ax.set_xlabel("")
        ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
        ax.tick_params(axis="x", rotation=30)
        ax.legend(fontsize=8, title=None)
    fig.tight_layout()
    return fig


def plot_flows(flows: pd.DataFrame, label: str, order: list[str]) -> Figure:
    """Heatmap of customers moving from one label value to another between two runs."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    rows = [v for v in ["(new)", *order] if v in set(flows["from"])]
    cols = [v for v in [*order, "(gone)"] if v in set(flows["to"])]
    matrix = (
        flows.pivot_table(index="from", columns="to", values="customers", aggfunc="sum")
        .reindex(index=rows, columns=cols)
        .fillna(0)
        .astype(int)
    )
    fig, ax = plt.subplots(figsize=(1.3 * len(cols) + 2.5, 0.6 * len(rows) + 1.6))
    sns.heatmap(matrix, annot=True, fmt=",d", cmap="Blues", cbar=False, ax=ax)
    ax.set_xlabel("this run")
    ax.set_ylabel("previous run")
    ax.set_title(f"{label.replace('_', ' ').title()}: how customers moved since the previous run")
    fig.tight_layout()
    return fig
