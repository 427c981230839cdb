"""Fake Meta Graph API for customer-file custom audiences (SYNC_SPECS section 3).

Implements the ``access_token`` parameter (form body or query), Graph error envelopes
(code 190 bad token, 100 invalid parameter, 2 transient), audience list / create / read
(approximate counts), ``POST`` / ``DELETE /{id}/users`` with the multi-key ``payload`` (max
10,000 rows; rows with malformed hashes or no identifier are counted in
``num_invalid_entries`` with ``invalid_entry_samples``) and ``usersreplace`` sessions
(``batch_seq`` in order; the audience is swapped on ``last_batch_flag``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from workbench.sync.testing.server import FakeServer, Reply, Request

__all__ = ["FakeMeta"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_KEYS = {"EXTERN_ID", "EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI", "CT"}
_KEYS |= {"ST", "ZIP", "MADID", "COUNTRY"}
_CLEAR = {"EXTERN_ID", "MADID"}


class FakeMeta(FakeServer):
    """In-memory ad account with custom audiences. Client base URL: ``fake.url``."""

    vendor = "Meta"

    def __init__(self, token: str = "fake-token", account: str = "act_123", **kw: Any) -> None:
        self.token = token
        self.account = account
        self.audiences: dict[str, dict[str, Any]] = {}
        self.reject: set[str] = set()
        self._next = 23850000000000000
        super().__init__(**kw)

    def add_audience(self, name: str) -> str:
        """Create an audience directly; returns its id."""
        self._next += 1
        self.audiences[str(self._next)] = {"name": name, "rows": set(), "sessions": {}}
        return str(self._next)

    # ------------------------------------------------------------ inspection
    def audience_by_name(self, name: str) -> str | None:
        """Id of the audience called ``name``."""
        return next((i for i, a in self.audiences.items() if a["name"] == name), None)

    def extern_ids(self, audience_id: str) -> set[str]:
        """EXTERN_ID values of the rows in an audience (schema with EXTERN_ID last)."""
        return {row[-1] for row in self.audiences[audience_id]["rows"]}

    # ------------------------------------------------------------ protocol
    def error(self, status: int, message: str, **extra: Any) -> Reply:
        """Graph error envelope."""
        code = extra.pop("code", {500: 2, 503: 2, 404: 803}.get(status, 100))
        body = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}
        if code == 2:
            body["is_transient"] = True
        body.update(extra)
        return Reply(status, {"error": body})

    def authenticate(self, req: Request) -> Reply | None:
        """``access_token`` in the form body or the query string."""
        token = (req.body or {}).get("access_token") if isinstance(req.body, dict) else None
        token = token or req.query.get("access_token", [None])[0]
        if token != self.token:
            return self.error(
                400, "Invalid OAuth access token - Cannot parse access token", code=190
            )
        return None

    def routes(self) -> list[tuple[str, str, Any]]:
        """The endpoints the client uses."""
        v = r"/v\d+\.\d+"
        return [
            ("GET", v + r"/(?P<acct>act_\d+)/customaudiences", self.list_audiences),
            ("POST", v + r"/(?P<acct>act_\d+)/customaudiences", self.create_audience),
            ("POST", v + r"/(?P<aud>\d+)/users", self.add_users),
            ("DELETE", v + r"/(?P<aud>\d+)/users", self.delete_users),
            ("POST", v + r"/(?P<aud>\d+)/usersreplace", self.replace_users),
            ("GET", v + r"/(?P<aud>\d+)", self.get_audience),
        ]

    def _account(self, acct: str) -> Reply | None:
        if acct != self.account:
            return self.error(400, f"Unsupported request: ad account {acct} not found", code=100)
        return None

    def list_audiences(self, req: Request, acct: str) -> Reply:
        """Audiences of the account, ``limit`` / ``after`` paging."""
        bad = self._account(acct)
        if bad:
            return bad
        limit = int(req.query.get("limit", ["25"])[0])
        start = int(req.query.get("after", ["0"])[0] or 0)
        items = [{"id": i, "name": a["name"]} for i, a in sorted(self.audiences.items())]
        page = items[start : start + limit]
        paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + limit)}}
        if start + limit < len(items):
            paging["next"] = f"{self.url}{req.path}?after={start + limit}"
        return Reply(200, {"data": page, "paging": paging})

    def create_audience(self, req: Request, acct: str) -> Reply:
        """New customer-file audience."""
        bad = self._account(acct)
        if bad:
            return bad
        body = req.body or {}
        if not body.get("name") or body.get("subtype") != "CUSTOM":
            return self.error(400, "Invalid parameter: name and subtype=CUSTOM are required")
        if body.get("customer_file_source") not in {
            "USER_PROVIDED_ONLY",
            "PARTNER_PROVIDED_ONLY",
            "BOTH_USER_AND_PARTNER_PROVIDED",
        }:
            return self.error(400, "Invalid parameter: customer_file_source")
        return Reply(200, {"id": self.add_audience(body["name"])})

    def get_audience(self, req: Request, aud: str) -> Reply:
        """Audience fields, with approximate counts (lower bound ~95% of matched rows)."""
        if aud not in self.audiences:
            return self.error(
                400,
                f"Unsupported get request. Object with ID '{aud}' does not exist",
                code=100,
                error_subcode=33,
            )
        n = len(self.audiences[aud]["rows"])
        return Reply(
            200,
            {
                "id": aud,
                "name": self.audiences[aud]["name"],
                "approximate_count_lower_bound": int(n * 0.95),
                "approximate_count_upper_bound": n,
            },
        )

    # ------------------------------------------------------------ users
    def _rows(self, req: Request, aud: str) -> tuple[list[str], list[tuple[str, ...]]] | Reply:
        if aud not in self.audiences:
            return self.error(
                400, f"Object with ID '{aud}' does not exist", code=100, error_subcode=33
            )
        try:
            payload = json.loads((req.body or {}).get("payload", ""))
        except (ValueError, TypeError):
            return self.error(400, "Invalid parameter: payload must be a JSON object", code=100)
        schema = payload.get("schema")
        data = payload.get("data")
        if not isinstance(schema, list) or not set(schema) <= _KEYS or not isinstance(data, list):
            return self.error(400, "Invalid parameter: schema / data", code=100)
        if len(data) > 10_000:
            return self.error(400, "Invalid parameter: at most 10000 users per request", code=100)
        if any(not isinstance(r, list) or len(r) != len(schema) for r in data):
            return self.error(400, "Invalid parameter: each row must match the schema", code=100)
        return schema, [tuple(str(v) for v in r) for r in data]

    def _check(self, schema: list[str], rows: list[tuple[str, ...]]):
        valid, samples, invalid = [], {}, 0
        for row in rows:
            reason = None
            for key, value in zip(schema, row, strict=True):
                if value and key not in _CLEAR and not _HEX64.match(value):
                    reason, sample = "Invalid SHA-256 hash", value
                    break
                if key == "EMAIL" and value in self.reject:
                    reason, sample = "Invalid entry", value
                    break
            if reason is None and not any(
                v for k, v in zip(schema, row, strict=True) if k != "EXTERN_ID"
            ):
                reason, sample = "No identifier in row", row[-1]
            if reason:
                invalid += 1
                if len(samples) < 10:
                    samples[sample] = reason
            else:
                valid.append(row)
        return valid, samples, invalid

    def _answer(self, aud: str, received: int, samples: dict, invalid: int, session: Any = None):
        return Reply(
            200,
            {
                "audience_id": aud,
                "session_id": str(session or 0),
                "num_received": received,
                "num_invalid_entries": invalid,
                "invalid_entry_samples": samples,
            },
        )

    def add_users(self, req: Request, aud: str) -> Reply:
        """Add rows (membership is a set: re-adding is harmless)."""
        parsed = self._rows(req, aud)
        if isinstance(parsed, Reply):
            return parsed
        schema, rows = parsed
        valid, samples, invalid = self._check(schema, rows)
        self.audiences[aud]["rows"].update(valid)
        return self._answer(aud, len(rows), samples, invalid)

    def delete_users(self, req: Request, aud: str) -> Reply:
        """Remove rows equal to, or sharing the EMAIL hash of, the given rows."""
        parsed = self._rows(req, aud)
        if isinstance(parsed, Reply):
            return parsed
        schema, rows = parsed
        valid, samples, invalid = self._check(schema, rows)
        stored = self.audiences[aud]["rows"]
        col = schema.index("EMAIL") if "EMAIL" in schema else None
        emails = {r[col] for r in valid if col is not None and r[col]}
        gone = set(valid) | {r for r in stored if col is not None and r[col] in emails}
        stored.difference_update(gone)
        return self._answer(aud, len(rows), samples, invalid)

    def replace_users(self, req: Request, aud: str) -> Reply:
        """Collect a session's batches; swap the audience on ``last_batch_flag``."""
        parsed = self._rows(req, aud)
        if isinstance(parsed, Reply):
            return parsed
        schema, rows = parsed
        try:
            session = json.loads((req.body or {}).get("session", ""))
            sid, seq = int(session["session_id"]), int(session["batch_seq"])
        except (ValueError, TypeError, KeyError):
            return self.error(400, "Invalid parameter: session is required", code=100)
        sessions = self.audiences[aud]["sessions"]
        expected = sessions.get(sid, {"seq": 0})["seq"] + 1
        if seq != expected:
            return self.error(
                400, f"Invalid parameter: batch_seq {seq}, expected {expected}", code=100
            )
        valid, samples, invalid = self._check(schema, rows)
        state = sessions.setdefault(sid, {"seq": 0, "rows": set()})
        state["seq"] = seq
        state["rows"].update(valid)
        if session.get("last_batch_flag"):
            self.audiences[aud]["rows"] = state["rows"]
            del sessions[sid]
        return self._answer(aud, len(rows), samples, invalid, sid)
