"""Fake Klaviyo API (SYNC_SPECS section 2), for tests and benchmarks.

Implements the ``Klaviyo-API-Key`` header, the required ``revision`` header, JSON:API error
objects, burst / steady rate windows per endpoint (429 with ``Retry-After``, ``RateLimit-*``
headers otherwise), lists (find by name, create, profile_count), ``profile-import`` (200 / 201),
profile lookup by ``external_id``, bulk import jobs (10,000 profiles, 5 MB, import errors with
``original_payload``, cursor pagination) and list membership add / remove (1000 ids, 204).
"""

from __future__ import annotations

import re
import time
import uuid
from collections import deque
from typing import Any

from workbench.sync.testing.server import FakeServer, Reply, Request

__all__ = ["FakeKlaviyo"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9]\d{7,14}$")
_REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.\w+)?$")
_KEYS = ("external_id", "email", "phone_number")
#: Documented limits per endpoint group: (burst per second, steady per minute).
LIMITS = {"list": (10, 150), "bulk": (10, 150), "import": (75, 750), "read": (10, 150)}


def _group(req: Request) -> str:
    if req.path.startswith("/api/profile-bulk-import-jobs"):
        return "bulk"
    if req.path.endswith("/relationships/profiles"):
        return "list"
    if req.path.startswith(("/api/profile-import", "/api/profiles")):
        return "import"
    return "read"


class FakeKlaviyo(FakeServer):
    """In-memory Klaviyo account."""

    vendor = "Klaviyo"

    def __init__(
        self,
        api_key: str = "pk_fake",
        *,
        limits: dict[str, tuple[int, int]] | None = None,
        job_delay: float = 0.0,
        **kw: Any,
    ) -> None:
        self.api_key = api_key
        self.limits = LIMITS if limits is None else limits
        self.job_delay = job_delay
        self.profiles: dict[str, dict[str, Any]] = {}
        self.lists: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.reject: set[str] = set()
        self._windows: dict[str, deque[float]] = {}
        self._index: dict[str, dict[Any, str]] = {k: {} for k in _KEYS}
        super().__init__(**kw)

    # ------------------------------------------------------------ inspection
    def list_by_name(self, name: str) -> str | None:
        """Id of the list called ``name``."""
        return next((i for i, lst in self.lists.items() if lst["name"] == name), None)

    def list_external_ids(self, name: str) -> set[str]:
        """``external_id`` of every profile in the list called ``name``."""
        list_id = self.list_by_name(name)
        if list_id is None:
            return set()
        attrs = (self.profiles[p]["attributes"] for p in self.lists[list_id]["members"])
        return {a.get("external_id") for a in attrs}

    # ------------------------------------------------------------ protocol
    def error(self, status: int, message: str, **extra: Any) -> Reply:
        """JSON:API error object."""
        titles = {400: "Invalid input.", 401: "Incorrect authentication credentials."}
        titles |= {404: "Not found.", 429: "Request was throttled.", 500: "Server error."}
        item = {
            "id": str(uuid.uuid4()),
            "code": extra.pop("code", "error"),
            "title": titles.get(status, "Error."),
            "detail": message,
            "source": extra.pop("source", {}),
        }
        return Reply(status, {"errors": [item]}, content_type="application/vnd.api+json")

    def authenticate(self, req: Request) -> Reply | None:
        """Private key header and a valid ``revision``."""
        if req.headers.get("authorization") != f"Klaviyo-API-Key {self.api_key}":
            return self.error(401, "Missing or invalid private key.", code="not_authenticated")
        if not _REVISION.match(req.headers.get("revision", "")):
            return self.error(400, "A valid revision header is required.", code="invalid")
        if req.method in {"POST", "DELETE", "PATCH"} and req.raw:
            if "json" not in req.headers.get("content-type", ""):
                return self.error(415, "Unsupported media type.", code="unsupported_media_type")
        return None

    def admit(self, req: Request) -> Reply | None:
        """Burst (1 s) and steady (60 s) windows per endpoint group."""
        group = _group(req)
        if group not in self.limits:
            return None
        burst, steady = self.limits[group]
        with self.lock:
            now = time.monotonic()
            window = self._windows.setdefault(group, deque())
            while window and now - window[0] >= 60:
                window.popleft()
            in_burst = sum(1 for t in window if now - t < 1)
            if in_burst >= burst or len(window) >= steady:
                wait = 1 if in_burst >= burst else int(60 - (now - window[0])) + 1
                reply = self.error(
                    429,
                    f"Request was throttled. Expected available in {wait} second.",
                    code="throttled",
                )
                reply.headers["Retry-After"] = str(wait)
                return reply
            window.append(now)
        return None

    def decorate(self, req: Request, reply: Reply) -> None:
        """``RateLimit-*`` headers (steady window) on non-429 answers."""
        group = _group(req)
        if reply.status == 429 or group not in self.limits:
            return
        steady = self.limits[group][1]
        with self.lock:
            window = self._windows.get(group, deque())
            used = len(window)
            reset = int(60 - (time.monotonic() - window[0])) if window else 60
        reply.headers.update(
            {
                "RateLimit-Limit": str(steady),
                "RateLimit-Remaining": str(max(0, steady - used)),
                "RateLimit-Reset": str(max(0, reset)),
            }
        )

    def routes(self) -> list[tuple[str, str, Any]]:
        """The endpoints the client uses."""
        jobs = r"/api/profile-bulk-import-jobs"
        return [
            ("GET", r"/api/lists", self.get_lists),
            ("POST", r"/api/lists", self.create_list),
            ("GET", r"/api/lists/(?P<list_id>[^/]+)", self.get_list),
            ("POST", r"/api/lists/(?P<list_id>[^/]+)/relationships/profiles", self.add_members),
            (
                "DELETE",
                r"/api/lists/(?P<list_id>[^/]+)/relationships/profiles",
                self.remove_members,
            ),
            ("POST", r"/api/profile-import", self.profile_import),
            ("GET", r"/api/profiles", self.get_profiles),
            ("POST", jobs, self.create_job),
            ("GET", jobs + r"/(?P<job_id>[^/]+)", self.get_job),
            ("GET", jobs + r"/(?P<job_id>[^/]+)/import-errors", self.job_errors),
        ]

    # ------------------------------------------------------------ lists
    def _list_resource(self, list_id: str, count: bool = False) -> dict[str, Any]:
        attrs: dict[str, Any] = {"name": self.lists[list_id]["name"]}
        if count:
            attrs["profile_count"] = len(self.lists[list_id]["members"])
        return {"type": "list", "id": list_id, "attributes": attrs}

    def get_lists(self, req: Request) -> Reply:
        """All lists, or ``filter=equals(name,"...")``."""
        flt = req.query.get("filter", [""])[0]
        m = re.fullmatch(r'equals\(name,"(.*)"\)', flt)
        ids = [i for i, lst in self.lists.items() if not m or lst["name"] == m.group(1)]
        return Reply(200, {"data": [self._list_resource(i) for i in ids], "links": {}})

    def create_list(self, req: Request) -> Reply:
        """New list (201)."""
        name = ((req.body or {}).get("data") or {}).get("attributes", {}).get("name")
        if not name:
            return self.error(400, "name is required", source={"pointer": "/data/attributes/name"})
        list_id = uuid.uuid4().hex[:6]
        self.lists[list_id] = {"name": name, "members": set()}
        return Reply(201, {"data": self._list_resource(list_id)})

    def get_list(self, req: Request, list_id: str) -> Reply:
        """One list; ``additional-fields[list]=profile_count`` adds the count."""
        if list_id not in self.lists:
            return self.error(404, f"List {list_id} not found.", code="not_found")
        count = "profile_count" in req.query.get("additional-fields[list]", [""])[0]
        return Reply(200, {"data": self._list_resource(list_id, count)})

    def _member_ids(self, req: Request, list_id: str) -> list[str] | Reply:
        if list_id not in self.lists:
            return self.error(404, f"List {list_id} not found.", code="not_found")
        data = (req.body or {}).get("data")
        if not isinstance(data, list) or not data:
            return self.error(400, "data must be a non-empty array", source={"pointer": "/data"})
        if len(data) > 1000:
            return self.error(
                400, "At most 1000 profiles per request.", source={"pointer": "/data"}
            )
        ids = []
        for i, item in enumerate(data):
            if item.get("type") != "profile" or item.get("id") not in self.profiles:
                return self.error(400, "Unknown profile id.", source={"pointer": f"/data/{i}/id"})
            ids.append(item["id"])
        return ids

    def add_members(self, req: Request, list_id: str) -> Reply:
        """Add profiles to a list (204)."""
        ids = self._member_ids(req, list_id)
        if isinstance(ids, Reply):
            return ids
        self.lists[list_id]["members"].update(ids)
        return Reply(204)

    def remove_members(self, req: Request, list_id: str) -> Reply:
        """Remove profiles from a list (204)."""
        ids = self._member_ids(req, list_id)
        if isinstance(ids, Reply):
            return ids
        self.lists[list_id]["members"].difference_update(ids)
        return Reply(204)

    # ------------------------------------------------------------ profiles
    def _problem(self, attrs: dict[str, Any], prefix: str) -> tuple[str, str] | None:
        email, phone = attrs.get("email"), attrs.get("phone_number")
        if not (email or phone or attrs.get("external_id")):
            return "One of email, phone_number or external_id is required.", prefix
        if email is not None and (not _EMAIL.match(str(email)) or email in self.reject):
            return "Invalid email address", f"{prefix}/email"
        if phone is not None and not _PHONE.match(str(phone)):
            return "Invalid phone number format (E.164 required)", f"{prefix}/phone_number"
        return None

    def _upsert(self, attrs: dict[str, Any]) -> tuple[str, bool]:
        pid = next(
            (self._index[k][attrs[k]] for k in _KEYS if attrs.get(k) in self._index[k]), None
        )
        created = pid is None
        if pid is None:
            pid = uuid.uuid4().hex.upper()[:26]
            self.profiles[pid] = {"type": "profile", "id": pid, "attributes": {}}
        stored = self.profiles[pid]["attributes"]
        for key in _KEYS:
            if key in attrs and stored.get(key) is not None:
                self._index[key].pop(stored[key], None)
        stored.update(attrs)
        for key in _KEYS:
            if stored.get(key) is not None:
                self._index[key][stored[key]] = pid
        return pid, created

    def profile_import(self, req: Request) -> Reply:
        """Create (201) or update (200) one profile."""
        data = (req.body or {}).get("data") or {}
        attrs = data.get("attributes") or {}
        problem = self._problem(attrs, "/data/attributes")
        if problem:
            return self.error(400, problem[0], code="invalid", source={"pointer": problem[1]})
        pid, created = self._upsert(attrs)
        return Reply(201 if created else 200, {"data": self.profiles[pid]})

    def get_profiles(self, req: Request) -> Reply:
        """Profiles filtered by ``any(external_id,[...])`` / ``equals(field,"...")``."""
        flt = req.query.get("filter", [""])[0]
        m = re.fullmatch(r"(any|equals)\((\w+),(.*)\)", flt)
        if not m:
            return self.error(400, "Invalid filter.", source={"parameter": "filter"})
        field = m.group(2)
        values = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(3))
        index = self._index.get(field, {})
        found = [self.profiles[index[v]] for v in dict.fromkeys(values) if v in index]
        size = int(req.query.get("page[size]", ["20"])[0])
        return Reply(200, {"data": found[:size], "links": {"next": None}})

    # ------------------------------------------------------------ bulk jobs
    def create_job(self, req: Request) -> Reply:
        """Queue a bulk import (max 10,000 profiles, 5 MB); processed at once."""
        if len(req.raw) > 5 * 1024 * 1024:
            return self.error(413, "Payload exceeds 5MB.", code="payload_too_large")
        data = (req.body or {}).get("data") or {}
        profiles = ((data.get("attributes") or {}).get("profiles") or {}).get("data") or []
        if not profiles or len(profiles) > 10_000:
            return self.error(
                400,
                "Between 1 and 10000 profiles are required.",
                source={"pointer": "/data/attributes/profiles"},
            )
        lists = [
            x["id"] for x in ((data.get("relationships") or {}).get("lists") or {}).get("data", [])
        ]
        for list_id in lists:
            if list_id not in self.lists:
                return self.error(404, f"List {list_id} not found.", code="not_found")
        errors = []
        for i, prof in enumerate(profiles):
            attrs = prof.get("attributes") or {}
            problem = self._problem(attrs, f"/data/attributes/profiles/data/{i}/attributes")
            if problem:
                errors.append(
                    {
                        "code": "invalid",
                        "title": "Invalid input.",
                        "detail": problem[0],
                        "source": {"pointer": problem[1]},
                        "original_payload": attrs,
                    }
                )
                continue
            pid, _ = self._upsert(attrs)
            for list_id in lists:
                self.lists[list_id]["members"].add(pid)
        job_id = uuid.uuid4().hex
        self.jobs[job_id] = {
            "total": len(profiles),
            "errors": errors,
            "ready": time.monotonic() + self.job_delay,
        }
        return Reply(202, {"data": self._job(job_id)})

    def _job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        done = time.monotonic() >= job["ready"]
        attrs = {
            "status": "complete" if done else "processing",
            "total_count": job["total"],
            "completed_count": job["total"] - len(job["errors"]) if done else 0,
            "failed_count": len(job["errors"]) if done else 0,
        }
        return {"type": "profile-bulk-import-job", "id": job_id, "attributes": attrs}

    def get_job(self, req: Request, job_id: str) -> Reply:
        """Job status."""
        if job_id not in self.jobs:
            return self.error(404, "Job not found.", code="not_found")
        return Reply(200, {"data": self._job(job_id)})

    def job_errors(self, req: Request, job_id: str) -> Reply:
        """Import errors, cursor-paginated (``page[size]`` up to 100)."""
        if job_id not in self.jobs:
            return self.error(404, "Job not found.", code="not_found")
        size = min(100, int(req.query.get("page[size]", ["20"])[0]))
        start = int(req.query.get("page[cursor]", ["0"])[0])
        errors = self.jobs[job_id]["errors"]
        page = [
            {"type": "import-error", "id": f"{job_id}-{i}", "attributes": err}
            for i, err in enumerate(errors[start : start + size], start=start)
        ]
        nxt = None
        if start + size < len(errors):
            nxt = f"{self.url}{req.path}?page[cursor]={start + size}&page[size]={size}"
        return Reply(200, {"data": page, "links": {"next": nxt}})
