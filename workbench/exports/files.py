"""Export files written by the run: segment members as CSV and customer-match upload files.

For each ``params.exports`` entry of a file type, one file per segment under
``<run>/exports/<export name>/<segment>.csv`` (UTF-8, comma-separated, header row):

- ``csv``: the export's ``columns`` (default: the segment's columns).
- ``google_customer_match_file``: Google Ads customer-match CSV with the headers ``Email,
  Phone, First Name, Last Name, Country, Zip``; e-mail, E.164 phone and names normalised and
  SHA-256 hashed, Country (lowercase ISO code) and Zip in clear (SYNC_SPECS 4.6).
- ``meta_audience_file``: Meta customer-file audience with the columns ``EMAIL, PHONE, FN,
  LN, COUNTRY, ZIP, EXTERN_ID``, each normalised and SHA-256 hashed per Meta's key table,
  EXTERN_ID (the customer id) in clear (SYNC_SPECS 3.3, 3.5).
- ``magnews_csv``: MagNews import file: ``email``, the export's ``columns`` (default
  ``first_name, last_name``) and ``segment`` (SYNC_SPECS 5); the sync step writes the add /
  remove files of its diff.

Normalisation and hashing are :mod:`workbench.exports.identifiers` (shared with the sync).
Members without a usable identifier (no valid e-mail or phone; for Google also no complete
name + country + zip) are left out of the platform files and counted as ``skipped``.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from workbench.errors import ParamsError
from workbench.exports.identifiers import (
    GOOGLE_ADS_CSV_HEADERS,
    META_SCHEMA,
    google_ads_csv_row,
    meta_row,
    normalize_email,
    normalize_identifiers,
)
from workbench.params import ExportSpec

__all__ = [
    "EXPORTS_DIR",
    "FILE_TYPES",
    "google_rows",
    "magnews_rows",
    "meta_rows",
    "write_exports",
]

log = logging.getLogger(__name__)

EXPORTS_DIR = "exports"
FILE_TYPES = ("csv", "google_customer_match_file", "meta_audience_file", "magnews_csv")
CONTACT = ("customer_id", "email", "phone", "first_name", "last_name", "country", "zip")
MAGNEWS_FIELDS = ("first_name", "last_name")


def cell_text(value: Any) -> str:
    """A value as CSV text: empty for missing values, ISO format for dates and times."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def write_rows(path: Path, header: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> int:
    """Write dict rows as CSV through a temporary file; returns the number of rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(header), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: cell_text(v) for k, v in row.items()})
            n += 1
    os.replace(tmp, path)
    return n


def google_rows(records: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, str]], int]:
    """Google Ads customer-match rows (hashed) and the number of members skipped.

    A member is kept with a valid e-mail or phone, or with first name, last name, country and
    zip all known (Google's address match).
    """
    rows, skipped = [], 0
    for record in records:
        ids = normalize_identifiers(record)
        address = ids.first_name and ids.last_name and ids.country and ids.zip
        if not (ids.matchable or address):
            skipped += 1
            continue
        rows.append(google_ads_csv_row(ids, hashed=True))
    return rows, skipped


def meta_rows(records: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, str]], int]:
    """Meta multi-key rows (:data:`META_SCHEMA`, hashed) and how many lack e-mail and phone."""
    rows, skipped = [], 0
    for record in records:
        ids = normalize_identifiers(record)
        if not ids.matchable:
            skipped += 1
            continue
        rows.append(dict(zip(META_SCHEMA, meta_row(ids), strict=True)))
    return rows, skipped


def magnews_rows(
    records: Iterable[Mapping[str, Any]], segment: str, fields: Iterable[str]
) -> tuple[list[dict[str, Any]], int]:
    """MagNews rows (normalised e-mail, fields, segment) and the number without a valid e-mail."""
    rows, skipped = [], 0
    fields = list(fields)
    for record in records:
        email = normalize_email(record.get("email"))
        if email is None:
            skipped += 1
            continue
        rows.append({"email": email, **{f: record.get(f) for f in fields}, "segment": segment})
    return rows, skipped


def _members(membership: pa.Table, segment: str) -> pa.Array:
    mask = pc.equal(membership.column("segment"), segment)
    return membership.filter(mask).column("customer_id").combine_chunks()


def _records(customers: pa.Table, ids: pa.Array, columns: Iterable[str]) -> list[dict[str, Any]]:
    keep = [c for c in dict.fromkeys(columns) if c in customers.column_names]
    picked = customers.filter(pc.is_in(customers.column("customer_id"), value_set=ids))
    return picked.select(keep).to_pylist()


def _segments_of(spec: ExportSpec, known: list[str], index: int) -> list[str]:
    if spec.segments is None:
        return known
    unknown = [s for s in spec.segments if s not in known]
    if unknown:
        raise ParamsError(
            f"export {spec.name!r} names unknown segment(s): {', '.join(unknown)}",
            where=f"exports[{index}].segments",
            fix=f"use segment names from the segment files: {', '.join(known) or '(none)'}",
        )
    return list(spec.segments)


def write_exports(
    exports: Iterable[ExportSpec],
    run_dir: Path,
    membership: pa.Table,
    customers: pa.Table,
    segment_columns: Mapping[str, list[str]],
) -> dict[str, Any]:
    """Write every file export of ``params.exports`` (other types are the sync's).

    Parameters
    ----------
    exports : iterable of ExportSpec
        ``params.exports``; entries whose type is not in :data:`FILE_TYPES` are ignored.
    run_dir : Path
        The run folder (files go to ``exports/<name>/<segment>.csv``).
    membership : pyarrow.Table
        ``segment``, ``customer_id``.
    customers : pyarrow.Table
        The customer table (customers.parquet): contact attributes and the CSV columns.
    segment_columns : mapping
        Segment name -> its CSV columns (resolved), in report order.

    Returns
    -------
    dict
        Per export name: type, folder, and per segment ``rows`` and ``skipped``.
    """
    known = list(segment_columns)
    out: dict[str, Any] = {}
    for index, spec in enumerate(exports):
        if spec.type not in FILE_TYPES:
            continue
        folder = Path(run_dir) / EXPORTS_DIR / spec.name
        report: dict[str, Any] = {"type": spec.type, "folder": str(folder), "segments": {}}
        for segment in _segments_of(spec, known, index):
            ids = _members(membership, segment)
            path = folder / f"{segment}.csv"
            if spec.type == "csv":
                columns = spec.columns or segment_columns[segment]
                missing = [c for c in columns if c not in customers.column_names]
                if missing:
                    raise ParamsError(
                        f"export {spec.name!r}: the customer table has no column(s) "
                        f"{', '.join(missing)}",
                        where=f"exports[{index}].columns",
                        fix="use columns of customers.parquet: "
                        + ", ".join(customers.column_names),
                    )
                records = _records(customers, ids, columns)
                rows, skipped, header = records, 0, columns
            elif spec.type == "google_customer_match_file":
                rows, skipped = google_rows(_records(customers, ids, CONTACT))
                header = GOOGLE_ADS_CSV_HEADERS
            elif spec.type == "meta_audience_file":
                rows, skipped = meta_rows(_records(customers, ids, CONTACT))
                header = META_SCHEMA
            else:
                fields = spec.columns or list(MAGNEWS_FIELDS)
                records = _records(customers, ids, ["customer_id", "email", *fields])
                rows, skipped = magnews_rows(records, segment, fields)
                header = ["email", *fields, "segment"]
            n = write_rows(path, header, rows)
            report["segments"][segment] = {"rows": n, "skipped": skipped, "file": path.name}
            if skipped:
                log.info("export %s / %s: %d members without a usable identifier", spec.name,
                         segment, skipped)  # fmt: skip
        out[spec.name] = report
    return out
