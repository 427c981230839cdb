"""Export files: segment CSVs, Google / Meta customer-match files, MagNews CSV."""

from __future__ import annotations

import csv

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.errors import ParamsError
from workbench.exports.files import google_rows, magnews_rows, meta_rows, write_exports
from workbench.exports.identifiers import GOOGLE_ADS_CSV_HEADERS, META_SCHEMA, sha256_hex
from workbench.params import ExportSpec
from workbench.segments.testing import write_tiny_run

# Google Ads customer-match template row (support.google.com/google-ads/answer/7659867,
# SYNC_SPECS 4.6): "test@gmail.com,john,smith,us,94016,+18008888888"
GOOGLE_EXAMPLE = {
    "customer_id": "g1",
    "email": " Test@Gmail.com ",
    "phone": "(800) 888-8888",
    "first_name": "John",
    "last_name": "Smith",
    "country": "United States",
    "zip": "94016",
}
# Google Data Manager documentation example: sha256("dana@example.com")
DANA_SHA256 = "07e2f1394b0ea80e2adca010ea8318df697001a005ba7452720edda4b0ce57b3"


def _read(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_google_rows_match_the_published_template():
    rows, skipped = google_rows([GOOGLE_EXAMPLE])
    assert skipped == 0
    assert rows == [
        {
            "Email": sha256_hex("test@gmail.com"),
            "Phone": sha256_hex("+18008888888"),
            "First Name": sha256_hex("john"),
            "Last Name": sha256_hex("smith"),
            "Country": "us",  # not hashed
            "Zip": "94016",  # not hashed
        }
    ]
    dana, _ = google_rows([{"customer_id": "d", "email": "  Dana@Example.com "}])
    assert dana[0]["Email"] == DANA_SHA256


def test_meta_rows_follow_the_key_table():
    record = {
        "customer_id": "cust_42",
        "email": " Ada.Lovelace@Example.COM ",
        "phone": "+39 333 123 4567",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "country": "Italy",
        "zip": "20121",
    }
    us = {"customer_id": "u1", "email": "a@b.co", "country": "US", "zip": "94016-1234"}
    rows, skipped = meta_rows([record, us, {"customer_id": "x", "first_name": "No Keys"}])
    assert skipped == 1  # neither e-mail nor phone
    assert rows[0] == {
        "EMAIL": sha256_hex("ada.lovelace@example.com"),
        "PHONE": sha256_hex("393331234567"),  # digits only, with the country code
        "FN": sha256_hex("ada"),
        "LN": sha256_hex("lovelace"),
        "COUNTRY": sha256_hex("it"),
        "ZIP": sha256_hex("20121"),
        "EXTERN_ID": "cust_42",  # never hashed
    }
    assert rows[1]["ZIP"] == sha256_hex("94016") and rows[1]["PHONE"] == ""


def test_google_keeps_address_only_members_and_skips_the_rest():
    address = {"customer_id": "a", "first_name": "Ann", "last_name": "Lee", "country": "GB",
               "zip": "SW1A 1AA"}  # fmt: skip
    rows, skipped = google_rows([address, {"customer_id": "b", "first_name": "Bo"}])
    assert skipped == 1
    assert rows[0]["Email"] == "" and rows[0]["Country"] == "gb" and rows[0]["Zip"] == "SW1A 1AA"


def test_magnews_rows():
    rows, skipped = magnews_rows(
        [{"email": " X@Y.com", "first_name": "X"}, {"email": "not-an-address"}],
        "vip",
        ["first_name"],
    )
    assert rows == [{"email": "x@y.com", "first_name": "X", "segment": "vip"}]
    assert skipped == 1


@pytest.fixture
def run_dir(tmp_path):
    return write_tiny_run(tmp_path / "run")


MEMBERS = pa.table(
    {
        "segment": ["vip", "vip", "lost", "lost"],
        "customer_id": ["A", "F", "C", "E"],
    }
)


def test_write_exports(run_dir):
    customers = pq.read_table(run_dir / "customers.parquet")
    exports = [
        ExportSpec(name="plain", type="csv"),
        ExportSpec(name="crm", type="csv", segments=["lost"], columns=["customer_id", "email"]),
        ExportSpec(name="gads", type="google_customer_match_file"),
        ExportSpec(name="fb", type="meta_audience_file", segments=["vip"]),
        ExportSpec(name="mn", type="magnews_csv"),
        ExportSpec(name="chimp", type="mailchimp", list_id="x", api_key_env="K"),  # sync's job
    ]
    columns = {"vip": ["customer_id", "predicted_clv_90d"], "lost": ["customer_id"]}
    report = write_exports(exports, run_dir, MEMBERS, customers, columns)
    assert set(report) == {"plain", "crm", "gads", "fb", "mn"}
    folder = run_dir / "exports"
    assert _read(folder / "plain" / "vip.csv") == [
        {"customer_id": "A", "predicted_clv_90d": "120.0"},
        {"customer_id": "F", "predicted_clv_90d": "90.0"},
    ]
    assert _read(folder / "crm" / "lost.csv") == [
        {"customer_id": "C", "email": "cleo@gmail.com"},
        {"customer_id": "E", "email": "eve@example.co.uk"},
    ]
    assert not (folder / "crm" / "vip.csv").exists()
    google = _read(folder / "gads" / "vip.csv")
    assert list(google[0]) == list(GOOGLE_ADS_CSV_HEADERS)
    assert google[0]["Email"] == sha256_hex("ada@example.com")
    assert google[0]["Phone"] == sha256_hex("+447911123456")  # GB national number
    meta = _read(folder / "fb" / "vip.csv")
    assert list(meta[0]) == list(META_SCHEMA) and meta[1]["EXTERN_ID"] == "F"
    assert _read(folder / "mn" / "lost.csv")[0] == {
        "email": "cleo@gmail.com",
        "first_name": "Cleo",
        "last_name": "Jones",
        "segment": "lost",
    }
    assert report["gads"]["segments"]["vip"] == {"rows": 2, "skipped": 0, "file": "vip.csv"}


def test_export_errors(run_dir):
    customers = pq.read_table(run_dir / "customers.parquet")
    columns = {"vip": ["customer_id"], "lost": ["customer_id"]}
    bad = [ExportSpec(name="x", type="csv", segments=["vips"])]
    with pytest.raises(ParamsError, match=r"exports\[0\]\.segments"):
        write_exports(bad, run_dir, MEMBERS, customers, columns)
    bad = [ExportSpec(name="x", type="csv", columns=["customer_id", "mail"])]
    with pytest.raises(ParamsError, match="no column"):
        write_exports(bad, run_dir, MEMBERS, customers, columns)


def test_a_run_without_segments_writes_empty_tables(run_dir):
    from workbench.notebook import RunContext
    from workbench.params import parse_params
    from workbench.segments import SegmentRun

    params = parse_params(
        {
            "run_name": "empty",
            "currency": "EUR",
            "segments": [],
            "data": {"orders": {"path": str(run_dir / "data" / "orders.parquet")}},
        }
    )
    run = SegmentRun.start(RunContext(params=params, run_dir=run_dir), progress=False)
    assert run.counts().empty
    assert list(run.summary()["scope"]) == ["store"]
    assert run.diff().empty
    metrics = run.metrics()
    assert metrics["segments"] == {} and metrics["previous_run"] is None
