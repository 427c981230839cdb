"""Meta Marketing API: customer-file custom audiences, one per workbench segment.

SYNC_SPECS section 3. Members are multi-key rows (:data:`META_SCHEMA`: SHA-256 hex of the
normalised EMAIL, PHONE, FN, LN, COUNTRY, ZIP; EXTERN_ID in clear). Incremental syncs use
``POST`` / ``DELETE /{audience_id}/users`` with at most 10,000 rows; ``--full`` uses
``POST /{audience_id}/usersreplace`` with one session (``batch_seq``, ``last_batch_flag``) so
the audience ends up holding exactly the segment while keeping its id.

Rows reported in ``invalid_entry_samples`` are recorded as rejected; ``num_invalid_entries``
beyond the samples is logged as unattributed. Throttling arrives as Graph error codes 4, 17,
32, 613 or 80003 (any HTTP status) and is retried with backoff; the
``X-Business-Use-Case-Usage`` header pauses requests when a quota is close to exhaustion.
The access token travels in the form body (``GET``: query string, redacted in logs).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from workbench.exports.identifiers import META_SCHEMA, Identifiers, meta_row, sha256_hex
from workbench.params import ExportSpec
from workbench.sync.base import BatchResult, Destination, Remote, clean_reason, option
from workbench.sync.errors import ApiError
from workbench.sync.http import ApiClient
from workbench.sync.plan import Desired, Invalid, Removal, Upsert
from workbench.sync.retry import RateLimiter
from workbench.sync.state import Target

log = logging.getLogger(__name__)

__all__ = ["MetaDestination"]

GRAPH_VERSION = "v25.0"
MAX_ROWS = 10_000
_THROTTLE_CODES = {4, 17, 32, 613, 80003}
_TRANSIENT_CODES = {1, 2}


def _error(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body.get("error") or {} if isinstance(body, dict) else {}


class MetaClient(ApiClient):
    """HTTP client reading Graph error envelopes and Business Use Case usage headers."""

    vendor = "Meta"

    def error_detail(self, response: httpx.Response) -> str:
        """``message / error_user_msg (code N, subcode M)``."""
        err = _error(response)
        text = err.get("message", response.text[:200])
        if err.get("error_user_msg"):
            text += f" / {err['error_user_msg']}"
        return clean_reason(f"{text} (code {err.get('code')}, subcode {err.get('error_subcode')})")

    def is_throttled(self, response: httpx.Response) -> bool:
        """429 or a Graph throttling code."""
        return response.status_code == 429 or _error(response).get("code") in _THROTTLE_CODES

    def is_server_error(self, response: httpx.Response) -> bool:
        """5xx, or Graph's transient codes 1 / 2 (``is_transient``)."""
        err = _error(response)
        return super().is_server_error(response) or (
            err.get("code") in _TRANSIENT_CODES or bool(err.get("is_transient"))
        )

    def is_config_error(self, response: httpx.Response) -> bool:
        """401 / 403, or Graph auth and permission codes (190, 10, 200, 294)."""
        code = _error(response).get("code")
        return response.status_code in {401, 403} or code in {10, 190, 200, 294}

    def observe(self, response: httpx.Response, limiter: RateLimiter | None) -> None:
        """Pause when a Business Use Case quota is at 95% or access must be regained."""
        header = response.headers.get("X-Business-Use-Case-Usage")
        if not header or limiter is None:
            return
        try:
            usage = json.loads(header)
        except ValueError:
            return
        for entries in usage.values() if isinstance(usage, dict) else []:
            for entry in entries:
                minutes = float(entry.get("estimated_time_to_regain_access") or 0)
                peak = max(
                    float(entry.get(k) or 0) for k in ("call_count", "total_cputime", "total_time")
                )
                if minutes > 0 or peak >= 95:
                    pause = min(max(minutes * 60, 1.0), self.policy.max_retry_after)
                    log.warning("%s: Meta usage at %.0f%%; pausing %.0f s", self.name, peak, pause)
                    limiter.pause(pause)


class MetaDestination(Destination):
    """Sync segments to Meta custom audiences (configured, found by name, or created)."""

    types = ("meta",)
    vendor = "Meta"
    secret_kind = "Meta access token"
    remove_limit = MAX_ROWS
    supports_replace = True
    single_id_field = "audience_id"

    def __init__(self, spec: ExportSpec, settings: Any, **kwargs: Any) -> None:
        super().__init__(spec, settings, **kwargs)
        self.schema = tuple(option(spec, "meta_schema", META_SCHEMA))
        version = option(spec, "api_version", GRAPH_VERSION)
        self.throttle = RateLimiter([])
        if self.secret is not None:
            base = spec.base_url or "https://graph.facebook.com"
            self.client = MetaClient(
                spec.name, f"{base.rstrip('/')}/{version}", settings, max_in_flight=4
            )

    @classmethod
    def check_config(cls, spec: ExportSpec, segments: list[str]) -> None:
        """An ad account (to create audiences) or audience ids are required."""
        super().check_config(spec, segments)
        mapping = option(spec, "audience_ids", {}) or {}
        single = spec.audience_id and len(segments) == 1
        if not spec.account_id and not single and not all(s in mapping for s in segments):
            raise cls.missing(
                spec,
                "Meta needs an ad account to create audiences, or an audience id per segment",
                "set account_id: <ad account id> (audiences are created per segment), or "
                "audience_id (one segment) / audience_ids: {segment: id}",
            )

    @property
    def account(self) -> str:
        """``act_<id>`` of the ad account."""
        acct = str(self.spec.account_id)
        return acct if acct.startswith("act_") else f"act_{acct}"

    def _call(self, method: str, path: str, **fields: Any) -> dict[str, Any]:
        assert self.client is not None and self.secret is not None
        if method == "GET":
            params = {**fields, "access_token": self.secret}
            resp = self.client.request(method, path, params=params, limiter=self.throttle)
        else:
            data = {**fields, "access_token": self.secret}
            resp = self.client.request(method, path, data=data, limiter=self.throttle)
        return resp.json()

    # ------------------------------------------------------------ members
    def desired(self, record: Mapping[str, Any], ids: Identifiers) -> Desired | Invalid:
        """Hashed multi-key row; its checksum is the member's identity."""
        if not ids.matchable:
            return Invalid("no valid email address or phone number")
        row = meta_row(ids, self.schema)
        digest = sha256_hex("\x1f".join(row))
        return Desired(Target(key=digest, ref={"row": row}, checksum=digest), row)

    def upsert_limit(self, total: int) -> int:
        """10,000 rows per request."""
        return self.settings.batch(MAX_ROWS)

    # ------------------------------------------------------------ audiences
    def prepare(self, segment: str, known: str | None) -> Remote:
        """Configured audience, else the known one (if it still exists), else by name / new."""
        configured = self.configured_id(segment)
        if configured:
            return Remote(configured)
        if known:
            try:
                self._call("GET", f"/{known}", fields="id,name")
                return Remote(known)
            except ApiError as exc:
                if exc.status not in {400, 404}:
                    raise
                log.warning("%s: audience %s is gone; recreating it", self.spec.name, known)
        params: dict[str, Any] = {"fields": "id,name", "limit": 500}
        while True:
            page = self._call("GET", f"/{self.account}/customaudiences", **params)
            for aud in page.get("data", []):
                if aud.get("name") == segment:
                    return Remote(str(aud["id"]), recreated=known is not None)
            after = ((page.get("paging") or {}).get("cursors") or {}).get("after")
            if not after or not (page.get("paging") or {}).get("next"):
                break
            params["after"] = after
        created = self._call(
            "POST",
            f"/{self.account}/customaudiences",
            name=segment,
            subtype="CUSTOM",
            description=f"Workbench segment {segment}",
            customer_file_source="USER_PROVIDED_ONLY",
        )
        return Remote(str(created["id"]), recreated=known is not None)

    def _payload(self, rows: list[list[str]]) -> str:
        return json.dumps({"schema": list(self.schema), "is_raw": True, "data": rows})

    def _apply(
        self,
        method: str,
        path: str,
        items: list[Any],
        rows_of: Callable[[Any], list[list[str]]],
        **extra: Any,
    ) -> BatchResult:
        rows: list[list[str]] = []
        owner: list[Any] = []
        for item in items:
            for row in rows_of(item):
                rows.append(row)
                owner.append(item)
        body = self._call(method, path, payload=self._payload(rows), **extra)
        result = BatchResult(
            info={
                "num_received": body.get("num_received"),
                "num_invalid_entries": body.get("num_invalid_entries", 0),
            }
        )
        samples: dict[str, str] = body.get("invalid_entry_samples") or {}
        for sample, reason in samples.items():
            for row, item in zip(rows, owner, strict=True):
                if sample in row:
                    result.rejected[item.pk] = clean_reason(f"invalid entry: {reason}")
        unattributed = int(body.get("num_invalid_entries") or 0) - len(result.rejected)
        if unattributed > 0:
            result.info["unattributed_invalid"] = unattributed
            log.warning(
                "%s: Meta reported %d invalid rows it gave no sample for",
                self.spec.name,
                unattributed,
            )
        return result

    def upsert(self, segment: str, remote: str, batch: list[Upsert]) -> BatchResult:
        """``POST /{audience}/users`` with the batch's rows."""
        result = self._apply("POST", f"/{remote}/users", batch, lambda u: [u.payload])
        result.accepted = {u.pk: u.target for u in batch if u.pk not in result.rejected}
        return result

    def remove(self, segment: str, remote: str, batch: list[Removal]) -> BatchResult:
        """``DELETE /{audience}/users`` with every row the members may be known by."""
        result = self._apply(
            "DELETE", f"/{remote}/users", batch, lambda r: [ref["row"] for ref in r.refs]
        )
        result.accepted = {r.pk: Target("", {}, "") for r in batch if r.pk not in result.rejected}
        return result

    def replace(self, segment: str, remote: str, upserts: list[Upsert]) -> BatchResult:
        """Replace the audience with ``upserts`` in one ``usersreplace`` session."""
        size = self.upsert_limit(len(upserts))
        batches = [upserts[i : i + size] for i in range(0, len(upserts), size)] or [[]]
        session_id = random.randint(1, 2**53)
        total = BatchResult(info={"session_id": session_id, "batches": len(batches)})
        for seq, batch in enumerate(batches, start=1):
            session = {
                "session_id": session_id,
                "batch_seq": seq,
                "last_batch_flag": seq == len(batches),
                "estimated_num_total": len(upserts),
            }
            part = self._apply(
                "POST",
                f"/{remote}/usersreplace",
                batch,
                lambda u: [u.payload],
                session=json.dumps(session),
            )
            total.rejected.update(part.rejected)
        total.accepted = {u.pk: u.target for u in upserts if u.pk not in total.rejected}
        return total

    def match_rate(
        self, segment: str, remote: str, source_size: int
    ) -> tuple[float | None, str | None]:
        """``approximate_count_lower_bound`` / segment size (Meta reports a range)."""
        body = self._call(
            "GET",
            f"/{remote}",
            fields="approximate_count_lower_bound,approximate_count_upper_bound",
        )
        low = body.get("approximate_count_lower_bound")
        high = body.get("approximate_count_upper_bound")
        if low is None or not source_size:
            return None, None
        return int(low) / source_size, f"{low}-{high} people matched (Meta estimate)"
