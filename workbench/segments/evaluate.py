"""Evaluate segments: their members, the membership table and the per-segment member CSVs."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from ibis import _
from tqdm.auto import tqdm

from workbench.segments.check import check_segment
from workbench.segments.compile import compile_where
from workbench.segments.data import SegmentData
from workbench.segments.spec import SegmentSpec

__all__ = [
    "MEMBERSHIP_SCHEMA",
    "csv_columns",
    "evaluate_segments",
    "membership_expr",
    "segment_members",
    "write_csv",
]

log = logging.getLogger(__name__)

MEMBERSHIP_SCHEMA = pa.schema([("segment", pa.string()), ("customer_id", pa.string())])


def segment_members(spec: SegmentSpec, data: SegmentData, *, check: bool = True) -> ir.Table:
    """The segment's members: a filter of the customer table (all its columns).

    Parameters
    ----------
    spec : SegmentSpec
        The validated segment.
    data : SegmentData
        The tables it runs on.
    check : bool
        Check the spec against the data first (unknown columns, targets, categories).
    """
    if check:
        check_segment(spec, data)
    return compile_where(spec.where, data)


def csv_columns(spec: SegmentSpec, data: SegmentData) -> list[str]:
    """The customer-table columns of ``segments/<name>.csv`` (horizon aliases resolved)."""
    return [data.column(c) for c in spec.columns]


def evaluate_segments(
    specs: list[SegmentSpec], data: SegmentData, *, batch: int = 10, progress: bool = False
) -> pa.Table:
    """Members of every segment as one table (``segment``, ``customer_id``), sorted.

    Every spec is checked against the data before any is evaluated, so a bad one fails fast.
    Segments are evaluated ``batch`` at a time, each batch as one query (a union).
    """
    if not specs:
        return MEMBERSHIP_SCHEMA.empty_table()
    for spec in specs:
        check_segment(spec, data)
    parts = []
    for start in tqdm(range(0, len(specs), batch), desc="segments", disable=not progress):
        expr = membership_expr(specs[start : start + batch], data)
        parts.append(expr.to_pyarrow())
    table = pa.concat_tables(parts).cast(MEMBERSHIP_SCHEMA)
    table = table.take(
        pc.sort_indices(table, [("segment", "ascending"), ("customer_id", "ascending")])
    )
    counts = table.group_by("segment").aggregate([("customer_id", "count")]).to_pylist()
    for row in counts:
        log.info("segment %s: %d members", row["segment"], row["customer_id_count"])
    return table


def membership_expr(specs: list[SegmentSpec], data: SegmentData) -> ir.Table:
    """One query for the members of several segments: ``segment``, ``customer_id``."""
    parts = [
        compile_where(spec.where, data).select(
            segment=ibis.literal(spec.name), customer_id=_["customer_id"].cast("string")
        )
        for spec in specs
    ]
    return functools.reduce(lambda a, b: a.union(b, distinct=False), parts)


def write_csv(table: pa.Table, path: Path) -> Path:
    """Write a member table as UTF-8 CSV with a header (timestamps in ISO 8601)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            column = pc.cast(column, pa.string())
        elif pa.types.is_decimal(column.type):
            column = pc.cast(column, pa.float64())
        cols.append(column)
        del name
    table = pa.table(cols, names=table.column_names)
    tmp = path.with_name(path.name + ".tmp")
    pacsv.write_csv(table, tmp, pacsv.WriteOptions(quoting_style="needed"))
    tmp.replace(path)
    return path
