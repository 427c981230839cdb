"""Diff logic, SQLite state transitions and retry primitives (no network)."""

from __future__ import annotations

import random
import threading
import time

import pytest

from workbench.sync.errors import SyncConfigError
from workbench.sync.plan import Desired, Invalid, diff
from workbench.sync.retry import CircuitBreaker, RateLimiter, RetryPolicy, parse_retry_after
from workbench.sync.state import StateStore, Target


def want(pk: str, version: str = "1", key: str | None = None) -> Desired:
    key = key or f"key-{pk}"
    return Desired(Target(key, {"email": f"{key}@x.io"}, f"sum-{pk}-{version}"), {"pk": pk})


def synced(store: StateStore, members: dict[str, Desired], run: str = "r1") -> None:
    plan = diff(members, store.load("d", "s"))
    store.record_plan(
        "d", "s", run, upserts=[(u.pk, u.target) for u in plan.upserts], leaving=[], invalid={}
    )
    store.commit_upserts(
        "d", "s", run, accepted={u.pk: u.target for u in plan.upserts}, rejected={}
    )


def test_first_sync_is_all_adds_then_only_the_difference(tmp_path):
    with StateStore(tmp_path / "state.sqlite") as store:
        current = {pk: want(pk) for pk in ("a", "b", "c")}
        assert diff(current, store.load("d", "s")).counts()["to_add"] == 3
        synced(store, current)
        assert diff(current, store.load("d", "s")).counts()["unchanged"] == 3
        changed = {"a": want("a", "2"), "b": want("b"), "d": want("d")}
        plan = diff(changed, store.load("d", "s"))
        counts = plan.counts()
        assert (counts["to_add"], counts["to_update"], counts["to_remove"]) == (1, 1, 1)
        assert [r.pk for r in plan.removals] == ["c"] and plan.removals[0].leaving
        assert diff(changed, store.load("d", "s"), full=True).counts()["to_resend"] == 1


def test_rekey_removes_old_identity_before_adding_new(tmp_path):
    with StateStore(tmp_path / "state.sqlite") as store:
        synced(store, {"a": want("a", key="old")})
        plan = diff({"a": want("a", "2", key="new")}, store.load("d", "s"))
        assert plan.rekeyed == {"a"}
        assert plan.removals[0].refs == [{"email": "old@x.io"}] and not plan.removals[0].leaving
        assert plan.counts()["to_update"] == 1 and plan.counts()["to_remove"] == 0


def test_crash_after_send_keeps_in_flight_ref_for_removal(tmp_path):
    with StateStore(tmp_path / "state.sqlite") as store:
        plan = diff({"a": want("a")}, {})
        store.record_plan(
            "d", "s", "r1", upserts=[("a", plan.upserts[0].target)], leaving=[], invalid={}
        )
        # process killed before commit: next run, "a" has left the segment
        row = store.load("d", "s")["a"]
        assert row.state == "pending_add" and row.removal_refs() == [{"email": "key-a@x.io"}]
        plan2 = diff({}, store.load("d", "s"))
        assert [r.pk for r in plan2.removals] == ["a"]


def test_rejected_rows_are_retried_until_max_attempts(tmp_path):
    with StateStore(tmp_path / "state.sqlite") as store:
        for run in range(3):
            plan = diff({"a": want("a")}, store.load("d", "s"), max_row_attempts=2)
            if run < 2:
                assert plan.counts()["to_add"] == 1
                assert plan.counts()["retrying"] == (1 if run else 0)
                store.record_plan(
                    "d",
                    "s",
                    f"r{run}",
                    upserts=[("a", plan.upserts[0].target)],
                    leaving=[],
                    invalid={},
                )
                store.commit_upserts("d", "s", f"r{run}", accepted={}, rejected={"a": "bad email"})
            else:
                assert plan.stuck == {"a": "bad email"} and not plan.upserts
        row = store.load("d", "s")["a"]
        assert (row.state, row.attempts, row.last_error) == ("failed", 2, "bad email")
        # new data for the member: tried again
        assert diff({"a": want("a", "2")}, store.load("d", "s"), max_row_attempts=2).upserts


def test_invalid_member_that_was_synced_is_removed(tmp_path):
    with StateStore(tmp_path / "state.sqlite") as store:
        synced(store, {"a": want("a")})
        plan = diff({"a": Invalid("no valid email address")}, store.load("d", "s"))
        assert plan.invalid == {"a": "no valid email address"}
        assert plan.counts()["to_remove"] == 1 and not plan.removals[0].leaving


def test_removal_commit_and_replace_all(tmp_path):
    with StateStore(tmp_path / "state.sqlite") as store:
        synced(store, {"a": want("a"), "b": want("b")})
        store.record_plan("d", "s", "r2", upserts=[], leaving=["a"], invalid={})
        assert store.load("d", "s")["a"].state == "pending_remove"
        store.commit_removals("d", "s", "r2", accepted=["a"], leaving={"a"}, rejected={})
        assert store.counts("d", "s") == {"removed": 1, "synced": 1}
        store.replace_all("d", "s", "r3", accepted={"c": want("c").target}, rejected={})
        assert store.counts("d", "s") == {"removed": 2}  # "c" had no planned row


def test_fingerprint_change_discards_state_and_lock_is_exclusive(tmp_path):
    path = tmp_path / "state.sqlite"
    with StateStore(path) as store:
        assert not store.check_destination("d", "mailchimp|L1")
        synced(store, {"a": want("a")})
        assert not store.check_destination("d", "mailchimp|L1")
        with pytest.raises(SyncConfigError, match="another sync"):
            StateStore(path)
        assert store.check_destination("d", "mailchimp|L2")
        assert store.load("d", "s") == {}


def test_backoff_is_exponential_capped_and_jittered():
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(0)
    delays = [policy.backoff(n, rng) for n in range(1, 7)]
    for n, d in enumerate(delays, start=1):
        cap = min(8.0, 2 ** (n - 1))
        assert cap / 2 <= d <= cap
    assert len({round(policy.backoff(3, rng), 6) for _ in range(20)}) > 10  # jitter


def test_parse_retry_after():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None


def test_rate_limiter_windows():
    limiter = RateLimiter([(5, 0.2)])
    t0 = time.monotonic()
    for _ in range(10):
        limiter.acquire()
    assert time.monotonic() - t0 >= 0.2
    limiter.pause(0.1)
    t1 = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - t1 >= 0.09


def test_circuit_breaker_opens_and_stays_open():
    breaker = CircuitBreaker("x", threshold=3)
    breaker.record_failure("500")
    breaker.record_success()
    threads = [threading.Thread(target=breaker.record_failure, args=("500",)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert breaker.is_open
    breaker.record_success()
    assert breaker.is_open
