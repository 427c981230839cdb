"""What the Interested-In notebook shows of the top-k table, aggregated in DuckDB.

At 1M customers ``interest.parquet`` holds 40M rows (10 per customer and level). Reading it
into pandas to draw two figures and a table cost minutes and several GB of strings. Here the
file is aggregated where it lies, with DuckDB under a memory limit, and only the aggregates
(a few hundred rows) reach Python:

- per level: count, mean, std, min, median, 90th percentile and max of the scores;
- per level: a 40-bin histogram of the scores, rank 1 and ranks 2..k apart, with exactly the
  counts ``numpy.histogram`` gives on the same edges;
- per level: the targets most often in a customer's top 3, with their mean score there;
- per level: the most frequent rank-1 target (ties: the smallest key);
- the table's first rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import duckdb

STAT_COLUMNS = ["count", "mean", "std", "min", "50%", "90%", "max"]


@dataclass(frozen=True)
class TopKSummary:
    """Aggregates of one ``interest.parquet`` (see the module docstring).

    Attributes
    ----------
    levels : list of str
        Levels in the order of the file.
    stats : pandas.DataFrame
        Index ``level``; columns :data:`STAT_COLUMNS` (``std`` with ``ddof=1``, percentiles
        interpolated linearly, as ``DataFrame.describe``).
    histogram : pandas.DataFrame
        ``level, which ("rank 1" / "ranks 2..k"), bin, score (bin centre), customers``, every
        bin of every level and group (zero counts included).
    edges : dict of str to numpy.ndarray
        Per level the ``bins + 1`` bin edges (``numpy.histogram_bin_edges`` of the scores).
    top_targets : pandas.DataFrame
        ``level, target, customers, mean_score``: per level the ``n`` targets most often at
        rank 1 to 3, most frequent first (ties by target key).
    first_choice : dict of str to str
        Per level the target most often at rank 1.
    head : pandas.DataFrame
        The first rows of the file.
    """

    levels: list[str]
    stats: pd.DataFrame
    histogram: pd.DataFrame
    edges: dict[str, np.ndarray]
    top_targets: pd.DataFrame
    first_choice: dict[str, str]
    head: pd.DataFrame

    def level_histogram(self, level: str) -> pd.DataFrame:
        """One level's histogram rows (``score, customers, which``), groups with rows only."""
        sel = self.histogram[self.histogram["level"] == level]
        keep = sel.groupby("which")["customers"].transform("sum") > 0
        return sel.loc[keep, ["score", "customers", "which"]].reset_index(drop=True)


def summarise_top_k(
    path: str | Path,
    *,
    bins: int = 40,
    n: int = 15,
    head_rows: int = 20,
    memory_limit: str = "2GB",
    threads: int | None = None,
) -> TopKSummary:
    """Aggregate the top-k table at ``path`` (see :class:`TopKSummary`).

    Parameters
    ----------
    path : str or Path
        ``interest.parquet`` (columns ``customer_id, level, target, score, rank``).
    bins : int
        Histogram bins per level.
    n : int
        Top-3 targets kept per level.
    head_rows : int
        Rows of :attr:`TopKSummary.head`.
    memory_limit : str
        DuckDB's memory limit for the aggregation (it spills beyond it).
    threads : int, optional
        DuckDB threads (default: all cores).

    Returns
    -------
    TopKSummary
    """
    import duckdb

    config = {"memory_limit": memory_limit}
    if threads:
        config["threads"] = str(threads)
    con = duckdb.connect(config=config)
    try:
        literal = "'" + str(path).replace("'", "''") + "'"
        con.execute(
            f"CREATE VIEW topk AS SELECT * FROM read_parquet({literal}, file_row_number=true)"
        )
        return _summarise(con, bins, n, head_rows)
    finally:
        con.close()


def _summarise(con: duckdb.DuckDBPyConnection, bins: int, n: int, head_rows: int) -> TopKSummary:
    stats = con.execute(
        """
        SELECT level, min(file_row_number) AS first_row, count(*) AS count,
               avg(score) AS mean, stddev_samp(score) AS std, min(score) AS min,
               quantile_cont(score, 0.5) AS "50%", quantile_cont(score, 0.9) AS "90%",
               max(score) AS max
        FROM topk GROUP BY level ORDER BY first_row
        """
    ).df()
    levels = stats["level"].astype(str).tolist()
    stats = stats.set_index("level")[STAT_COLUMNS].astype(float)
    stats.index = pd.Index(levels, name="level")
    edges = {
        level: np.histogram_bin_edges(
            np.array([stats.at[level, "min"], stats.at[level, "max"]]), bins=bins
        )
        for level in levels
    }
    edge_rows = pd.DataFrame(
        [
            (level, i, float(e[i]), float(e[i + 1]))
            for level, e in edges.items()
            for i in range(bins)
        ],
        columns=["level", "bin", "lo", "hi"],
    )
    con.register("edges", edge_rows)
    # the first guess of each score's bin is numpy's uniform-bin formula; it is then moved by
    # one where float rounding put it on the wrong side of an edge (as numpy.histogram does),
    # so the counts equal numpy.histogram's on these edges
    counts = con.execute(
        f"""
        WITH r AS (
            SELECT level, min(lo) AS lo, max(hi) AS hi FROM edges GROUP BY level
        ), guess AS (
            SELECT t.level, t.score, t.rank = 1 AS first,
                   least(greatest(floor((t.score - r.lo) * ({bins} / (r.hi - r.lo))), 0),
                         {bins - 1})::INTEGER AS bin
            FROM topk t JOIN r USING (level)
        )
        SELECT g.level, g.first,
               g.bin - (g.score < e.lo)::INTEGER
                     + (g.score >= e.hi AND g.bin < {bins - 1})::INTEGER AS bin,
               count(*) AS customers
        FROM guess g JOIN edges e ON g.level = e.level AND g.bin = e.bin
        GROUP BY ALL
        """
    ).df()
    con.unregister("edges")
    grid = pd.MultiIndex.from_product(
        [levels, [True, False], range(bins)], names=["level", "first", "bin"]
    )
    full = (
        counts.astype({"level": str, "first": bool, "bin": int})
        .set_index(["level", "first", "bin"])["customers"]
        .reindex(grid, fill_value=0)
        .reset_index()
    )
    full["which"] = np.where(full["first"], "rank 1", "ranks 2..k")
    full["score"] = [
        (edges[lv][b] + edges[lv][b + 1]) / 2
        for lv, b in zip(full["level"], full["bin"], strict=True)
    ]
    histogram = full[["level", "which", "bin", "score", "customers"]].astype({"customers": int})
    top_targets = _most_frequent(con, max_rank=3, n=n)
    first = _most_frequent(con, max_rank=1, n=1)
    first_choice = dict(zip(first["level"], first["target"], strict=True))
    head = con.execute(
        f"""
        SELECT customer_id, level, target, score, rank FROM topk
        ORDER BY file_row_number LIMIT {int(head_rows)}
        """
    ).df()
    return TopKSummary(
        levels=levels,
        stats=stats,
        histogram=histogram,
        edges=edges,
        top_targets=top_targets,
        first_choice=first_choice,
        head=head,
    )


def _most_frequent(con: duckdb.DuckDBPyConnection, max_rank: int, n: int) -> pd.DataFrame:
    """Per level the ``n`` targets most often at ranks 1..``max_rank`` (ties by target key)."""
    return con.execute(
        f"""
        SELECT level, target, customers, mean_score FROM (
            SELECT level, target, count(*) AS customers, avg(score) AS mean_score,
                   row_number() OVER (PARTITION BY level ORDER BY count(*) DESC, target)
                       AS place
            FROM topk WHERE rank <= {int(max_rank)} GROUP BY level, target
        ) WHERE place <= {int(n)} ORDER BY level, place
        """
    ).df()
