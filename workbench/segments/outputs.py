"""The segments step of a run: evaluate, analyse, export, and write it all into the run folder.

``notebooks/03_segments.ipynb`` drives a :class:`SegmentRun`; each method writes its files and
returns what the notebook shows. Files (run contract, docs/design.md section 3):

- ``segments/<segment>.csv``: members, the columns chosen in the segment file;
- ``segments/membership.parquet``: ``segment``, ``customer_id`` (every member; read by sync);
- ``segments/summary.csv``: per segment and the store row (``segment`` empty, ``scope`` store);
- ``segments/analytics/{active,growth,matrix,overlap,diff}.{parquet,csv}``: report tables;
- ``segments/diff/<segment>.{added,removed,stayed}.csv``: change since the previous run;
- ``exports/<export>/<segment>.csv``: file exports of ``params.exports``;
- ``figures/segments_*.png``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workbench import engine
from workbench.exports.diff import write_diff
from workbench.exports.files import write_exports
from workbench.segments import analytics
from workbench.segments.data import SegmentData
from workbench.segments.evaluate import csv_columns, evaluate_segments, write_csv
from workbench.segments.files import load_segments
from workbench.segments.fitted import FittedModels
from workbench.segments.growth import month_ends, segment_growth
from workbench.segments.spec import SegmentSpec

if TYPE_CHECKING:
    import ibis

    from workbench.notebook import RunContext

__all__ = ["SEGMENTS_DIR", "SegmentRun"]

log = logging.getLogger(__name__)

SEGMENTS_DIR = "segments"
ANALYTICS_DIR = f"{SEGMENTS_DIR}/analytics"


@dataclass
class SegmentRun:
    """The segments of one run and everything computed from them.

    Attributes
    ----------
    ctx : RunContext
    specs : list of SegmentSpec
    data : SegmentData
    membership : pyarrow.Table
        ``segment``, ``customer_id``.
    results : dict
        Tables computed so far (summary, active, matrix, overlap, growth, diff) and the
        metrics.json ``segments`` section.
    """

    ctx: RunContext
    specs: list[SegmentSpec]
    data: SegmentData
    membership: pa.Table
    results: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, ctx: RunContext, *, progress: bool = True) -> SegmentRun:
        """Load and check the segment files, evaluate them and write members and membership."""
        specs = load_segments(ctx.params.segments)
        data = SegmentData.from_context(ctx)
        membership = evaluate_segments(specs, data, progress=progress)
        run = cls(ctx=ctx, specs=specs, data=data, membership=membership)
        run._write_members()
        return run

    @property
    def names(self) -> list[str]:
        """Segment names in file order."""
        return [s.name for s in self.specs]

    @property
    def folder(self) -> Path:
        """``<run>/segments``."""
        return self.ctx.path(SEGMENTS_DIR)

    @property
    def clv_column(self) -> str:
        """The predicted-CLV column of the run's horizon."""
        return self.data.column("predicted_clv")

    def membership_table(self) -> ibis.Table:
        """membership.parquet as an ibis table on the run's engine."""
        return engine.read_parquet(self.data.con, self.folder / "membership.parquet")

    def _write_members(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(self.membership, self.folder / "membership.parquet", compression="zstd")
        members = self.membership_table()
        customers = self.data.customers
        for spec in self.specs:
            cols = csv_columns(spec, self.data)
            ids = members.filter(members.segment == spec.name)
            chosen = customers.semi_join(ids, customers.customer_id == ids.customer_id)
            table = chosen.select(*cols).order_by(cols[0]).to_pyarrow()
            write_csv(table, self.folder / f"{spec.name}.csv")

    def _save(self, name: str, frame: pd.DataFrame) -> pd.DataFrame:
        folder = self.ctx.path(ANALYTICS_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(folder / f"{name}.parquet", index=False)
        frame.to_csv(folder / f"{name}.csv", index=False)
        self.results[name] = frame
        return frame

    def counts(self) -> pd.DataFrame:
        """Members per segment (file order)."""
        sizes = self.membership.group_by("segment").aggregate([("customer_id", "count")])
        sizes = dict(zip(*(sizes.column(i).to_pylist() for i in range(2)), strict=True))
        rows = [(s.name, sizes.get(s.name, 0), s.description) for s in self.specs]
        return pd.DataFrame(rows, columns=["segment", "customers", "description"])

    def summary(self) -> pd.DataFrame:
        """Per segment vs the store; written to ``segments/summary.csv``."""
        frame = analytics.segment_summary(
            self.membership_table(), self.data.customers, self.names, self.clv_column
        )
        frame.to_csv(self.folder / "summary.csv", index=False)
        self.results["summary"] = frame
        return frame

    def active(self, months: int = 12) -> pd.DataFrame:
        """Active customers over the last 1..``months`` months and growth."""
        frame = analytics.active_customers(
            self.membership_table(),
            self.data.customers,
            self.data.orders,
            self.data.as_of,
            self.names,
            months,
        )
        return self._save("active", frame)

    def matrix(self) -> pd.DataFrame:
        """Audience Insights matrix (value tier x churn-risk band)."""
        frame, thresholds = analytics.insights_matrix(
            self.membership_table(), self.data.customers, self.names, self.clv_column
        )
        self.results["matrix_thresholds"] = thresholds
        return self._save("matrix", frame)

    def overlap(self) -> pd.DataFrame:
        """Members shared by each pair of segments."""
        return self._save("overlap", analytics.overlap(self.membership_table(), self.names))

    def growth(self, months: int = 12, fitted: FittedModels | None = None) -> pd.DataFrame:
        """Members per month end over the last ``months`` months (see :mod:`.growth`)."""
        fitted = fitted or FittedModels.from_metrics(self.ctx.metrics, self.data.horizon_days)
        if fitted is None:
            log.warning("metrics.json lacks the fitted models: refitting them as of as_of")
            fitted = FittedModels.fit(
                self.data.orders,
                self.data.as_of,
                self.data.horizon_days,
                customers=self.ctx.table("customers") if self.ctx.has_table("customers") else None,
                events=self.data.events,
            )
        self.results["growth_models"] = fitted.source
        points = month_ends(self.data.as_of, months)
        frame = segment_growth(self.specs, self.data, fitted, points, progress=True)
        return self._save("growth", frame)

    def exports(self) -> dict[str, Any]:
        """File exports of ``params.exports`` (csv, Google / Meta customer match, MagNews)."""
        customers = pq.read_table(self.ctx.path("customers.parquet"))
        columns = {s.name: csv_columns(s, self.data) for s in self.specs}
        report = write_exports(
            self.ctx.params.exports, self.ctx.run_dir, self.membership, customers, columns
        )
        self.results["exports"] = report
        return report

    def diff(self) -> pd.DataFrame:
        """Membership change since the previous run of the same ``run_name``."""
        run_id = f"{self.ctx.params.run_name}_{self.ctx.as_of_date.isoformat()}"
        frame = write_diff(
            self.ctx.run_dir, self.membership, self.names, self.ctx.params.run_name, run_id
        )
        return self._save("diff", frame)

    def metrics(self) -> dict[str, Any]:
        """The metrics.json ``segments`` section (sizes, shares, diff counts, files)."""
        out: dict[str, Any] = {"as_of": self.data.as_of.isoformat(), "segments": {}}
        summary = self.results.get("summary")
        counts = self.counts().set_index("segment")["customers"]
        for name in self.names:
            entry: dict[str, Any] = {"customers": int(counts.get(name, 0))}
            if summary is not None:
                row = summary[summary["segment"] == name].iloc[0]
                for key in (
                    "share",
                    "revenue",
                    "revenue_share",
                    "orders",
                    "aov",
                    "order_frequency",
                    "avg_clv",
                    "churn_risk",
                ):
                    value = row[key]
                    entry[key] = None if pd.isna(value) else round(float(value), 6)
            out["segments"][name] = entry
        if "diff" in self.results:
            diff = self.results["diff"].set_index("segment")
            for name in self.names:
                out["segments"][name]["diff"] = {
                    k: int(diff.loc[name, k]) for k in ("added", "removed", "stayed")
                }
            previous = self.results["diff"]["previous_run"]
            out["previous_run"] = (str(previous.iloc[0] or "") or None) if len(previous) else None
        if "matrix_thresholds" in self.results:
            out["matrix_thresholds"] = {
                k: round(v, 6) for k, v in self.results["matrix_thresholds"].items()
            }
        if "growth" in self.results:
            growth = self.results["growth"]
            out["growth"] = {
                "models": self.results.get("growth_models"),
                "points": [d.isoformat() for d in sorted(set(growth["date"]))],
            }
        if "exports" in self.results:
            out["exports"] = {
                name: {seg: v["rows"] for seg, v in rep["segments"].items()}
                for name, rep in self.results["exports"].items()
            }
        return out
