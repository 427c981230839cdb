"""Ingest every configured source into canonical Parquet tables plus one quarantine file.

Per table: open the source, normalise it (ibis), stage it once to Parquet with a ``_reason``
column, check that no read problem is so frequent that the mapping must be wrong, then split the
stage into the clean table (``<run>/data/<table>.parquet``) and its quarantined rows. All work
streams through the engine; no input file is ever loaded whole into pandas.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from workbench import config, engine
from workbench.errors import InputDataError
from workbench.ingest import incremental as inc
from workbench.ingest import normalise as nz
from workbench.ingest.sources import OpenedSource, open_source
from workbench.ingest.tables import TABLES

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from workbench.params import Params

log = logging.getLogger(__name__)

QUARANTINE_BASE = ("table", "reason", "source")


@dataclass
class TableReport:
    """What happened to one table during ingest."""

    table: str
    source: str
    detected: dict[str, str] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    rows_read: int = 0
    rows_kept: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    nulled: dict[str, int] = field(default_factory=dict)
    derived_from: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    spec_sha256: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


def file_digest(path: Path) -> dict[str, Any]:
    """SHA-256 and size of a file (streamed), for the manifest."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": h.hexdigest()}


def reason_counts(staged: ibis.Table) -> dict[str | None, int]:
    """Rows per ``_reason`` (None = good rows)."""
    counts = staged.group_by(nz.REASON).aggregate(n=ibis._.count()).to_pyarrow().to_pylist()
    return {row[nz.REASON]: int(row["n"]) for row in counts}


def _examples(staged: ibis.Table, reason: str, column: str, n: int = 3) -> list[Any]:
    raw = f"{nz.RAW_PREFIX}{column}"
    if raw not in staged.columns:
        return []
    rows = staged.filter(staged[nz.REASON] == reason).select(staged[raw].cast("string"))
    rows = rows.limit(n).to_pyarrow()
    return rows.column(0).to_pylist()


def check_parse_failures(
    name: str, staged: ibis.Table, counts: dict[str | None, int], limit: float, label: str
) -> None:
    """Fail when one read problem hits more than ``limit`` of the rows: the mapping is wrong."""
    total = sum(counts.values())
    for reason, column in nz.PARSE_REASONS.items():
        n = counts.get(reason, 0)
        if total and n / total > limit:
            examples = _examples(staged, reason, column)
            hint = {
                "ordered_at": f"set data.{name}.timestamp_format (strptime, e.g. '%d/%m/%Y %H:%M')"
                " or check the column mapping",
                "occurred_at": f"set data.{name}.timestamp_format or check the column mapping",
            }.get(column, f"check data.{name}.columns.{column}")
            raise InputDataError(
                f"{n:,} of {total:,} rows ({n / total:.0%}) fail with '{reason}' "
                f"({nz.REASON_TEXT[reason]}); examples of the value: {examples}. More than "
                f"{limit:.0%} (ingest.max_reject_share) means the mapping or format is wrong",
                where=f"{label} (column {column})",
                fix=hint,
            )


def _raw_where_needed(table: ibis.Table, parsed_optional: dict[str, str]) -> ibis.Table:
    """The staged rows with their raw values only where something reads them.

    The quarantine keeps a bad row's raw values, and :func:`_nulled_counts` looks for optional
    values that were given but did not parse; a good row's raw text is never read again. At 1M
    customers (53M events, 11M order lines) writing it was a third of the ingest step.
    """
    bad = table[nz.REASON].notnull()
    optional = {raw: col for col, raw in parsed_optional.items()}
    blank = {}
    for c in table.columns:
        if c.startswith(nz.RAW_PREFIX):
            keep = bad | table[optional[c]].isnull() if c in optional else bad
            blank[c] = ibis.ifelse(keep, table[c], ibis.null(table[c].type()))
    return table.mutate(**blank) if blank else table


def _nulled_counts(staged: ibis.Table, parsed_optional: dict[str, str]) -> dict[str, int]:
    if not parsed_optional:
        return {}
    good = staged.filter(staged[nz.REASON].isnull())
    aggs = {
        col: (good[raw].notnull() & nz.text(good[raw]).notnull() & good[col].isnull())
        .cast("int64")
        .sum()
        for col, raw in parsed_optional.items()
    }
    row = good.aggregate(**aggs).to_pyarrow().to_pylist()[0]
    return {k: int(v or 0) for k, v in row.items() if v}


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _order_facts(clean: ibis.Table) -> dict[str, Any]:
    sales = clean.filter(~clean.is_return)
    row = (
        clean.aggregate(
            lines=clean.count(),
            return_lines=clean.is_return.cast("int64").sum(),
            first=clean.ordered_at.min(),
            last=clean.ordered_at.max(),
            revenue=clean.revenue.cast("float64").sum(),
            returned_revenue=(clean.revenue.cast("float64") * clean.is_return.cast("int64")).sum(),
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    s = sales.aggregate(orders=sales.order_id.nunique(), customers=sales.customer_id.nunique())
    srow = s.to_pyarrow().to_pylist()[0]
    return {
        "order_lines": int(row["lines"]),
        "return_lines": int(row["return_lines"] or 0),
        "orders": int(srow["orders"]),
        "customers": int(srow["customers"]),
        "first_order_at": _iso(row["first"]),
        "last_order_at": _iso(row["last"]),
        "net_revenue": round(float(row["revenue"] or 0), 2),
        "returned_revenue": round(float(row["returned_revenue"] or 0), 2),
    }


class Ingestor:
    """Runs the ingest of one params file into a run folder.

    Parameters
    ----------
    params : Params
        Validated run parameters.
    run_dir : Path
        Run folder; tables go to ``run_dir/data``, the quarantine to ``run_dir``.
    con : ibis backend, optional
        Connection to use (default: the one ``params.engine`` asks for).
    """

    def __init__(self, params: Params, run_dir: Path, con: BaseBackend | None = None) -> None:
        self.params = params
        self.run_dir = Path(run_dir)
        # scratch files of this ingest only: the engine's spill folder (``work/``, Spark's
        # block manager lives there for the whole kernel) must outlive the ingest
        self.work = self.run_dir / "work" / "ingest"
        self.data_dir = self.run_dir / config.RUN_DATA
        self.con = con if con is not None else engine.connect_for(params, self.run_dir / "work")
        self.quarantine_parts: list[Path] = []
        self.reports: dict[str, TableReport] = {}
        self.digests: dict[str, list[dict[str, Any]]] = {}
        self.incremental: dict[str, dict[str, Any]] = {}

    def _plan_reuse(self, name: str) -> inc.Reuse | None:
        """The previous run's rows to reuse for ``name`` (``ingest.incremental``), if any."""
        if not self.params.ingest.incremental:
            return None
        reuse, why = inc.plan(self.params, name, self.run_dir, self.digests[name])
        if reuse is None:
            log.info("%s: full ingest (%s)", name, why)
            self.incremental[name] = {"full_ingest": why}
        else:
            self.incremental[name] = reuse.note()
            log.info("%s: incremental ingest %s", name, self.incremental[name])
        return reuse

    def ingest_table(self, name: str) -> TableReport:
        """Ingest one configured table (only its new files when the last run can be reused)."""
        spec = getattr(self.params.data, name)
        opened = open_source(self.con, name, spec, TABLES[name], self.work)
        self.digests[name] = [file_digest(f) for f in opened.files if f.is_file()]
        reuse = self._plan_reuse(name)
        previous = None
        if reuse is not None:
            if not reuse.new_files:
                return self._reuse_only(name, opened, reuse)
            folder = inc.link_files(reuse.new_files, self.work / f"{name}.new")
            opened = open_source(
                self.con,
                name,
                spec.model_copy(update={"path": str(folder)}),
                TABLES[name],
                self.work,
            )
            opened.label = f"{spec.path} ({len(reuse.new_files)} new file(s))"
            previous = engine.read_parquet(self.con, reuse.data)
        staged_expr = nz.normalise(name, opened, spec, self.params.currency)
        if previous is not None and name == "orders":
            keys = nz.order_line_keys(spec, "line_no" in opened.mapping)
            if keys:
                first = staged_expr.finish
                staged_expr = dataclasses.replace(
                    staged_expr, finish=lambda t: nz.mark_repeats(first(t), previous, keys)
                )
        stage_path = engine.write_parquet(
            _raw_where_needed(staged_expr.table, staged_expr.parsed_optional),
            self.work / f"{name}.stage.parquet",
            scratch=True,
        )
        staged = engine.read_parquet(self.con, stage_path)
        counts = reason_counts(staged)
        total = sum(counts.values())
        if total == 0 and reuse is None:
            raise InputDataError(
                "the source has no rows", where=opened.label, fix="check the file or query"
            )
        if total:
            check_parse_failures(
                name, staged, counts, self.params.ingest.max_reject_share, opened.label
            )
        good = staged.filter(staged[nz.REASON].isnull())
        clean = good.select(*staged_expr.clean_columns)
        if previous is not None:
            clean = previous.select(*clean.columns).cast(clean.schema()).union(clean)
        engine.write_parquet(clean, self.data_dir / f"{name}.parquet")
        bad = staged.filter(staged[nz.REASON].notnull())
        quarantine = bad.select(
            table=ibis.literal(name),
            reason=bad[nz.REASON],
            source=ibis.literal(opened.label),
            **{
                c.removeprefix(nz.RAW_PREFIX): bad[c].cast("string")
                for c in staged.columns
                if c.startswith(nz.RAW_PREFIX)
            },
        )
        if total - counts.get(None, 0):
            self.quarantine_parts.append(
                engine.write_parquet(quarantine, self.work / f"{name}.quarantine.parquet")
            )
        report = TableReport(
            table=name,
            source=str(spec.path) if reuse is not None else opened.label,
            detected=opened.detected,
            files=self.digests[name],
            rows_read=total,
            rows_kept=counts.get(None, 0),
            quarantined=dict(
                sorted(((k, v) for k, v in counts.items() if k), key=lambda kv: -kv[1])
            ),
            nulled=_nulled_counts(staged, staged_expr.parsed_optional),
            spec_sha256=inc.spec_digest(self.params, name),
        )
        if reuse is not None:
            self._add_previous(report, reuse)
        return self._finish_report(name, report)

    def _add_previous(self, report: TableReport, reuse: inc.Reuse) -> None:
        """Fold the previous run's counts and quarantined rows of the table into this one."""
        old = reuse.report
        report.rows_read += old.get("rows_read", 0)
        report.rows_kept += old.get("rows_kept", 0)
        report.quarantined = inc.merge_counts(old.get("quarantined", {}), report.quarantined)
        report.nulled = inc.merge_counts(old.get("nulled", {}), report.nulled)
        part = inc.previous_quarantine(reuse, self.work / f"{report.table}.quarantine.old.parquet")
        if part is not None:
            self.quarantine_parts.append(part)

    def _reuse_only(self, name: str, opened: OpenedSource, reuse: inc.Reuse) -> TableReport:
        """No new file: the previous run's table and quarantine, as they are."""
        target = self.data_dir / f"{name}.parquet"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if reuse.data.is_dir():
            shutil.copytree(reuse.data, target)
        else:
            shutil.copy2(reuse.data, target)
        report = TableReport(
            table=name,
            source=opened.label,
            detected=opened.detected,
            files=self.digests[name],
            spec_sha256=inc.spec_digest(self.params, name),
        )
        self._add_previous(report, reuse)
        return self._finish_report(name, report)

    def _finish_report(self, name: str, report: TableReport) -> TableReport:
        if name == "orders":
            report.facts = _order_facts(
                engine.read_parquet(self.con, self.data_dir / "orders.parquet")
            )
        self.reports[name] = report
        return report

    def derive_from_orders(self) -> None:
        """Build products / customers from attributes carried on order lines, when not given."""
        orders = engine.read_parquet(self.con, self.data_dir / "orders.parquet")
        counts = (
            orders.aggregate(
                name=orders.product_name.count(),
                cat=orders.product_category.count(),
                brand=orders.product_brand.count(),
                country=orders.customer_country.count(),
            )
            .to_pyarrow()
            .to_pylist()[0]
        )
        sales = orders.filter(~orders.is_return)
        if self.params.data.products is None and (
            counts["name"] or counts["cat"] or counts["brand"]
        ):
            products = sales.group_by("product_id").aggregate(
                name=sales.product_name.argmax(sales.ordered_at),
                category=sales.product_category.argmax(sales.ordered_at),
                brand=sales.product_brand.argmax(sales.ordered_at),
                price=sales.unit_price.median().cast("decimal(18, 4)"),
            )
            engine.write_parquet(products, self.data_dir / "products.parquet")
            n = products.count().to_pyarrow().as_py()
            self.reports["products"] = TableReport(
                table="products",
                source="derived from order lines",
                rows_read=n,
                rows_kept=n,
                derived_from="orders",
            )
        if self.params.data.customers is None:
            customers = sales.group_by("customer_id").aggregate(
                country=sales.customer_country.argmax(sales.ordered_at)
            )
            engine.write_parquet(customers, self.data_dir / "customers.parquet")
            n = customers.count().to_pyarrow().as_py()
            self.reports["customers"] = TableReport(
                table="customers",
                source="derived from order lines",
                rows_read=n,
                rows_kept=n,
                derived_from="orders",
            )

    def write_quarantine(self) -> Path:
        """Combine the per-table quarantines into ``quarantine.parquet`` (streamed)."""
        parts = [ds.dataset(p, format="parquet") for p in self.quarantine_parts]
        names = list(QUARANTINE_BASE)
        for part in parts:
            names += [n for n in part.schema.names if n not in names]
        schema = pa.schema([(n, pa.string()) for n in names])
        out = self.run_dir / config.QUARANTINE
        with pq.ParquetWriter(out, schema, compression="zstd") as writer:
            for part in parts:
                for batch in part.to_batches(batch_size=200_000):
                    cols = [
                        batch.column(n).cast(pa.string())
                        if n in batch.schema.names
                        else pa.nulls(batch.num_rows, pa.string())
                        for n in names
                    ]
                    writer.write_batch(pa.record_batch(cols, schema=schema))
        return out

    def run(self, progress: bool = True) -> dict[str, Any]:
        """Ingest every configured table and write the summary; returns the summary."""
        self.work.mkdir(parents=True, exist_ok=True)
        names = [n for n in TABLES if getattr(self.params.data, n) is not None]
        for name in tqdm(names, desc="ingest", unit="table", disable=not progress):
            self.ingest_table(name)
        self.derive_from_orders()
        self.write_quarantine()
        summary = self.summary()
        (self.run_dir / config.INGEST_SUMMARY).write_text(
            json.dumps(summary, indent=2, default=str)
        )
        shutil.rmtree(self.work, ignore_errors=True)
        return summary

    def summary(self) -> dict[str, Any]:
        """Rows read, kept and quarantined per reason, per table."""
        tables = {n: r.as_dict() for n, r in self.reports.items()}
        quarantined = {
            f"{n}.{reason}": c
            for n, r in self.reports.items()
            for reason, c in r.quarantined.items()
        }
        orders = self.reports["orders"].facts
        return {
            "engine": self.params.engine,
            "currency": self.params.currency,
            "tables": tables,
            "quarantined_total": sum(quarantined.values()),
            "quarantined": quarantined,
            "reason_text": {
                r: nz.REASON_TEXT[r] for r in {k.split(".", 1)[1] for k in quarantined}
            },
            "first_order_at": orders.get("first_order_at"),
            "last_order_at": orders.get("last_order_at"),
            "incremental": self.incremental or None,
        }


def ingest(
    params: Params, run_dir: Path, con: BaseBackend | None = None, progress: bool = True
) -> dict[str, Any]:
    """Ingest all sources of ``params`` into ``run_dir``; returns the ingest summary.

    Writes ``run_dir/data/{orders,products,customers,events}.parquet`` (those configured or
    derivable), ``run_dir/quarantine.parquet`` and ``run_dir/ingest_summary.json``.
    """
    return Ingestor(params, run_dir, con).run(progress=progress)


def format_summary(summary: dict[str, Any]) -> str:
    """A few readable lines: rows read, kept and quarantined per reason, per table."""
    lines = []
    for name, rep in summary["tables"].items():
        if rep.get("derived_from"):
            lines.append(f"{name}: {rep['rows_kept']:,} rows derived from {rep['derived_from']}")
            continue
        lines.append(
            f"{name}: {rep['rows_read']:,} rows read, {rep['rows_kept']:,} kept, "
            f"{rep['rows_read'] - rep['rows_kept']:,} quarantined ({rep['source']})"
        )
        for reason, n in rep["quarantined"].items():
            lines.append(f"    {n:>9,}  {reason}: {nz.REASON_TEXT.get(reason, '')}")
        for col, n in rep.get("nulled", {}).items():
            lines.append(f"    {n:>9,}  {col} values unreadable, set empty")
        facts = rep.get("facts") or {}
        if facts:
            lines.append(
                f"    orders {facts['orders']:,}, customers {facts['customers']:,}, return lines "
                f"{facts['return_lines']:,} (revenue {facts['returned_revenue']:,.2f}), net "
                f"revenue {facts['net_revenue']:,.2f} {summary['currency']}, "
                f"{facts['first_order_at']} .. {facts['last_order_at']}"
            )
    return "\n".join(lines)
