"""What a sync reads from a run folder: segment membership and customer attributes.

Contract (written by the segments step):

- ``<run>/segments/membership.parquet``: columns ``segment``, ``customer_id``, one row per
  member of every segment;
- ``<run>/customers.parquet`` (else ``<run>/data/customers.parquet``): ``customer_id`` and the
  contact attributes (``email``, ``phone``, ``first_name``, ``last_name``, ``country``,
  ``zip``, ``language``, ``subscribed``, ...).

A segment is *known* when it has members, or a ``segments/<name>.csv`` file, or a row in
``segments/summary.csv``: an empty segment is still synced (its members are removed).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq

from workbench.exports.identifiers import Identifiers, normalize_identifiers
from workbench.sync.errors import SyncInputError

__all__ = ["CONTACT_COLUMNS", "MEMBERSHIP", "SyncInputs", "load_inputs"]

MEMBERSHIP = Path("segments") / "membership.parquet"
CONTACT_COLUMNS = (
    "customer_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "country",
    "zip",
    "language",
    "subscribed",
)


@dataclass
class SyncInputs:
    """Segments and customers of one run folder.

    Attributes
    ----------
    members : dict
        ``segment -> [customer_id, ...]`` (unique, in file order).
    known : list of str
        Every segment the run defined, empty ones included.
    customers : dict
        ``customer_id -> {column: value}`` for the columns the destinations need.
    """

    run_dir: Path
    members: dict[str, list[str]]
    known: list[str]
    customers: dict[str, dict[str, Any]]
    _ids: dict[tuple[str, str | None], Identifiers] = field(default_factory=dict, repr=False)

    def identifiers(self, customer_id: str, default_country: str | None = None) -> Identifiers:
        """Normalised identifiers of a customer (cached; shared by all destinations)."""
        key = (customer_id, default_country)
        ids = self._ids.get(key)
        if ids is None:
            record = self.customers.get(customer_id, {"customer_id": customer_id})
            ids = normalize_identifiers(record, default_country=default_country)
            self._ids[key] = ids
        return ids


def _segment_files(run_dir: Path) -> set[str]:
    folder = run_dir / "segments"
    names = {p.stem for p in folder.glob("*.csv") if p.stem != "summary"}
    summary = folder / "summary.csv"
    if summary.is_file():
        with open(summary, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            column = next((c for c in ("segment", "name") if c in (reader.fieldnames or [])), None)
            if column:
                names.update(row[column] for row in reader if row.get(column))
    return names


def load_inputs(run_dir: Path, columns: Iterable[str] = ()) -> SyncInputs:
    """Read membership and the needed customer columns of a run folder.

    Parameters
    ----------
    run_dir : Path
        The run folder.
    columns : iterable of str
        Customer columns needed besides :data:`CONTACT_COLUMNS` (missing ones are ignored).

    Raises
    ------
    SyncInputError
        When the run folder, the membership table or the customers table is missing or
        lacks its key columns.
    """
    if not run_dir.is_dir():
        raise SyncInputError(
            "run folder not found",
            where=str(run_dir),
            fix="pass the folder of a finished run (outputs/<run_id>)",
        )
    membership = run_dir / MEMBERSHIP
    if not membership.exists():
        raise SyncInputError(
            "segment membership table not found",
            where=str(membership),
            fix="run the segments step first (`workbench run PARAMS`), then sync that run",
        )
    table = pq.read_table(membership)
    missing = {"segment", "customer_id"} - set(table.column_names)
    if missing:
        raise SyncInputError(
            f"membership table lacks column(s) {', '.join(sorted(missing))}",
            where=str(membership),
            fix="it must have one row per member with columns segment, customer_id",
        )
    members: dict[str, dict[str, None]] = {}
    segs = table.column("segment").to_pylist()
    ids = table.column("customer_id").to_pylist()
    for seg, cid in zip(segs, ids, strict=True):
        if seg is None or cid is None:
            continue
        members.setdefault(str(seg), {})[str(cid).strip()] = None
    customers_path = run_dir / "customers.parquet"
    if not customers_path.exists():
        customers_path = run_dir / "data" / "customers.parquet"
    if not customers_path.exists():
        raise SyncInputError(
            "customers table not found",
            where=str(run_dir / "customers.parquet"),
            fix="sync a complete run folder (it holds customers.parquet)",
        )
    names = ds.dataset(customers_path, format="parquet").schema.names  # file or Spark folder
    if "customer_id" not in names:
        raise SyncInputError("customers table has no customer_id column", where=str(customers_path))
    wanted = [c for c in dict.fromkeys([*CONTACT_COLUMNS, *columns]) if c in names]
    customers = {
        str(row["customer_id"]).strip(): row
        for row in pq.read_table(customers_path, columns=wanted).to_pylist()
        if row["customer_id"] is not None
    }
    known = sorted(set(members) | _segment_files(run_dir))
    return SyncInputs(
        run_dir=run_dir,
        members={seg: list(pks) for seg, pks in members.items()},
        known=known,
        customers=customers,
    )
