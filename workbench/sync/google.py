"""Google Customer Match through the Data Manager API (the route for new adopters since 2026).

SYNC_SPECS section 4. ``POST /v1/audienceMembers:ingest`` and ``:remove`` with at most 10,000
members per request, ``encoding: HEX`` and SHA-256 identifiers (gmail rule, E.164 phones;
``regionCode`` / ``postalCode`` in clear). One destination per request: the operating account
(``account_id``, type ``account_type``, default ``GOOGLE_ADS``), an optional manager
``login_account_id``, and the user list id of the segment as ``productDestinationId``
(``audience_id`` for a single segment, ``audience_ids`` per segment; the lists are created in
Google Ads, not here). Consent: ``consent: granted | denied`` at request level,
``from_subscribed`` per member from the ``subscribed`` column, unset = not sent.

Requests are limited to 300 per minute per project. A 400 ``INVALID_ARGUMENT`` whose
``BadRequest.fieldViolations`` point at ``audienceMembers[i]`` rejects those members and the
rest is sent again; a rejection that names no member is bisected once. The match rate comes
from ``requestStatus:retrieve`` (``uploadMatchRateRange``; its lower bound is reported).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from workbench.exports.identifiers import Identifiers, google_identifiers, sha256_hex
from workbench.params import ExportSpec
from workbench.sync.base import BatchResult, Destination, Remote, checksum, clean_reason, option
from workbench.sync.errors import ApiError, SyncConfigError
from workbench.sync.http import ApiClient
from workbench.sync.plan import Desired, Invalid, Removal, Upsert
from workbench.sync.retry import RateLimiter
from workbench.sync.state import Target

log = logging.getLogger(__name__)

__all__ = ["GoogleDestination", "match_rate_lower_bound"]

BASE_URL = "https://datamanager.googleapis.com"
MAX_MEMBERS = 10_000
_MEMBER = re.compile(r"^audienceMembers\[(\d+)\]")
_RANGE = re.compile(r"MATCH_RATE_RANGE_(?:(LESS_THAN)_(\d+)|(\d+)_TO_(\d+))")
_TRUE = {"true", "1", "yes", "y", "t"}


def match_rate_lower_bound(value: str | None) -> float | None:
    """Lower bound (0-1) of a ``MATCH_RATE_RANGE_*`` value; None when unknown / not eligible."""
    m = _RANGE.fullmatch(value or "")
    if not m:
        return None
    return 0.0 if m.group(1) else int(m.group(3)) / 100


def _violations(body: Any) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    details = ((body or {}).get("error") or {}).get("details") or []
    for detail in details:
        out.extend(detail.get("fieldViolations") or [])
    return out


class GoogleClient(ApiClient):
    """HTTP client reading ``google.rpc.Status`` errors."""

    vendor = "Google Data Manager"

    def error_detail(self, response: httpx.Response) -> str:
        """``STATUS: message`` plus the first field violations."""
        err = response.json().get("error", {})
        text = f"{err.get('status', '')}: {err.get('message', '')}".strip(": ")
        fields = [f"{v.get('field')}: {v.get('description')}" for v in _violations(response.json())]
        return clean_reason(text + (f" ({'; '.join(fields[:3])})" if fields else ""))

    def is_throttled(self, response: httpx.Response) -> bool:
        """429 ``RESOURCE_EXHAUSTED``."""
        if response.status_code == 429:
            return True
        try:
            return response.json().get("error", {}).get("status") == "RESOURCE_EXHAUSTED"
        except (ValueError, AttributeError):
            return False


class GoogleDestination(Destination):
    """Sync segments to Google Ads customer-match user lists via the Data Manager API."""

    types = ("google",)
    vendor = "Google Data Manager"
    secret_kind = "Google OAuth access token"
    remove_limit = MAX_MEMBERS
    single_id_field = "audience_id"

    def __init__(self, spec: ExportSpec, settings: Any, **kwargs: Any) -> None:
        super().__init__(spec, settings, **kwargs)
        self.consent = option(spec, "consent")
        self.limiter = RateLimiter([(300, 60.0)])
        self.request_ids: dict[str, str] = {}
        if self.secret is not None:
            self.client = GoogleClient(
                spec.name,
                spec.base_url or BASE_URL,
                settings,
                headers={"Authorization": f"Bearer {self.secret}"},
                max_in_flight=4,
            )

    @classmethod
    def check_config(cls, spec: ExportSpec, segments: list[str]) -> None:
        """The operating account and a user list id per segment are required."""
        super().check_config(spec, segments)
        if not spec.account_id:
            raise cls.missing(
                spec,
                "Google needs the operating account id",
                "set account_id: <Google Ads customer id, digits only>",
            )
        mapping = option(spec, "audience_ids", {}) or {}
        single = spec.audience_id and len(segments) == 1
        if not single and not all(s in mapping for s in segments):
            raise cls.missing(
                spec,
                "Google needs the customer-match user list id of every segment",
                "create the lists in Google Ads, then set audience_id (one segment) or "
                "audience_ids: {segment: user list id}",
            )
        if option(spec, "consent") not in {None, "granted", "denied", "from_subscribed"}:
            raise cls.missing(
                spec,
                f"unknown consent mode {option(spec, 'consent')!r}",
                "use consent: granted | denied | from_subscribed",
            )

    # ------------------------------------------------------------ members
    def desired(self, record: Mapping[str, Any], ids: Identifiers) -> Desired | Invalid:
        """``userData.userIdentifiers`` (+ per-member consent with ``from_subscribed``)."""
        identifiers = google_identifiers(ids)
        if not identifiers:
            return Invalid("no valid email address, phone number or complete address")
        member: dict[str, Any] = {"userData": {"userIdentifiers": identifiers}}
        key = checksum(identifiers)
        digest = key
        if self.consent == "from_subscribed":
            raw = record.get("subscribed")
            yes = str(raw).strip().lower() in _TRUE if isinstance(raw, str) else bool(raw)
            status = "CONSENT_GRANTED" if yes and raw == raw else "CONSENT_DENIED"
            member["consent"] = {"adUserData": status, "adPersonalization": status}
            digest = sha256_hex(f"{key}|{status}")
        return Desired(Target(key=key, ref={"ids": identifiers}, checksum=digest), member)

    def upsert_limit(self, total: int) -> int:
        """10,000 members per request."""
        return self.settings.batch(MAX_MEMBERS)

    def prepare(self, segment: str, known: str | None) -> Remote:
        """The configured user list (never created here)."""
        configured = self.configured_id(segment)
        if not configured:  # check_config guarantees one; keep a clear error anyway
            raise self.missing(self.spec, f"no user list id for segment {segment}", "see above")
        return Remote(configured)

    # ------------------------------------------------------------ requests
    def _destinations(self, remote: str) -> list[dict[str, Any]]:
        dest: dict[str, Any] = {
            "operatingAccount": {
                "accountType": option(self.spec, "account_type", "GOOGLE_ADS"),
                "accountId": str(self.spec.account_id),
            },
            "productDestinationId": remote,
        }
        login = option(self.spec, "login_account_id")
        if login:
            dest["loginAccount"] = {"accountType": "GOOGLE_ADS", "accountId": str(login)}
        return [dest]

    def _send(
        self,
        action: str,
        remote: str,
        items: list[Any],
        member_of: Callable[[Any], list[dict[str, Any]]],
        *,
        second_try: bool = False,
    ) -> BatchResult:
        assert self.client is not None
        members: list[dict[str, Any]] = []
        owner: list[Any] = []
        for item in items:
            for m in member_of(item):
                members.append(m)
                owner.append(item)
        body: dict[str, Any] = {
            "destinations": self._destinations(remote),
            "audienceMembers": members,
            "encoding": "HEX",
        }
        if action == "ingest" and self.consent in {"granted", "denied"}:
            status = "CONSENT_GRANTED" if self.consent == "granted" else "CONSENT_DENIED"
            body["consent"] = {"adUserData": status, "adPersonalization": status}
        try:
            resp = self.client.request(
                "POST", f"/v1/audienceMembers:{action}", json=body, limiter=self.limiter
            )
        except ApiError as exc:
            if exc.is_config_problem or exc.status != 400:
                raise
            return self._split(action, remote, items, owner, member_of, exc, second_try)
        return BatchResult(
            accepted={i.pk: getattr(i, "target", Target("", {}, "")) for i in items},
            info={"request_id": resp.json().get("requestId")},
        )

    def _split(
        self,
        action: str,
        remote: str,
        items: list[Any],
        owner: list[Any],
        member_of: Callable[[Any], list[dict[str, Any]]],
        exc: ApiError,
        second_try: bool,
    ) -> BatchResult:
        bad: dict[str, str] = {}
        for v in _violations(exc.body):
            field = str(v.get("field", ""))
            if field.startswith("destinations"):
                raise SyncConfigError(
                    f"Google rejected the destination: {clean_reason(v.get('description', ''))}",
                    where=f"exports[{self.spec.name}]",
                    fix="check account_id, account_type, login_account_id and the user list ids",
                )
            m = _MEMBER.match(field)
            if m and int(m.group(1)) < len(owner):
                bad[owner[int(m.group(1))].pk] = clean_reason(v.get("description") or exc.detail)
        result = BatchResult(rejected=dict(bad))
        rest = [i for i in items if i.pk not in bad]
        if second_try or not rest:
            result.rejected.update({i.pk: exc.detail for i in rest})
            return result
        parts = [rest] if bad else [rest[: len(rest) // 2], rest[len(rest) // 2 :]]
        for part in (p for p in parts if p):
            sub = self._send(action, remote, part, member_of, second_try=True)
            result.accepted.update(sub.accepted)
            result.rejected.update(sub.rejected)
            result.info.update(sub.info)
        return result

    def upsert(self, segment: str, remote: str, batch: list[Upsert]) -> BatchResult:
        """``audienceMembers:ingest``."""
        result = self._send("ingest", remote, batch, lambda u: [u.payload])
        if result.info.get("request_id"):
            self.request_ids[segment] = result.info["request_id"]
        return result

    def remove(self, segment: str, remote: str, batch: list[Removal]) -> BatchResult:
        """``audienceMembers:remove`` with every identifier set the members may be known by."""
        return self._send(
            "remove",
            remote,
            batch,
            lambda r: [{"userData": {"userIdentifiers": ref["ids"]}} for ref in r.refs],
        )

    def match_rate(
        self, segment: str, remote: str, source_size: int
    ) -> tuple[float | None, str | None]:
        """Lower bound of ``uploadMatchRateRange`` of the last ingest request of ``segment``."""
        assert self.client is not None
        request_id = self.request_ids.get(segment)
        if not request_id:
            return None, None
        deadline = time.monotonic() + self.settings.job_timeout
        while True:
            body = self.client.request(
                "GET",
                "/v1/requestStatus:retrieve",
                params={"requestId": request_id},
                limiter=self.limiter,
            ).json()
            statuses = body.get("requestStatusPerDestination") or [{}]
            status = statuses[0]
            if status.get("requestStatus") != "PROCESSING" or time.monotonic() > deadline:
                break
            time.sleep(self.settings.job_poll_interval)
        ingest = (status.get("audienceMembersIngestionStatus") or {}).get(
            "userDataIngestionStatus"
        ) or {}
        rate_range = ingest.get("uploadMatchRateRange")
        detail = f"{status.get('requestStatus', 'unknown')}, {rate_range or 'no match rate'}"
        return match_rate_lower_bound(rate_range), detail
