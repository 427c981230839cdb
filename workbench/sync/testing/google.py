"""Fake Google Data Manager API, audience members only (SYNC_SPECS section 4).

Implements bearer auth, ``google.rpc.Status`` errors with ``BadRequest.fieldViolations``,
the 300 requests / minute quota (429 ``RESOURCE_EXHAUSTED``), ``audienceMembers:ingest`` and
``:remove`` (1-10 destinations, 1-10,000 members, 1-10 identifiers each, HEX SHA-256 values,
``regionCode`` / ``postalCode`` in clear, consent values, ``validateOnly``), and
``requestStatus:retrieve`` with ``uploadMatchRateRange``. A request with any violation is
rejected as a whole, as the API does.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import deque
from typing import Any

from workbench.sync.testing.server import FakeServer, Reply, Request

__all__ = ["FakeGoogle"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CONSENT = {"CONSENT_STATUS_UNSPECIFIED", "CONSENT_GRANTED", "CONSENT_DENIED"}
_ACCOUNT_TYPES = {"GOOGLE_ADS", "DISPLAY_VIDEO_PARTNER", "DISPLAY_VIDEO_ADVERTISER", "DATA_PARTNER"}
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}
_STATUS |= {404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def _bucket(rate: float) -> str:
    pct = int(rate * 100)
    if pct < 20:
        return "MATCH_RATE_RANGE_LESS_THAN_20"
    if pct <= 30:
        return "MATCH_RATE_RANGE_20_TO_30"
    low = ((pct - 1) // 10) * 10 + 1
    return f"MATCH_RATE_RANGE_{low}_TO_{min(low + 9, 100)}"


class FakeGoogle(FakeServer):
    """In-memory Google Ads account with customer-match user lists."""

    vendor = "Google Data Manager"

    def __init__(
        self,
        token: str = "ya29.fake",
        account_id: str = "1234567890",
        *,
        per_minute: int | None = 300,
        **kw: Any,
    ) -> None:
        self.token = token
        self.account_id = account_id
        self.per_minute = per_minute
        self.lists: dict[str, dict[str, Any]] = {}
        self.statuses: dict[str, dict[str, Any]] = {}
        self.reject: set[str] = set()
        self._window: deque[float] = deque()
        super().__init__(**kw)

    def add_list(self, list_id: str) -> None:
        """Create an empty user list."""
        self.lists[list_id] = {"members": {}, "index": {}}

    def emails(self, list_id: str) -> set[str]:
        """Hashed e-mails of the list's members."""
        out = set()
        for ids in self.lists[list_id]["members"].values():
            out.update(i["emailAddress"] for i in ids if "emailAddress" in i)
        return out

    def size(self, list_id: str) -> int:
        """Number of members."""
        return len(self.lists[list_id]["members"])

    # ------------------------------------------------------------ protocol
    def error(self, status: int, message: str, **extra: Any) -> Reply:
        """``google.rpc.Status``."""
        body = {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}
        if extra.get("violations"):
            body["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": extra["violations"],
                }
            ]
        if extra.get("info"):
            body["details"] = [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", **extra["info"]}
            ]
        return Reply(status, {"error": body})

    def authenticate(self, req: Request) -> Reply | None:
        """``Authorization: Bearer <token>``."""
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return self.error(401, "Request had invalid authentication credentials.")
        return None

    def admit(self, req: Request) -> Reply | None:
        """Per-project quota: ``per_minute`` requests in any 60 s."""
        if self.per_minute is None or req.method != "POST":
            return None
        with self.lock:
            now = time.monotonic()
            while self._window and now - self._window[0] >= 60:
                self._window.popleft()
            if len(self._window) >= self.per_minute:
                return self.error(
                    429,
                    "Quota exceeded for quota metric 'Ingestion mutate requests'.",
                    info={
                        "reason": "RATE_LIMIT_EXCEEDED",
                        "domain": "googleapis.com",
                        "metadata": {"quota_limit": "IngestionMutateRequestsPerMinutePerProject"},
                    },
                )
            self._window.append(now)
        return None

    def routes(self) -> list[tuple[str, str, Any]]:
        """The endpoints the client uses."""
        return [
            ("POST", r"/v1/audienceMembers:ingest", self.ingest),
            ("POST", r"/v1/audienceMembers:remove", self.remove),
            ("GET", r"/v1/requestStatus:retrieve", self.request_status),
        ]

    # ------------------------------------------------------------ validation
    def _validate(self, body: dict[str, Any], ingest: bool) -> list[dict[str, str]]:
        v: list[dict[str, str]] = []
        dests = body.get("destinations") or []
        if not 1 <= len(dests) <= 10:
            v.append({"field": "destinations", "description": "1 to 10 destinations required"})
        for i, d in enumerate(dests):
            acct = d.get("operatingAccount") or {}
            if (
                acct.get("accountType") not in _ACCOUNT_TYPES
                or acct.get("accountId") != self.account_id
            ):
                v.append(
                    {
                        "field": f"destinations[{i}].operatingAccount",
                        "description": "unknown account",
                    }
                )
            if d.get("productDestinationId") not in self.lists:
                v.append(
                    {
                        "field": f"destinations[{i}].productDestinationId",
                        "description": "user list not found",
                    }
                )
        if body.get("encoding") not in {"HEX", "BASE64"}:
            v.append({"field": "encoding", "description": "encoding is required for UserData"})
        for key in ("consent",) if ingest else ():
            for part in (body.get(key) or {}).values():
                if part not in _CONSENT:
                    v.append({"field": key, "description": f"invalid consent status {part}"})
        members = body.get("audienceMembers") or []
        if not 1 <= len(members) <= 10_000:
            v.append({"field": "audienceMembers", "description": "1 to 10000 members required"})
        for i, m in enumerate(members):
            ids = ((m.get("userData") or {}).get("userIdentifiers")) or []
            if not 1 <= len(ids) <= 10:
                v.append(
                    {
                        "field": f"audienceMembers[{i}].userData",
                        "description": "1 to 10 identifiers required",
                    }
                )
            for j, ident in enumerate(ids):
                where = f"audienceMembers[{i}].userData.userIdentifiers[{j}]"
                v.extend(self._identifier(ident, where))
        return v

    def _identifier(self, ident: dict[str, Any], where: str) -> list[dict[str, str]]:
        if len(ident) != 1:
            return [{"field": where, "description": "exactly one identifier per entry"}]
        kind, value = next(iter(ident.items()))
        if kind in {"emailAddress", "phoneNumber"}:
            if not isinstance(value, str) or not _HEX64.match(value):
                return [{"field": f"{where}.{kind}", "description": "not a hex SHA-256 hash"}]
            if value in self.reject:
                return [{"field": f"{where}.{kind}", "description": "identifier rejected"}]
            return []
        if kind == "address":
            bad = [
                k for k in ("givenName", "familyName") if not _HEX64.match(str(value.get(k, "")))
            ]
            if not re.fullmatch(r"[A-Z]{2}", str(value.get("regionCode", ""))):
                bad.append("regionCode")
            if not value.get("postalCode"):
                bad.append("postalCode")
            return [{"field": f"{where}.address.{k}", "description": "invalid"} for k in bad]
        return [{"field": where, "description": f"unknown identifier {kind}"}]

    # ------------------------------------------------------------ endpoints
    @staticmethod
    def _keys(ids: list[dict[str, Any]]) -> list[str]:
        return [json.dumps(i, sort_keys=True) for i in ids]

    def _apply(self, req: Request, ingest: bool) -> Reply:
        body = req.body if isinstance(req.body, dict) else {}
        violations = self._validate(body, ingest)
        if violations:
            return self.error(400, "Request contains an invalid argument.", violations=violations)
        if body.get("validateOnly"):
            return Reply(200, {})
        members = body["audienceMembers"]
        with_email = 0
        for dest in body["destinations"]:
            lst = self.lists[dest["productDestinationId"]]
            for m in members:
                ids = m["userData"]["userIdentifiers"]
                with_email += any("emailAddress" in i for i in ids)
                keys = self._keys(ids)
                found = {lst["index"][k] for k in keys if k in lst["index"]}
                for member_id in found:
                    for k in self._keys(lst["members"].pop(member_id)):
                        lst["index"].pop(k, None)
                if ingest:
                    member_id = uuid.uuid4().hex
                    lst["members"][member_id] = ids
                    for k in keys:
                        lst["index"][k] = member_id
        request_id = uuid.uuid4().hex
        counts = {
            "recordCount": str(len(members)),
            "userIdentifierCount": str(sum(len(m["userData"]["userIdentifiers"]) for m in members)),
        }
        if ingest:
            counts["uploadMatchRateRange"] = _bucket(
                with_email / max(1, len(members) * len(body["destinations"]))
            )
            status = {"audienceMembersIngestionStatus": {"userDataIngestionStatus": counts}}
        else:
            status = {"audienceMembersRemovalStatus": {"userDataRemovalStatus": counts}}
        self.statuses[request_id] = [
            {"destination": d, "requestStatus": "SUCCESS", **status} for d in body["destinations"]
        ]
        return Reply(200, {"requestId": request_id})

    def ingest(self, req: Request) -> Reply:
        """``audienceMembers:ingest``."""
        return self._apply(req, ingest=True)

    def remove(self, req: Request) -> Reply:
        """``audienceMembers:remove``."""
        return self._apply(req, ingest=False)

    def request_status(self, req: Request) -> Reply:
        """``requestStatus:retrieve?requestId=...``."""
        request_id = req.query.get("requestId", [""])[0]
        if request_id not in self.statuses:
            return self.error(404, "Request not found.")
        return Reply(200, {"requestStatusPerDestination": self.statuses[request_id]})
