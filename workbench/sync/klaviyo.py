"""Klaviyo (revision-dated JSON:API): profiles plus one list per workbench segment.

SYNC_SPECS section 2. Upserts:

- small diffs: ``POST /api/profile-import`` per profile (75/s, 750/min; returns the profile
  id), then ``POST /api/lists/{id}/relationships/profiles`` with up to 1000 ids;
- from ``klaviyo_bulk_min`` profiles on: ``POST /api/profile-bulk-import-jobs`` (up to 10,000
  profiles / 5 MB) with the list in ``relationships.lists``; the job is acknowledged at 202
  and reconciled later (``import-errors`` mark rejected members failed).

Removals use ``DELETE /api/lists/{id}/relationships/profiles`` (list membership only, consent
untouched); profile ids not known yet (bulk-imported members) are looked up by
``external_id`` = the workbench customer id. Every call sends ``revision`` and the
``Klaviyo-API-Key`` header; ``RateLimit-*`` headers and 429 ``Retry-After`` are honoured.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from workbench.exports.identifiers import Identifiers
from workbench.params import ExportSpec
from workbench.sync.base import (
    BatchResult,
    Destination,
    Remote,
    checksum,
    chunks,
    clean_reason,
    option,
    parallel,
)
from workbench.sync.errors import ApiError
from workbench.sync.http import ApiClient
from workbench.sync.plan import Desired, Invalid, Removal, Upsert
from workbench.sync.retry import RateLimiter
from workbench.sync.state import Target

log = logging.getLogger(__name__)

__all__ = ["KlaviyoDestination"]

BASE_URL = "https://a.klaviyo.com"
REVISION = "2026-07-15"
MAX_LIST_PROFILES = 1000
MAX_BULK_PROFILES = 10_000
MAX_BULK_BYTES = 5 * 1024 * 1024
_IDENTITY = {"customer_id", "email", "phone", "first_name", "last_name", "country", "zip"}


class KlaviyoClient(ApiClient):
    """HTTP client reading JSON:API errors and ``RateLimit-*`` headers."""

    vendor = "Klaviyo"

    def error_detail(self, response: httpx.Response) -> str:
        """``title: detail (pointer)`` of each JSON:API error."""
        parts = []
        for err in response.json().get("errors", [])[:3]:
            pointer = (err.get("source") or {}).get("pointer")
            text = f"{err.get('title', '')}: {err.get('detail', '')}".strip(": ")
            parts.append(text + (f" ({pointer})" if pointer else ""))
        return clean_reason("; ".join(parts))

    def observe(self, response: httpx.Response, limiter: RateLimiter | None) -> None:
        """Pause the endpoint's limiter until reset when ``RateLimit-Remaining`` hits 0."""
        remaining = response.headers.get("RateLimit-Remaining")
        if limiter is not None and remaining is not None and remaining.strip() == "0":
            try:
                reset = float(response.headers.get("RateLimit-Reset", "1"))
            except ValueError:
                reset = 1.0
            limiter.pause(min(reset, self.policy.max_retry_after))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class KlaviyoDestination(Destination):
    """Sync segments to Klaviyo lists (one per segment, found or created by name)."""

    types = ("klaviyo",)
    vendor = "Klaviyo"
    secret_kind = "Klaviyo private API key"
    remove_limit = MAX_LIST_PROFILES
    single_id_field = "list_id"

    def __init__(self, spec: ExportSpec, settings: Any, **kwargs: Any) -> None:
        super().__init__(spec, settings, **kwargs)
        self.properties = [c for c in (spec.columns or []) if c not in _IDENTITY]
        self.limits = {
            "list": RateLimiter([(10, 1.0), (150, 60.0)]),
            "import": RateLimiter([(75, 1.0), (750, 60.0)]),
            "bulk": RateLimiter([(10, 1.0), (150, 60.0)]),
            "read": RateLimiter([(10, 1.0), (150, 60.0)]),
        }
        if self.secret is not None:
            self.client = KlaviyoClient(
                spec.name,
                spec.base_url or BASE_URL,
                settings,
                headers={
                    "Authorization": f"Klaviyo-API-Key {self.secret}",
                    "revision": str(option(spec, "revision", REVISION)),
                    "Accept": "application/vnd.api+json",
                    "Content-Type": "application/vnd.api+json",
                },
                max_in_flight=max(2, settings.concurrency),
            )

    # ------------------------------------------------------------ members
    def desired(self, record: Mapping[str, Any], ids: Identifiers) -> Desired | Invalid:
        """Profile attributes keyed by ``external_id`` = customer id."""
        if not ids.matchable:
            return Invalid("no valid email address or phone number")
        attrs: dict[str, Any] = {"external_id": ids.external_id}
        if ids.email:
            attrs["email"] = ids.email
        if ids.phone:
            attrs["phone_number"] = ids.phone
        for name in ("first_name", "last_name"):
            value = record.get(name)
            if value is not None and value == value and str(value).strip():
                attrs[name] = str(value).strip()
        location = {k: v for k, v in (("country", ids.country), ("zip", ids.zip)) if v}
        if location:
            attrs["location"] = location
        props = {c: _json_value(record.get(c)) for c in self.properties}
        props = {k: v for k, v in props.items() if v is not None}
        if props:
            attrs["properties"] = props
        target = Target(
            key=str(ids.external_id), ref={"external_id": ids.external_id}, checksum=checksum(attrs)
        )
        return Desired(target, attrs)

    def identities(self, want: Desired) -> tuple[str, ...]:
        """E-mail and phone: each identifies one Klaviyo profile."""
        attrs = want.payload
        out = [f"email:{attrs['email']}"] if "email" in attrs else []
        return (*out, *([f"phone:{attrs['phone_number']}"] if "phone_number" in attrs else []))

    def upsert_limit(self, total: int) -> int:
        """10,000 per bulk job when the diff is large, else 1000 (list add limit)."""
        if total >= self.settings.klaviyo_bulk_min:
            return self.settings.batch(MAX_BULK_PROFILES)
        return self.settings.batch(MAX_LIST_PROFILES)

    # ------------------------------------------------------------ lists
    def prepare(self, segment: str, known: str | None) -> Remote:
        """The configured list, else the known one (if it still exists), else by name / new."""
        assert self.client is not None
        configured = self.configured_id(segment)
        if configured:
            return Remote(configured)
        read = self.limits["read"]
        if known:
            try:
                self.client.request("GET", f"/api/lists/{known}", limiter=read)
                return Remote(known)
            except ApiError as exc:
                if exc.status != 404:
                    raise
                log.warning("%s: list %s is gone; recreating it", self.spec.name, known)
        found = self.client.request(
            "GET", "/api/lists", params={"filter": f"equals(name,{_quote(segment)})"}, limiter=read
        ).json()
        if found.get("data"):
            return Remote(str(found["data"][0]["id"]), recreated=known is not None)
        body = {"data": {"type": "list", "attributes": {"name": segment}}}
        created = self.client.request("POST", "/api/lists", json=body, limiter=read).json()
        return Remote(str(created["data"]["id"]), recreated=known is not None)

    def _list_call(self, method: str, list_id: str, profile_ids: list[str]) -> None:
        assert self.client is not None
        for part in chunks(profile_ids, MAX_LIST_PROFILES):
            body = {"data": [{"type": "profile", "id": pid} for pid in part]}
            self.client.request(
                method,
                f"/api/lists/{list_id}/relationships/profiles",
                json=body,
                limiter=self.limits["list"],
                expected=(204,),
            )

    # ------------------------------------------------------------ upserts
    def _import_one(self, item: Upsert) -> tuple[Upsert, str | None, str | None]:
        assert self.client is not None
        body = {"data": {"type": "profile", "attributes": item.payload}}
        try:
            resp = self.client.request(
                "POST", "/api/profile-import", json=body, limiter=self.limits["import"]
            )
        except ApiError as exc:
            if exc.is_config_problem:
                raise
            return item, None, exc.detail
        return item, str(resp.json()["data"]["id"]), None

    def upsert(self, segment: str, remote: str, batch: list[Upsert]) -> BatchResult:
        """Bulk job for large batches, else profile-import + list add."""
        if len(batch) >= self.settings.klaviyo_bulk_min:
            return self._bulk(remote, batch)
        result = BatchResult()
        ok: list[tuple[Upsert, str]] = []
        for item, pid, error in parallel(self._import_one, batch, self.settings.concurrency):
            if error or pid is None:
                result.rejected[item.pk] = error or "no profile id returned"
            else:
                ok.append((item, pid))
        self._list_call("POST", remote, [pid for _, pid in ok])
        for item, pid in ok:
            t = item.target
            result.accepted[item.pk] = Target(t.key, {**t.ref, "id": pid}, t.checksum)
        return result

    def _bulk(self, list_id: str, batch: list[Upsert]) -> BatchResult:
        assert self.client is not None
        body = {
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {
                    "profiles": {
                        "data": [{"type": "profile", "attributes": u.payload} for u in batch]
                    }
                },
                "relationships": {"lists": {"data": [{"type": "list", "id": list_id}]}},
            }
        }
        if len(batch) > 1 and len(json.dumps(body)) > MAX_BULK_BYTES:
            half = len(batch) // 2
            first, second = self._bulk(list_id, batch[:half]), self._bulk(list_id, batch[half:])
            first.accepted.update(second.accepted)
            first.jobs.extend(second.jobs)
            return first
        resp = self.client.request(
            "POST", "/api/profile-bulk-import-jobs", json=body, limiter=self.limits["bulk"]
        )
        job_id = str(resp.json()["data"]["id"])
        return BatchResult(
            accepted={u.pk: u.target for u in batch},
            jobs=[(job_id, [u.pk for u in batch])],
            info={"job_id": job_id},
        )

    def job_rejections(self, job_id: str, members: list[str]) -> dict[str, str] | None:
        """None while the bulk job runs; then its import errors by member."""
        assert self.client is not None
        limiter = self.limits["bulk"]
        path = f"/api/profile-bulk-import-jobs/{job_id}"
        status = self.client.request("GET", path, limiter=limiter).json()["data"]["attributes"]
        if status.get("status") in {"queued", "processing"}:
            return None
        if status.get("status") == "cancelled":
            return dict.fromkeys(members, "bulk import job cancelled")
        wanted = set(members)
        rejected: dict[str, str] = {}
        params: dict[str, Any] = {"page[size]": 100}
        while True:
            page = self.client.request(
                "GET", f"{path}/import-errors", params=params, limiter=limiter
            ).json()
            for err in page.get("data", []):
                attrs = err.get("attributes", {})
                original = attrs.get("original_payload") or {}
                pk = str(original.get("external_id", ""))
                if pk in wanted:
                    reason = f"{attrs.get('title', '')}: {attrs.get('detail', '')}".strip(": ")
                    rejected[pk] = clean_reason(reason or "rejected by the import job")
            nxt = (page.get("links") or {}).get("next")
            cursor = parse_qs(urlsplit(nxt).query).get("page[cursor]") if nxt else None
            if not cursor:
                return rejected
            params = {"page[size]": 100, "page[cursor]": cursor[0]}

    # ------------------------------------------------------------ removals
    def _resolve(self, external_ids: list[str]) -> dict[str, str]:
        assert self.client is not None
        found: dict[str, str] = {}
        for part in chunks(external_ids, 100):
            values = ",".join(_quote(x) for x in part)
            page = self.client.request(
                "GET",
                "/api/profiles",
                params={
                    "filter": f"any(external_id,[{values}])",
                    "page[size]": 100,
                    "fields[profile]": "external_id",
                },
                limiter=self.limits["import"],
            ).json()
            for prof in page.get("data", []):
                ext = (prof.get("attributes") or {}).get("external_id")
                if ext is not None:
                    found[str(ext)] = str(prof["id"])
        return found

    def remove(self, segment: str, remote: str, batch: list[Removal]) -> BatchResult:
        """Remove list membership (profiles and consent stay)."""
        unknown = sorted({r["external_id"] for item in batch for r in item.refs if not r.get("id")})
        resolved = self._resolve(unknown) if unknown else {}
        ids: list[str] = []
        for item in batch:
            for ref in item.refs:
                pid = ref.get("id") or resolved.get(str(ref.get("external_id")))
                if pid and pid not in ids:
                    ids.append(pid)
        self._list_call("DELETE", remote, ids)
        return BatchResult(accepted={r.pk: Target("", {}, "") for r in batch})

    def match_rate(
        self, segment: str, remote: str, source_size: int
    ) -> tuple[float | None, str | None]:
        """List ``profile_count`` / segment size."""
        assert self.client is not None
        body = self.client.request(
            "GET",
            f"/api/lists/{remote}",
            params={"additional-fields[list]": "profile_count"},
            limiter=self.limits["read"],
        ).json()
        count = int(body["data"]["attributes"].get("profile_count") or 0)
        return (count / source_size if source_size else None), f"{count} profiles in the list"
