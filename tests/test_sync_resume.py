"""A sync killed mid-run (SIGKILL) resumes without losing or re-sending acknowledged batches.

The sync runs in a subprocess against fakes served by this test process. It is killed either
by the crash hook right after N committed batches, or from outside at an arbitrary moment
while requests are in flight. The rerun must leave the destination equal to the segment and
must not send again any member whose batch was acknowledged (committed) before the kill.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from workbench.exports.identifiers import sha256_hex
from workbench.sync import run_sync
from workbench.sync.testing import FakeGoogle, FakeKlaviyo, FakeMailchimp, FakeMeta, FakeServer
from workbench.sync.testing.runfolder import FAST, customers, make_params, write_run

SCRIPT = """
import json, sys
from pathlib import Path
from workbench.sync import SyncSettings, run_sync
from workbench.sync.testing.runfolder import make_params
cfg = json.loads(sys.argv[1])
run_sync(make_params(cfg["exports"]), Path(cfg["run"]), state_path=Path(cfg["state"]),
         settings=SyncSettings(**cfg["settings"]))
"""
KEY = "resume-test-key-0123456789-us3"
PK_OF_EMAIL = {f"user.{i}@example.com": f"c{i:07d}" for i in range(1000)}
PK_OF_HASH = {sha256_hex(e): pk for e, pk in PK_OF_EMAIL.items()}


@dataclass
class Case:
    fake: FakeServer
    export: dict[str, Any]
    sent: Callable[[Any], set[str]]  # member pks in one recorded request
    remote: Callable[[], set[str]]  # member pks the destination holds


def _mailchimp(latency: float) -> Case:
    fake = FakeMailchimp(KEY, latency=latency)
    fake.add_list("L1")

    def sent(r):
        body = r.body if isinstance(r.body, dict) else {}
        emails = [m["email_address"] for m in body.get("members", [])]
        emails += body.get("members_to_add", []) + body.get("members_to_remove", [])
        emails += [body["email_address"]] if "email_address" in body else []
        return {PK_OF_EMAIL[e] for e in emails}

    export = {"type": "mailchimp", "list_id": "L1", "base_url": fake.url + "/3.0"}
    return Case(
        fake, export, sent, lambda: {PK_OF_EMAIL[e] for e in fake.segment_emails("L1", "vip")}
    )


def _klaviyo(latency: float) -> Case:
    fake = FakeKlaviyo(KEY, latency=latency)

    def sent(r):
        body = r.body if isinstance(r.body, dict) else {}
        data = body.get("data")
        if isinstance(data, list):  # list relationships: profile ids
            return {fake.profiles[d["id"]]["attributes"]["external_id"] for d in data}
        if isinstance(data, dict) and data.get("type") == "profile":
            return {data["attributes"]["external_id"]}
        if isinstance(data, dict) and data.get("type") == "profile-bulk-import-job":
            return {p["attributes"]["external_id"] for p in data["attributes"]["profiles"]["data"]}
        return set()

    return Case(
        fake, {"type": "klaviyo", "base_url": fake.url}, sent, lambda: fake.list_external_ids("vip")
    )


def _meta(latency: float) -> Case:
    fake = FakeMeta(KEY, account="act_5", latency=latency)

    def sent(r):
        if not r.path.endswith("/users"):
            return set()
        return {row[-1] for row in json.loads(r.body["payload"])["data"]}

    export = {"type": "meta", "account_id": "5", "base_url": fake.url}
    return Case(fake, export, sent, lambda: fake.extern_ids(fake.audience_by_name("vip")))


def _google(latency: float) -> Case:
    fake = FakeGoogle(KEY, account_id="1234567890", latency=latency)
    fake.add_list("42")

    def sent(r):
        if r.method != "POST":
            return set()
        ids = [i for m in r.body["audienceMembers"] for i in m["userData"]["userIdentifiers"]]
        return {PK_OF_HASH[i["emailAddress"]] for i in ids if "emailAddress" in i}

    export = {
        "type": "google",
        "account_id": "1234567890",
        "audience_id": "42",
        "base_url": fake.url,
    }
    return Case(fake, export, sent, lambda: {PK_OF_HASH[h] for h in fake.emails("42")})


CASES = {"mailchimp": _mailchimp, "klaviyo": _klaviyo, "meta": _meta, "google": _google}


def _spawn(case: Case, run: Path, state: Path, settings: dict[str, Any]) -> subprocess.Popen:
    cfg = {
        "exports": [{"name": "dest", "api_key_env": "RESUME_KEY", **case.export}],
        "run": str(run),
        "state": str(state),
        "settings": settings,
    }
    env = {**os.environ, "RESUME_KEY": KEY, "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, json.dumps(cfg)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _acknowledged_in_killed_run(state: Path) -> set[str]:
    con = sqlite3.connect(state)
    try:
        (killed,) = con.execute("SELECT run_id FROM runs WHERE status = 'running'").fetchone()
        rows = con.execute(
            "SELECT member_pk FROM members "
            "WHERE last_run_id = ? AND state IN ('synced', 'removed')",
            (killed,),
        ).fetchall()
    finally:
        con.close()
    return {pk for (pk,) in rows}


def _scenario(tmp_path: Path, case: Case, settings: dict[str, Any], kill: Callable[[Any], None]):
    people = customers(500)
    ids = [p["customer_id"] for p in people]
    state = tmp_path / "state.sqlite"
    params = make_params([{"name": "dest", "api_key_env": "RESUME_KEY", **case.export}])
    first = write_run(tmp_path / "r1", people, {"vip": ids[:200]})
    run_sync(params, first, state_path=state, settings=FAST)  # a synced baseline
    second = write_run(tmp_path / "r2", people, {"vip": ids[50:450]})  # 50 leave, 250 join
    proc = _spawn(case, second, state, settings)
    kill(proc)
    assert proc.wait(timeout=120) == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    acknowledged = _acknowledged_in_killed_run(state)
    assert acknowledged, "the kill came before any batch was acknowledged"
    mark = len(case.fake.requests)
    result = run_sync(params, second, state_path=state, settings=FAST)
    assert result["destinations"]["dest"]["status"] == "ok"
    resent = set().union(*(case.sent(r) for r in case.fake.requests[mark:]))
    assert not acknowledged & resent, (
        f"re-sent acknowledged members: {sorted(acknowledged & resent)[:5]}"
    )
    assert case.remote() == set(ids[50:450])
    return acknowledged


@pytest.mark.parametrize("kind", sorted(CASES))
def test_crash_right_after_acknowledged_batches(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("RESUME_KEY", KEY)
    case = CASES[kind](0.0)
    settings = {"max_batch": 40, "base_delay": 0.001, "crash_after_batches": 3}
    with case.fake:
        acknowledged = _scenario(tmp_path, case, settings, kill=lambda proc: None)
    assert len(acknowledged) == 90  # 50 removals + 40 adds in batches 1-3


def test_external_kill_while_requests_are_in_flight(tmp_path, monkeypatch):
    monkeypatch.setenv("RESUME_KEY", KEY)
    case = _mailchimp(latency=0.03)
    state = tmp_path / "state.sqlite"

    def kill_midway(proc):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                con = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
                (n,) = con.execute(
                    "SELECT count(*) FROM members m JOIN runs r ON m.last_run_id = r.run_id "
                    "WHERE r.status = 'running' AND m.state = 'synced'"
                ).fetchone()
                con.close()
            except sqlite3.OperationalError:
                n = 0
            if n >= 60:
                time.sleep(0.045)  # land inside the next batch's requests
                proc.send_signal(signal.SIGKILL)
                return
            time.sleep(0.01)
        proc.kill()
        pytest.fail("the sync did not make progress")

    settings = {"max_batch": 20, "base_delay": 0.001}
    with case.fake:
        _scenario(tmp_path, case, settings, kill=kill_midway)
