"""Fake Mailchimp Marketing API v3 (SYNC_SPECS section 1), for tests and benchmarks.

Implements basic auth, the 10-connection limit (429), problem+json errors, batch subscribe
(``POST /3.0/lists/{id}``, max 500, partial errors with HTTP 200, ``ERROR_CONTACT_EXISTS``),
member upsert (``PUT .../members/{hash}``), static segments (list, create, get, batch
add / remove max 500 each, unknown e-mails ignored). E-mails listed in ``reject`` are refused
as "looks fake or invalid".
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from workbench.sync.testing.server import FakeServer, Reply, Request

__all__ = ["FakeMailchimp"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_STATUSES = {"subscribed", "unsubscribed", "cleaned", "pending", "transactional"}


def _hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode()).hexdigest()


@dataclass
class _List:
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    segments: dict[int, dict[str, Any]] = field(default_factory=dict)


class FakeMailchimp(FakeServer):
    """In-memory Mailchimp; ``add_list(id)`` before use. Base URL for clients: ``url + "/3.0"``."""

    vendor = "Mailchimp"

    def __init__(self, api_key: str = "fakekey-us1", *, max_connections: int = 10, **kw: Any):
        self.api_key = api_key
        self.max_connections = max_connections
        self.lists: dict[str, _List] = {}
        self.reject: set[str] = set()
        self.reject_segment: set[str] = set()
        self._next_segment = 1000
        super().__init__(**kw)

    def add_list(self, list_id: str) -> None:
        """Create an empty audience."""
        self.lists[list_id] = _List()

    # ------------------------------------------------------------ inspection
    def segment_emails(self, list_id: str, name: str) -> set[str]:
        """E-mails in the static segment called ``name``."""
        for seg in self.lists[list_id].segments.values():
            if seg["name"] == name:
                return {self.lists[list_id].members[h]["email_address"] for h in seg["members"]}
        return set()

    def member(self, list_id: str, email: str) -> dict[str, Any] | None:
        """The stored member resource of ``email``."""
        return self.lists[list_id].members.get(_hash(email))

    # ------------------------------------------------------------ protocol
    def error(self, status: int, message: str, **extra: Any) -> Reply:
        """RFC 7807 problem+json."""
        titles = {400: "Invalid Resource", 401: "API Key Invalid", 404: "Resource Not Found"}
        titles |= {429: "Too Many Requests", 500: "Internal Server Error"}
        body = {
            "type": "https://mailchimp.com/developer/marketing/docs/errors/",
            "title": titles.get(status, "Error"),
            "status": status,
            "detail": message,
            "instance": "fake-instance",
            **extra,
        }
        return Reply(status, body, content_type="application/problem+json; charset=utf-8")

    def authenticate(self, req: Request) -> Reply | None:
        """HTTP Basic, any user, the key as password."""
        auth = req.headers.get("authorization", "")
        if auth.startswith("Basic "):
            user_pass = base64.b64decode(auth[6:]).decode(errors="replace")
            if user_pass.partition(":")[2] == self.api_key:
                return None
        return self.error(
            401, "Your API key may be invalid, or you've attempted to access the wrong datacenter."
        )

    def admit(self, req: Request) -> Reply | None:
        """More than 10 simultaneous connections -> 429."""
        if self.in_flight > self.max_connections:
            return self.error(429, "You have exceeded the limit of 10 simultaneous connections.")
        return None

    def routes(self) -> list[tuple[str, str, Any]]:
        """The endpoints the client uses."""
        lists = r"/3\.0/lists/(?P<list_id>[^/]+)"
        return [
            ("POST", lists, self.batch),
            ("PUT", lists + r"/members/(?P<h>[0-9a-f]{32})", self.put_member),
            ("GET", lists + r"/members/(?P<h>[0-9a-f]{32})", self.get_member),
            ("GET", lists + r"/segments", self.list_segments),
            ("POST", lists + r"/segments", self.create_segment),
            ("GET", lists + r"/segments/(?P<seg>\d+)", self.get_segment),
            ("POST", lists + r"/segments/(?P<seg>\d+)", self.segment_batch),
        ]

    def _list(self, list_id: str) -> _List | Reply:
        if list_id not in self.lists:
            return self.error(404, "The requested resource could not be found.")
        return self.lists[list_id]

    def _invalid(self, email: str) -> str | None:
        if not _EMAIL.match(email) or email in self.reject:
            return f"{email} looks fake or invalid, please enter a real email address."
        return None

    def batch(self, req: Request, list_id: str) -> Reply:
        """Batch subscribe or update (max 500)."""
        lst = self._list(list_id)
        if isinstance(lst, Reply):
            return lst
        members = (req.body or {}).get("members")
        if not isinstance(members, list):
            return self.error(400, "Schema describes array, object found instead", errors=[])
        if len(members) > 500:
            return self.error(400, "Up to 500 members may be added or updated with each API call")
        update = bool(req.body.get("update_existing"))
        new, updated, errors = [], [], []
        for m in members:
            email = str(m.get("email_address", "")).strip().lower()
            problem = self._invalid(email)
            if problem is None and m.get("status") not in _STATUSES:
                problem = "Invalid status"
            if problem:
                errors.append(_err(email, problem, "ERROR_GENERIC"))
                continue
            h = _hash(email)
            existed = h in lst.members
            if existed and not update:
                errors.append(
                    _err(email, f"{email} is already a list member.", "ERROR_CONTACT_EXISTS")
                )
                continue
            stored = lst.members.setdefault(
                h, {"id": h, "email_address": email, "merge_fields": {}, "list_id": list_id}
            )
            stored["status"] = m["status"]
            stored["merge_fields"].update(m.get("merge_fields") or {})
            (updated if existed else new).append(stored)
        return Reply(
            200,
            {
                "new_members": new,
                "updated_members": updated,
                "errors": errors,
                "total_created": len(new),
                "total_updated": len(updated),
                "error_count": len(errors),
            },
        )

    def put_member(self, req: Request, list_id: str, h: str) -> Reply:
        """Add or update one member; ``status_if_new`` required for new ones."""
        lst = self._list(list_id)
        if isinstance(lst, Reply):
            return lst
        body = req.body or {}
        email = str(body.get("email_address", "")).strip().lower()
        if _hash(email) != h:
            return self.error(400, "The subscriber hash does not match the email address")
        problem = self._invalid(email)
        if problem:
            return self.error(400, problem, errors=[{"field": "email_address", "message": problem}])
        if h not in lst.members:
            status = body.get("status_if_new")
            if status not in _STATUSES:
                return self.error(400, "status_if_new is required for new members")
            lst.members[h] = {"id": h, "email_address": email, "status": status, "merge_fields": {}}
        member = lst.members[h]
        if body.get("status") in _STATUSES:
            member["status"] = body["status"]
        member["merge_fields"].update(body.get("merge_fields") or {})
        return Reply(200, member)

    def get_member(self, req: Request, list_id: str, h: str) -> Reply:
        """One member or 404."""
        lst = self._list(list_id)
        if isinstance(lst, Reply):
            return lst
        if h not in lst.members:
            return self.error(404, "The requested resource could not be found.")
        return Reply(200, lst.members[h])

    def _segment_view(self, seg_id: int, seg: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": seg_id,
            "name": seg["name"],
            "member_count": len(seg["members"]),
            "type": "static",
        }

    def list_segments(self, req: Request, list_id: str) -> Reply:
        """Paginated static segments."""
        lst = self._list(list_id)
        if isinstance(lst, Reply):
            return lst
        count = int(req.query.get("count", ["10"])[0])
        offset = int(req.query.get("offset", ["0"])[0])
        items = [self._segment_view(i, s) for i, s in sorted(lst.segments.items())]
        return Reply(200, {"segments": items[offset : offset + count], "total_items": len(items)})

    def create_segment(self, req: Request, list_id: str) -> Reply:
        """Create a static segment (``static_segment`` may list initial e-mails)."""
        lst = self._list(list_id)
        if isinstance(lst, Reply):
            return lst
        body = req.body or {}
        if not body.get("name"):
            return self.error(
                400, "name is required", errors=[{"field": "name", "message": "required"}]
            )
        self._next_segment += 1
        emails = [str(e).lower() for e in body.get("static_segment") or []]
        members = {_hash(e) for e in emails if _hash(e) in lst.members}
        lst.segments[self._next_segment] = {"name": body["name"], "members": members}
        return Reply(200, self._segment_view(self._next_segment, lst.segments[self._next_segment]))

    def get_segment(self, req: Request, list_id: str, seg: str) -> Reply:
        """One static segment."""
        lst = self._list(list_id)
        if isinstance(lst, Reply):
            return lst
        if int(seg) not in lst.segments:
            return self.error(404, "The requested resource could not be found.")
        return Reply(200, self._segment_view(int(seg), lst.segments[int(seg)]))

    def segment_batch(self, req: Request, list_id: str, seg: str) -> Reply:
        """Batch add / remove (max 500 each); e-mails not on the list are ignored."""
        lst = self._list(list_id)
        if isinstance(lst, Reply):
            return lst
        segment = lst.segments.get(int(seg))
        if segment is None:
            return self.error(404, "The requested resource could not be found.")
        body = req.body or {}
        add = [str(e).lower() for e in body.get("members_to_add") or []]
        remove = [str(e).lower() for e in body.get("members_to_remove") or []]
        if len(add) > 500 or len(remove) > 500:
            return self.error(400, "A maximum of 500 members can be sent.")
        added, removed, errors = [], [], []
        for email in add:
            if email in self.reject_segment:
                errors.append(
                    {"email_addresses": [email], "error": "Member is in compliance state"}
                )
                continue
            h = _hash(email)
            if h in lst.members:
                segment["members"].add(h)
                added.append(lst.members[h])
        for email in remove:
            h = _hash(email)
            if h in segment["members"]:
                segment["members"].discard(h)
                removed.append(lst.members[h])
        return Reply(
            200,
            {
                "members_added": added,
                "members_removed": removed,
                "errors": errors,
                "total_added": len(added),
                "total_removed": len(removed),
                "error_count": len(errors),
            },
        )


def _err(email: str, message: str, code: str) -> dict[str, str]:
    return {
        "email_address": email,
        "error": message,
        "error_code": code,
        "field": "email_address",
        "field_message": "",
    }
