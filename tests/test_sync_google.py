"""Google Data Manager client against the local fake (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from workbench.exports.identifiers import sha256_hex
from workbench.params import ExportSpec
from workbench.sync import SyncError, run_sync
from workbench.sync.google import match_rate_lower_bound
from workbench.sync.testing import FakeGoogle
from workbench.sync.testing.runfolder import FAST, customers, make_params, write_run

TOKEN = "ya29.test-token-0123456789"


@pytest.fixture
def google(monkeypatch):
    monkeypatch.setenv("GOOGLE_TEST_TOKEN", TOKEN)
    with FakeGoogle(TOKEN, account_id="1234567890") as fake:
        fake.add_list("777")
        yield fake


def entry(fake, **extra):
    base = {"name": "gads", "type": "google", "account_id": "1234567890", "audience_id": "777"}
    return {**base, "api_key_env": "GOOGLE_TEST_TOKEN", "base_url": fake.url, **extra}


def sync(fake, run, tmp_path, params=None, **kw):
    kw.setdefault("settings", FAST)
    params = params or make_params([entry(fake)])
    return run_sync(params, run, state_path=tmp_path / "state.sqlite", **kw)


def counts(result, seg="vip"):
    return result["destinations"]["gads"]["segments"][seg]


def test_ingest_remove_and_match_rate(google, tmp_path):
    people = customers(12)
    ids = [p["customer_id"] for p in people]
    first = sync(google, write_run(tmp_path / "r1", people, {"vip": ids[:10]}), tmp_path)
    assert google.size("777") == 10 and counts(first)["accepted"] == 10
    assert counts(first)["match_rate"] == 0.91
    assert "MATCH_RATE_RANGE_91_TO_100" in counts(first)["match_rate_detail"]
    body = google.calls("POST", ":ingest$")[0].body
    assert body["encoding"] == "HEX" and "consent" not in body
    assert body["destinations"] == [
        {
            "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
            "productDestinationId": "777",
        }
    ]
    ident = body["audienceMembers"][0]["userData"]["userIdentifiers"]
    assert ident[0] == {"emailAddress": sha256_hex("user.0@example.com")}
    assert ident[2]["address"]["regionCode"] == "IT"
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in google.requests)

    second = sync(google, write_run(tmp_path / "r2", people, {"vip": ids[2:]}), tmp_path)
    assert (counts(second)["to_add"], counts(second)["to_remove"]) == (2, 2)
    expected = {sha256_hex(f"user.{i}@example.com") for i in range(2, 12)}
    assert google.emails("777") == expected
    calls = [r.path for r in google.calls("POST")]
    assert calls[-2:] == ["/v1/audienceMembers:remove", "/v1/audienceMembers:ingest"]


def test_batches_split_at_10000(google, tmp_path):
    people = customers(10_001)
    run = write_run(tmp_path / "r1", people, {"vip": [p["customer_id"] for p in people]})
    sync(google, run, tmp_path)
    sizes = [len(r.body["audienceMembers"]) for r in google.calls("POST", ":ingest$")]
    assert sizes == [10_000, 1] and google.size("777") == 10_001


def test_resource_exhausted_retry_after_500_and_timeout(google, tmp_path):
    google.inject(status=429, path=":ingest$", headers={"Retry-After": "1"})
    google.inject(status=503, path=":ingest$")
    google.inject(kind="timeout", path=":ingest$", delay=0.5, apply=True)
    people = customers(4)
    settings = dataclasses.replace(FAST, timeout=0.2)
    t0 = time.monotonic()
    result = sync(
        google,
        write_run(tmp_path / "r1", people, {"vip": [p["customer_id"] for p in people]}),
        tmp_path,
        settings=settings,
    )
    assert time.monotonic() - t0 >= 1.0
    assert counts(result)["accepted"] == 4 and result["destinations"]["gads"]["retries"] == 3
    assert google.size("777") == 4  # the replayed ingest did not duplicate members


def test_field_violations_reject_only_those_members(google, tmp_path):
    people = customers(6)
    google.reject = {sha256_hex("user.4@example.com")}
    result = sync(
        google,
        write_run(tmp_path / "r1", people, {"vip": [p["customer_id"] for p in people]}),
        tmp_path,
    )
    c = counts(result)
    assert (c["accepted"], c["rejected"], c["status"]) == (5, 1, "partial")
    assert google.size("777") == 5
    sizes = [len(r.body["audienceMembers"]) for r in google.calls("POST", ":ingest$")]
    assert sizes == [6, 5]  # whole request refused once, then resent without the bad member


def test_unknown_user_list_is_a_configuration_error(google, tmp_path):
    people = customers(2)
    params = make_params([entry(google, audience_id="999")])
    with pytest.raises(SyncError) as info:
        sync(
            google,
            write_run(tmp_path / "r1", people, {"vip": ["c0000000"]}),
            tmp_path,
            params=params,
        )
    dest = info.value.result["destinations"]["gads"]
    assert dest["status"] == "failed" and "user list not found" in dest["error"]


def test_optional_spec_fields_consent_and_audience_ids(google, tmp_path):
    class Spec(ExportSpec):  # fields the lead may add to ExportSpec; read defensively
        consent: str | None = None
        audience_ids: dict[str, str] | None = None

    google.add_list("888")
    spec = Spec(**{**entry(google, audience_id=None), "consent": "from_subscribed",
                   "audience_ids": {"vip": "777", "new": "888"}})  # fmt: skip
    params = make_params([]).model_copy(update={"exports": [spec]})
    people = customers(3)
    run = write_run(tmp_path / "r1", people, {"vip": ["c0000000", "c0000001"], "new": ["c0000002"]})
    sync(google, run, tmp_path, params=params)
    assert google.size("777") == 2 and google.size("888") == 1
    vip = [
        r
        for r in google.calls("POST", ":ingest$")
        if r.body["destinations"][0]["productDestinationId"] == "777"
    ]
    members = vip[0].body["audienceMembers"]
    assert [m["consent"]["adUserData"] for m in members] == ["CONSENT_DENIED", "CONSENT_GRANTED"]


def test_match_rate_ranges():
    assert match_rate_lower_bound("MATCH_RATE_RANGE_51_TO_60") == 0.51
    assert match_rate_lower_bound("MATCH_RATE_RANGE_LESS_THAN_20") == 0.0
    assert match_rate_lower_bound("MATCH_RATE_RANGE_NOT_ELIGIBLE") is None
