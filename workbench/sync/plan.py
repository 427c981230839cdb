"""The diff of one segment at one destination: what to remove, add, update (pure logic).

``adds = current - acknowledged``, ``updates = current & acknowledged with a new checksum``,
``removes = acknowledged - current``; a member whose destination identity changed (new e-mail,
new hashed identifiers) is removed under the old identity and added under the new one.
Rejected members are retried (``retrying``) until they fail ``max_row_attempts`` runs in a
row with unchanged data. ``full`` re-sends every current member.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.sync.state import MemberState, Target

__all__ = ["Desired", "Invalid", "Plan", "Removal", "Upsert", "diff"]


@dataclass(frozen=True)
class Desired:
    """A current member as the destination should hold it."""

    target: Target
    payload: Any


@dataclass(frozen=True)
class Invalid:
    """A current member that cannot be sent (no valid match key), with the reason."""

    reason: str


@dataclass(frozen=True)
class Upsert:
    """Add (``add``), change (``update``) or re-send (``resend``, full sync) one member."""

    pk: str
    target: Target
    payload: Any
    kind: str
    retrying: bool = False


@dataclass(frozen=True)
class Removal:
    """Remove one member (all the refs it may be known by at the destination)."""

    pk: str
    refs: list[dict[str, Any]]
    leaving: bool
    retrying: bool = False


@dataclass
class Plan:
    """Everything one segment x destination needs this run, removals first."""

    total: int = 0
    removals: list[Removal] = field(default_factory=list)
    upserts: list[Upsert] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)
    stuck: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def rekeyed(self) -> set[str]:
        """Members removed under an old identity before being added under a new one."""
        upserting = {u.pk for u in self.upserts}
        return {r.pk for r in self.removals if not r.leaving and r.pk in upserting}

    def counts(self) -> dict[str, int]:
        """Diff counts for dry runs and the sync log."""
        kinds = [u.kind for u in self.upserts]
        rekeyed = self.rekeyed
        return {
            "total": self.total,
            "to_add": kinds.count("add"),
            "to_update": kinds.count("update"),
            "to_resend": kinds.count("resend"),
            "to_remove": sum(1 for r in self.removals if r.pk not in rekeyed),
            "unchanged": self.unchanged,
            "invalid": len(self.invalid),
            "retrying": sum(u.retrying for u in self.upserts)
            + sum(r.retrying for r in self.removals),
            "failed_permanent": len(self.stuck),
        }


def _stuck(row: MemberState | None, checksum: str | None, max_attempts: int) -> bool:
    return (
        row is not None
        and row.state == "failed"
        and row.attempts >= max_attempts
        and row.want_checksum == checksum
    )


def diff(
    current: Mapping[str, Desired | Invalid],
    stored: Mapping[str, MemberState],
    *,
    full: bool = False,
    max_row_attempts: int = 10,
) -> Plan:
    """Compare the current members with the stored state.

    Parameters
    ----------
    current : Mapping
        ``member_pk -> Desired | Invalid`` for every member of the segment now.
    stored : Mapping
        ``member_pk -> MemberState`` from :meth:`StateStore.load`.
    full : bool
        Re-send every current member (``resend``), not only the changes.
    max_row_attempts : int
        Runs a rejected member is retried with unchanged data before it is reported as
        permanently failed (``stuck``) and skipped.
    """
    plan = Plan(total=len(current))
    for pk, want in current.items():
        row = stored.get(pk)
        retrying = row is not None and row.state == "failed"
        if isinstance(want, Invalid):
            plan.invalid[pk] = want.reason
            refs = row.removal_refs() if row is not None else []
            if refs:
                plan.removals.append(Removal(pk, refs, leaving=False, retrying=retrying))
            continue
        target = want.target
        if _stuck(row, target.checksum, max_row_attempts):
            plan.stuck[pk] = row.last_error or "rejected"  # type: ignore[union-attr]
            continue
        if row is None or not row.acknowledged:
            kind = "add"
        elif row.dest_key != target.key:
            plan.removals.append(Removal(pk, row.removal_refs(), leaving=False, retrying=retrying))
            kind = "update"
        elif row.checksum != target.checksum:
            kind = "update"
        elif row.state != "synced":
            kind = "resend"
        elif full:
            kind = "resend"
        else:
            plan.unchanged += 1
            continue
        plan.upserts.append(Upsert(pk, target, want.payload, kind, retrying))
    for pk, row in stored.items():
        if pk in current or row.state == "removed":
            continue
        refs = row.removal_refs()
        if not refs:
            plan.dropped.append(pk)
            continue
        if _stuck(row, row.want_checksum, max_row_attempts):
            plan.stuck[pk] = row.last_error or "rejected"
            continue
        plan.removals.append(Removal(pk, refs, leaving=True, retrying=row.state == "failed"))
    return plan
