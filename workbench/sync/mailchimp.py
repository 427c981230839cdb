"""Mailchimp Marketing API v3: list members plus one static segment per workbench segment.

SYNC_SPECS section 1. Per batch of at most 500 members:

1. new members: ``POST /lists/{list_id}`` (batch subscribe, ``update_existing: false`` so an
   existing contact's subscription status is never changed); rejected members come back in
   ``errors`` with HTTP 200, ``ERROR_CONTACT_EXISTS`` means "already on the list";
2. changed members and contacts that already existed: ``PUT /lists/{id}/members/{hash}``
   with ``status_if_new`` and the merge fields (idempotent, never touches ``status``);
3. ``POST /lists/{id}/segments/{segment_id}`` with ``members_to_add`` (max 500).

Removal takes members out of the static segment (``members_to_remove``); contacts are never
archived or deleted. Auth is HTTP Basic with the key as password; the data centre comes from the
key's suffix (``...-us14``). At most 10 requests are in flight per account.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from workbench.exports.identifiers import Identifiers, subscriber_hash
from workbench.params import ExportSpec
from workbench.sync.base import (
    BatchResult,
    Destination,
    Remote,
    checksum,
    clean_reason,
    option,
    parallel,
)
from workbench.sync.errors import ApiError
from workbench.sync.http import ApiClient
from workbench.sync.plan import Desired, Invalid, Removal, Upsert
from workbench.sync.state import Target

log = logging.getLogger(__name__)

__all__ = ["MailchimpDestination"]

MAX_MEMBERS = 500
MAX_IN_FLIGHT = 10
DEFAULT_MERGE_FIELDS = {"FNAME": "first_name", "LNAME": "last_name"}
_TRUE = {"true", "1", "yes", "y", "t"}


class MailchimpClient(ApiClient):
    """HTTP client reading Mailchimp's problem+json errors."""

    vendor = "Mailchimp"

    def error_detail(self, response: httpx.Response) -> str:
        """``title: detail`` plus field errors of a problem+json body."""
        body = response.json()
        text = f"{body.get('title', '')}: {body.get('detail', '')}".strip(": ")
        fields = [f"{e.get('field')}: {e.get('message')}" for e in body.get("errors") or []]
        return clean_reason(text + (f" ({'; '.join(fields)})" if fields else ""))


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value) and value == value  # NaN is falsy here


class MailchimpDestination(Destination):
    """Sync segments to static segments of one Mailchimp audience (``list_id``)."""

    types = ("mailchimp",)
    vendor = "Mailchimp"
    secret_kind = "Mailchimp API key"
    remove_limit = MAX_MEMBERS

    def __init__(self, spec: ExportSpec, settings: Any, **kwargs: Any) -> None:
        super().__init__(spec, settings, **kwargs)
        self.list_id = str(spec.list_id)
        self.merge_fields: dict[str, str] = dict(
            option(spec, "merge_fields", DEFAULT_MERGE_FIELDS) or {}
        )
        self.status_if_new: str | None = option(spec, "status_if_new")
        if self.secret is not None:
            self.client = MailchimpClient(
                spec.name,
                self._base_url(),
                settings,
                auth=httpx.BasicAuth("workbench", self.secret),
                headers={"Accept": "application/json"},
                max_in_flight=MAX_IN_FLIGHT,
            )

    @classmethod
    def check_config(cls, spec: ExportSpec, segments: list[str]) -> None:
        """``list_id`` (the audience) is required."""
        super().check_config(spec, segments)
        if not spec.list_id:
            raise cls.missing(spec, "Mailchimp needs the audience id", "set list_id: <audience id>")

    def _base_url(self) -> str:
        if self.spec.base_url:
            return self.spec.base_url
        assert self.secret is not None
        if "-" not in self.secret:
            raise self.missing(
                self.spec,
                "the Mailchimp API key has no data-centre suffix (like -us14)",
                "use the full key as shown in Mailchimp, or set base_url",
            )
        dc = self.secret.rsplit("-", 1)[1]
        return f"https://{dc}.api.mailchimp.com/3.0"

    # ------------------------------------------------------------ members
    def desired(self, record: Mapping[str, Any], ids: Identifiers) -> Desired | Invalid:
        """E-mail keyed member with merge fields; invalid without a valid e-mail."""
        if not ids.email:
            return Invalid("no valid email address")
        merge = {}
        for tag, column in self.merge_fields.items():
            value = record.get(column)
            if value is not None and value == value and str(value).strip():
                merge[tag] = str(value).strip()
        status = self.status_if_new or (
            "subscribed" if _truthy(record.get("subscribed")) else "transactional"
        )
        payload = {"email_address": ids.email, "status": status, "merge_fields": merge}
        target = Target(
            key=subscriber_hash(ids.email),
            ref={"email": ids.email},
            checksum=checksum({"email": ids.email, "merge_fields": merge}),
        )
        return Desired(target, payload)

    def identities(self, want: Desired) -> tuple[str, ...]:
        """The e-mail (one Mailchimp contact per address)."""
        return (f"email:{want.payload['email_address']}",)

    def upsert_limit(self, total: int) -> int:
        """500 members per batch (batch subscribe and segment add limits)."""
        return self.settings.batch(MAX_MEMBERS)

    # ------------------------------------------------------------ operations
    def _segment_path(self, remote: str) -> str:
        return f"/lists/{self.list_id}/segments/{remote}"

    def prepare(self, segment: str, known: str | None) -> Remote:
        """Find (by id, then by name) or create the static segment named after ``segment``."""
        assert self.client is not None
        configured = self.configured_id(segment)
        if configured:
            return Remote(configured)
        if known:
            try:
                self.client.request("GET", self._segment_path(known))
                return Remote(known)
            except ApiError as exc:
                if exc.status != 404:
                    raise
                log.warning("%s: static segment %s is gone; recreating it", self.spec.name, known)
        offset = 0
        while True:
            page = self.client.request(
                "GET",
                f"/lists/{self.list_id}/segments",
                params={"type": "static", "count": 1000, "offset": offset},
            ).json()
            for seg in page.get("segments", []):
                if seg.get("name") == segment:
                    return Remote(str(seg["id"]), recreated=known is not None)
            offset += 1000
            if offset >= int(page.get("total_items", 0)):
                break
        created = self.client.request(
            "POST", f"/lists/{self.list_id}/segments", json={"name": segment, "static_segment": []}
        ).json()
        return Remote(str(created["id"]), recreated=known is not None)

    def _put(self, item: Upsert) -> tuple[str, str | None]:
        assert self.client is not None
        body = {
            "email_address": item.payload["email_address"],
            "status_if_new": item.payload["status"],
            "merge_fields": item.payload["merge_fields"],
        }
        try:
            self.client.request(
                "PUT", f"/lists/{self.list_id}/members/{item.target.key}", json=body
            )
        except ApiError as exc:
            if exc.is_config_problem:
                raise
            return item.pk, exc.detail
        return item.pk, None

    def upsert(self, segment: str, remote: str, batch: list[Upsert]) -> BatchResult:
        """Batch-subscribe new members, PUT changed ones, then add all to the segment."""
        assert self.client is not None
        result = BatchResult()
        by_email = {u.payload["email_address"]: u for u in batch}
        to_put = [u for u in batch if u.kind != "add"]
        new = [u for u in batch if u.kind == "add"]
        if new:
            body = self.client.request(
                "POST",
                f"/lists/{self.list_id}",
                json={"members": [u.payload for u in new], "update_existing": False},
            ).json()
            result.info["created"] = body.get("total_created", 0)
            for err in body.get("errors") or []:
                item = by_email.get(str(err.get("email_address", "")).strip().lower())
                if item is None:
                    continue
                if err.get("error_code") == "ERROR_CONTACT_EXISTS":
                    to_put.append(item)
                else:
                    result.rejected[item.pk] = clean_reason(err.get("error") or "rejected")
        for pk, error in parallel(self._put, to_put, min(self.settings.concurrency, MAX_IN_FLIGHT)):
            if error:
                result.rejected[pk] = error
        emails = [u.payload["email_address"] for u in batch if u.pk not in result.rejected]
        if emails:
            body = self.client.request(
                "POST", self._segment_path(remote), json={"members_to_add": emails}
            ).json()
            self._segment_errors(body, by_email, result)
        result.accepted = {u.pk: u.target for u in batch if u.pk not in result.rejected}
        return result

    def remove(self, segment: str, remote: str, batch: list[Removal]) -> BatchResult:
        """Take members out of the static segment (contacts stay in the audience)."""
        assert self.client is not None
        result = BatchResult()
        owners: dict[str, list[Removal]] = {}
        for item in batch:
            for ref in item.refs:
                owners.setdefault(ref["email"], []).append(item)
        body = self.client.request(
            "POST", self._segment_path(remote), json={"members_to_remove": list(owners)}
        ).json()
        by_email = {email: items[0] for email, items in owners.items()}
        self._segment_errors(body, by_email, result)
        result.accepted = {r.pk: Target("", {}, "") for r in batch if r.pk not in result.rejected}
        return result

    @staticmethod
    def _segment_errors(
        body: dict[str, Any], by_email: Mapping[str, Any], out: BatchResult
    ) -> None:
        for err in body.get("errors") or []:
            emails = err.get("email_addresses") or [err.get("email_address")]
            for email in emails:
                item = by_email.get(str(email or "").strip().lower())
                if item is not None:
                    out.rejected[item.pk] = clean_reason(err.get("error") or "rejected")

    def match_rate(
        self, segment: str, remote: str, source_size: int
    ) -> tuple[float | None, str | None]:
        """Static segment ``member_count`` / segment size."""
        assert self.client is not None
        body = self.client.request("GET", self._segment_path(remote)).json()
        count = int(body.get("member_count", 0))
        rate = count / source_size if source_size else None
        return rate, f"{count} members in the static segment"
