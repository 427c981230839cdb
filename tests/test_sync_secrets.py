"""Planted secrets never reach the run folder, the state file, logs, results or messages."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging

import pytest

from workbench.secrets import Redactor
from workbench.sync import SyncError, run_sync
from workbench.sync.testing import FakeGoogle, FakeKlaviyo, FakeMailchimp, FakeMeta
from workbench.sync.testing.runfolder import FAST, customers, make_params, write_run

PLANTED = {
    "MC_PLANTED": "PLANTED-mailchimp-7f3a9c1e5b2d-us7",
    "KL_PLANTED": "pk_PLANTED-klaviyo-8e2b4a6c0d1f",
    "FB_PLANTED": "EAAB-PLANTED-meta-5c7d9e1f3a2b",
    "GO_PLANTED": "ya29.PLANTED-google-1a3c5e7f9b0d",
}


def test_planted_keys_never_appear_anywhere(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    for noisy in ("httpx", "httpcore"):  # the CLI quiets these (tests share one process)
        caplog.set_level(logging.DEBUG, logger=noisy)
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    mc, kl = FakeMailchimp(PLANTED["MC_PLANTED"]), FakeKlaviyo(PLANTED["KL_PLANTED"])
    fb, go = FakeMeta(PLANTED["FB_PLANTED"], account="act_1"), FakeGoogle("a-different-token")
    with mc, kl, fb, go:
        mc.add_list("L1")
        go.add_list("9")
        # hostile or careless servers echo the credentials back in error bodies
        echo = {"title": "Oops", "detail": f"bad key {PLANTED['MC_PLANTED']}", "status": 500}
        mc.inject(status=500, body=echo, times=2)
        kl_error = {"id": "1", "code": "throttled", "title": "t",
                    "detail": f"key {PLANTED['KL_PLANTED']} throttled"}  # fmt: skip
        kl.inject(status=429, headers={"Retry-After": "0"}, body={"errors": [kl_error]})
        fb_error = {"message": f"token {PLANTED['FB_PLANTED']} invalid", "code": 100}
        fb.inject(status=400, path="/users$", body={"error": fb_error})
        params = make_params(
            [
                {"name": "mc", "type": "mailchimp", "list_id": "L1", "api_key_env": "MC_PLANTED",
                 "base_url": mc.url + "/3.0"},
                {"name": "kl", "type": "klaviyo", "api_key_env": "KL_PLANTED", "base_url": kl.url},
                {"name": "fb", "type": "meta", "account_id": "1", "api_key_env": "FB_PLANTED",
                 "base_url": fb.url},
                {"name": "go", "type": "google", "account_id": "1234567890", "audience_id": "9",
                 "api_key_env": "GO_PLANTED", "base_url": go.url},
            ]
        )  # fmt: skip
        people = customers(12)
        run = write_run(
            tmp_path / "outputs" / "r1", people, {"vip": [p["customer_id"] for p in people]}
        )
        state = tmp_path / "outputs" / ".sync" / "state.sqlite"
        settings = dataclasses.replace(FAST, breaker_threshold=10)
        with pytest.raises(SyncError) as info:  # google refuses the token: 401
            run_sync(params, run, state_path=state, settings=settings)
        run_sync(params, run, destination="fb", state_path=state, settings=settings)  # retry run

    result = info.value.result
    assert result["destinations"]["go"]["status"] == "failed"
    assert result["destinations"]["mc"]["status"] == "ok"
    assert result["destinations"]["fb"]["segments"]["vip"]["rejected"] == 12  # the 400 batch
    secrets = list(PLANTED.values())
    secrets += [base64.b64encode(f"workbench:{PLANTED['MC_PLANTED']}".encode()).decode()]
    haystacks = {"log": caplog.text, "error": str(info.value), "result": json.dumps(result)}
    for path in (tmp_path / "outputs").rglob("*"):
        if path.is_file():
            haystacks[str(path)] = path.read_bytes().decode("utf-8", errors="ignore")
    assert any(k.endswith("sync_log.json") for k in haystacks)
    assert any(k.endswith("state.sqlite") for k in haystacks)
    assert "access_token=***" in caplog.text  # the Meta GETs were logged, redacted
    for where, text in haystacks.items():
        for secret in secrets:
            assert secret not in text, f"secret leaked into {where}"


def test_redactor_masks_known_values_and_url_credentials():
    red = Redactor()
    red.add("s3cr3t-value")
    text = "GET /x?access_token=abc123&fields=id Authorization: Bearer zzz s3cr3t-value"
    out = red.redact(text)
    assert "abc123" not in out and "zzz" not in out and "s3cr3t-value" not in out
    assert "fields=id" in out
