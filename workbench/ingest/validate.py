"""``workbench validate``: check params, sources and column mappings without running models."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from workbench import engine
from workbench.ingest import normalise as nz
from workbench.ingest.pipeline import check_parse_failures, reason_counts
from workbench.ingest.sources import open_source
from workbench.ingest.tables import TABLES

if TYPE_CHECKING:
    from workbench.params import Params

SAMPLE_ROWS = 5_000


def validate_sources(params: Params, sample_rows: int = SAMPLE_ROWS) -> list[str]:
    """Open every configured source, resolve its mapping and parse a sample of rows.

    Sources are read with an in-memory DuckDB whatever ``params.engine`` says: only headers
    and the first ``sample_rows`` rows are touched.

    Returns
    -------
    list of str
        One readable line per finding.

    Raises
    ------
    InputDataError
        A source cannot be read, a required column is missing, or the sample shows that a
        column cannot be parsed at all.
    """
    lines = []
    con = engine.connect("duckdb", threads=2)
    with tempfile.TemporaryDirectory(prefix="wb-validate-") as tmp:
        for name, tspec in TABLES.items():
            spec = getattr(params.data, name)
            if spec is None:
                continue
            opened = open_source(con, name, spec, tspec, Path(tmp))
            opened.table = opened.table.limit(sample_rows)
            staged = nz.normalise(name, opened, spec, params.currency).table
            counts = reason_counts(staged)
            total = sum(counts.values())
            check_parse_failures(
                name, staged, counts, params.ingest.max_reject_share, f"{opened.label} (sample)"
            )
            detected = ", ".join(f"{k} {v!r}" for k, v in opened.detected.items())
            problems = ", ".join(f"{k} {v}" for k, v in counts.items() if k)
            lines.append(
                f"{name}: {opened.label} ({detected}); {len(opened.mapping)} columns mapped "
                f"({', '.join(f'{c}<-{s}' for c, s in opened.mapping.items())})"
                + (f", {len(opened.attributes)} extra attributes" if opened.attributes else "")
            )
            lines.append(
                f"    first {total:,} rows: {counts.get(None, 0):,} usable"
                + (f"; would be quarantined: {problems}" if problems else "")
            )
    return lines
