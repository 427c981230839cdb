"""What every destination implements, and helpers the implementations share.

A destination turns a customer record into a :class:`~workbench.sync.plan.Desired` member
(identity, removal ref, checksum of the synced fields, payload), and sends batches of removals
and upserts, answering with a :class:`BatchResult` that says which members the destination
acknowledged and which it rejected (with the reason). The engine owns ordering, batching,
state and logs.
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from workbench.exports.identifiers import Identifiers
from workbench.sync.errors import SyncConfigError
from workbench.sync.plan import Desired, Invalid, Removal, Upsert
from workbench.sync.settings import SyncSettings
from workbench.sync.state import Target

if TYPE_CHECKING:
    from workbench.params import ExportSpec
    from workbench.sync.http import ApiClient

__all__ = [
    "BatchResult",
    "Destination",
    "Remote",
    "checksum",
    "chunks",
    "clean_reason",
    "option",
    "parallel",
]

T = TypeVar("T")
R = TypeVar("R")

_EMAIL = re.compile(r"[^@\s\"'<>,;:]+@[^@\s\"'<>,;:]+")
_PHONE = re.compile(r"\+?\d[\d \-().]{7,}\d")


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def checksum(value: Any) -> str:
    """SHA-256 hex of the canonical JSON of ``value`` (sorted keys, no spaces)."""
    return hashlib.sha256(_CANONICAL.encode(value).encode("utf-8")).hexdigest()


def clean_reason(text: str, limit: int = 300) -> str:
    """A rejection reason safe for logs: e-mail addresses and phone numbers masked."""
    text = _EMAIL.sub("<email>", str(text))
    return _PHONE.sub("<phone>", text)[:limit]


def option(spec: ExportSpec, name: str, default: Any = None) -> Any:
    """An optional ExportSpec field, read defensively (fields the lead may add later)."""
    value = getattr(spec, name, None)
    return default if value is None else value


def chunks(
    items: Sequence[T], limit: int, weight: Callable[[T], int] | None = None
) -> Iterator[list[T]]:
    """Consecutive batches whose total weight (default 1 per item) stays within ``limit``."""
    batch: list[T] = []
    total = 0
    for item in items:
        w = weight(item) if weight else 1
        if batch and total + w > limit:
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += w
    if batch:
        yield batch


def parallel(func: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """``[func(item) for item in items]`` on a thread pool; the first exception propagates."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(func, items))


@dataclass
class BatchResult:
    """What the destination said about one batch.

    Attributes
    ----------
    accepted : dict
        ``member_pk -> Target`` acknowledged (for removals the target is unused; the ref of
        an upsert may have gained a destination id, e.g. the Klaviyo profile id).
    rejected : dict
        ``member_pk -> reason`` (PII masked).
    jobs : list of (str, list of str)
        Asynchronous jobs to reconcile later with their members (Klaviyo bulk import).
    info : dict
        Extra figures for the sync log (request id, invalid entries reported, ...).
    """

    accepted: dict[str, Target] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    jobs: list[tuple[str, list[str]]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Remote:
    """The destination-side container of a segment (list, static segment, audience)."""

    remote_id: str
    recreated: bool = False


class Destination(ABC):
    """Base class of the destination clients.

    Parameters
    ----------
    spec : ExportSpec
        The export entry.
    settings : SyncSettings
        Timeouts, retries, batch caps.
    secret : str or None
        The API key / token (None for file routes and dry runs).
    run_dir : Path
        The run folder (file routes write there).
    segments : list of str
        Every segment the entry exports (configured ids depend on all of them).
    """

    #: ExportSpec.type values this class serves.
    types: ClassVar[tuple[str, ...]] = ()
    #: Human name for messages.
    vendor: ClassVar[str] = "destination"
    #: What the secret is, for messages; None when no secret is needed.
    secret_kind: ClassVar[str | None] = "API key"
    #: Documented maximum refs per removal request.
    remove_limit: ClassVar[int] = 500
    #: Files instead of API calls (the engine calls :meth:`export`).
    file_based: ClassVar[bool] = False
    #: Supports a full replace (Meta usersreplace) for ``--full``.
    supports_replace: ClassVar[bool] = False
    #: ExportSpec field naming the container when the destination exports one segment.
    single_id_field: ClassVar[str | None] = None

    def __init__(
        self,
        spec: ExportSpec,
        settings: SyncSettings,
        *,
        secret: str | None,
        run_dir: Path,
        segments: list[str],
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.secret = secret
        self.run_dir = run_dir
        self.segments = segments
        self.client: ApiClient | None = None

    # ------------------------------------------------------------ configuration
    @classmethod
    def check_config(cls, spec: ExportSpec, segments: list[str]) -> None:
        """Raise :class:`SyncConfigError` when ids the destination needs are missing.

        Parameters
        ----------
        spec : ExportSpec
            The export entry.
        segments : list of str
            Every segment the entry exports (not only those of this sync).
        """
        field_name = cls.single_id_field
        mapping = option(spec, "audience_ids", {}) or {}
        if field_name and getattr(spec, field_name, None) and len(segments) > 1:
            unmapped = [s for s in segments if s not in mapping]
            if unmapped:
                raise cls.missing(
                    spec,
                    f"{field_name} names one {cls.vendor} container but {len(segments)} "
                    f"segments are exported ({', '.join(segments)})",
                    "export one segment per entry, or map each segment with audience_ids: "
                    "{segment: id}",
                )

    def fingerprint(self) -> str:
        """Identity of the target account / list: state is discarded when it changes."""
        parts = [self.spec.type, self.spec.list_id, self.spec.audience_id, self.spec.account_id]
        return "|".join(str(p or "") for p in parts)

    def configured_id(self, segment: str) -> str | None:
        """The container id configured for ``segment``.

        ``audience_ids[segment]``, else the :attr:`single_id_field` value when the entry
        exports exactly one segment.
        """
        mapping = option(self.spec, "audience_ids", {}) or {}
        if segment in mapping:
            return str(mapping[segment])
        field_name = self.single_id_field
        value = getattr(self.spec, field_name, None) if field_name else None
        if value and len(self.segments) == 1:
            return str(value)
        return None

    @staticmethod
    def missing(spec: ExportSpec, what: str, fix: str) -> SyncConfigError:
        """A configuration error about ``spec``."""
        return SyncConfigError(what, where=f"exports[{spec.name}]", fix=fix)

    # ------------------------------------------------------------ members
    @abstractmethod
    def desired(self, record: Mapping[str, Any], ids: Identifiers) -> Desired | Invalid:
        """The member as this destination should hold it (or why it cannot be sent)."""

    def upsert_limit(self, total: int) -> int:
        """Batch size for ``total`` pending upserts."""
        return 500

    def identities(self, want: Desired) -> tuple[str, ...]:
        """Values that must be unique among a segment's members (``kind:value``).

        Two customers sharing one would be one contact at the destination: removing one
        would remove the other. The engine keeps the lowest customer id and reports the
        others as invalid. Default: the destination identity (``target.key``).
        """
        return (f"identity:{want.target.key}",)

    # ------------------------------------------------------------ operations
    def prepare(self, segment: str, known: str | None) -> Remote:
        """Find or create the destination-side container of ``segment``."""
        return Remote(known or segment)

    def remove(self, segment: str, remote: str, batch: list[Removal]) -> BatchResult:
        """Remove a batch of members; their refs total at most :attr:`remove_limit`."""
        raise NotImplementedError

    def upsert(self, segment: str, remote: str, batch: list[Upsert]) -> BatchResult:
        """Add or update a batch of members (at most :meth:`upsert_limit`)."""
        raise NotImplementedError

    def replace(self, segment: str, remote: str, upserts: list[Upsert]) -> BatchResult:
        """Make the destination hold exactly ``upserts`` (only when supports_replace)."""
        raise NotImplementedError

    def export(
        self, segment: str, upserts: list[Upsert], removals: list[Removal], current: list[Upsert]
    ) -> tuple[BatchResult, BatchResult]:
        """File routes: write the files; returns (removal result, upsert result)."""
        raise NotImplementedError

    def job_rejections(self, job_id: str, members: list[str]) -> dict[str, str] | None:
        """Rejected members of a finished job; None while the job is still running."""
        return {}

    def match_rate(
        self, segment: str, remote: str, source_size: int
    ) -> tuple[float | None, str | None]:
        """Destination audience size / source size, where the platform reports it.

        Returns the rate (or None) and a human-readable detail (e.g. Meta's range).
        """
        return None, None

    @property
    def requests(self) -> int:
        """HTTP requests sent so far."""
        return self.client.requests if self.client is not None else 0

    def close(self) -> None:
        """Release connections."""
        if self.client is not None:
            self.client.close()
