"""CSV routes for platforms without an API client (MagNews, SYNC_SPECS section 5).

Each sync writes, per segment, into ``<run>/sync/<destination>/``:

- ``<segment>.csv``: every current member (the file to import as a whole);
- ``<segment>.add.csv``: members added or changed since the last acknowledged sync;
- ``<segment>.remove.csv``: members to remove (e-mail and segment only).

UTF-8, comma-separated, header row; columns ``email``, the mapped fields (``columns`` of the
export entry, default ``first_name``, ``last_name``) and ``segment``. Files are written to a
temporary name and renamed, then the state records the diff as delivered, so the next sync's
add / remove files hold only what changed after this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.exports.files import cell_text, write_rows
from workbench.exports.identifiers import Identifiers
from workbench.params import ExportSpec
from workbench.sync.base import BatchResult, Destination, checksum
from workbench.sync.plan import Desired, Invalid, Removal, Upsert
from workbench.sync.state import Target

__all__ = ["CsvRouteDestination"]

DEFAULT_FIELDS = ("first_name", "last_name")


class CsvRouteDestination(Destination):
    """Write segment members (full, adds, removals) as CSV files for manual import."""

    types = ("magnews_csv",)
    vendor = "CSV route"
    secret_kind = None
    file_based = True
    remove_limit = 10**9

    def __init__(self, spec: ExportSpec, settings: Any, **kwargs: Any) -> None:
        super().__init__(spec, settings, **kwargs)
        self.fields = [c for c in (spec.columns or DEFAULT_FIELDS) if c != "email"]
        self.folder = self.run_dir / "sync" / spec.name

    def fingerprint(self) -> str:
        """Type and field list: changing the fields re-delivers every member."""
        return f"{self.spec.type}|{','.join(self.fields)}"

    def desired(self, record: Mapping[str, Any], ids: Identifiers) -> Desired | Invalid:
        """Row with e-mail and the mapped fields; invalid without a valid e-mail."""
        if not ids.email:
            return Invalid("no valid email address")
        row = {"email": ids.email} | {f: cell_text(record.get(f)) for f in self.fields}
        return Desired(Target(ids.email, {"email": ids.email}, checksum(row)), row)

    def identities(self, want: Desired) -> tuple[str, ...]:
        """The e-mail (one row per address)."""
        return (f"email:{want.payload['email']}",)

    def upsert_limit(self, total: int) -> int:
        """One file: no batching."""
        return max(total, 1)

    def export(
        self, segment: str, upserts: list[Upsert], removals: list[Removal], current: list[Upsert]
    ) -> tuple[BatchResult, BatchResult]:
        """Write the three files, then report every change as delivered."""
        self.folder.mkdir(parents=True, exist_ok=True)
        header = ["email", *self.fields, "segment"]
        write_rows(
            self.folder / f"{segment}.csv",
            header,
            [{**u.payload, "segment": segment} for u in current],
        )
        write_rows(
            self.folder / f"{segment}.add.csv",
            header,
            [{**u.payload, "segment": segment} for u in upserts],
        )
        emails = sorted({ref["email"] for r in removals for ref in r.refs})
        write_rows(
            self.folder / f"{segment}.remove.csv",
            ["email", "segment"],
            [{"email": e, "segment": segment} for e in emails],
        )
        removed = BatchResult(accepted={r.pk: Target("", {}, "") for r in removals})
        added = BatchResult(accepted={u.pk: u.target for u in upserts})
        return removed, added
