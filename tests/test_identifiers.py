"""Identifier normalisation and hashing against published examples (SYNC_SPECS 1.4-4.6)."""

from __future__ import annotations

import hashlib

import pytest

from workbench.exports.identifiers import (
    GOOGLE_ADS_CSV_HEADERS,
    META_SCHEMA,
    Identifiers,
    google_ads_csv_row,
    google_identifiers,
    meta_row,
    normalize_country,
    normalize_email,
    normalize_email_google,
    normalize_identifiers,
    normalize_name,
    normalize_name_meta,
    normalize_phone,
    normalize_zip_meta,
    sha256_hex,
    subscriber_hash,
)


def test_sha256_known_vectors():
    # FIPS 180-2 test vectors and the Data Manager example hash of dana@example.com (SYNC_SPECS 4.3)
    assert sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert (
        sha256_hex(normalize_email_google("  Dana@Example.com "))
        == "07e2f1394b0ea80e2adca010ea8318df697001a005ba7452720edda4b0ce57b3"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # SYNC_SPECS 4.5: gmail / googlemail only lose dots and the +suffix
        ("cloudy.sanfrancisco+shopping@gmail.com", "cloudysanfrancisco@gmail.com"),
        ("Cloudy.SanFrancisco@googlemail.com", "cloudysanfrancisco@googlemail.com"),
        ("user.name+NYC@Example.com", "user.name+nyc@example.com"),
        (" a.b @ example.org ", "a.b@example.org"),
        ("not-an-email", None),
        ("x@localhost", None),
        (None, None),
        (float("nan"), None),
    ],
)
def test_google_email_rule(raw, expected):
    assert normalize_email_google(raw) == expected


def test_plain_email_keeps_gmail_dots():
    assert normalize_email(" John.Smith+x@GMAIL.com ") == "john.smith+x@gmail.com"


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("(800)555-0100", "US", "+18005550100"),  # SYNC_SPECS 4.5 example
        ("1-800-555-0100", "US", "+18005550100"),
        ("+1 800 555 0100", None, "+18005550100"),
        ("333 123 4567", "IT", "+393331234567"),  # mobile, no trunk prefix
        ("02 1234 5678", "Italy", "+390212345678"),  # Italian landline keeps its 0
        ("393331234567", "IT", "+393331234567"),  # country code without +
        ("020 7946 0958", "GB", "+442079460958"),  # trunk 0 dropped
        ("+44 (0)20 7946 0958", None, "+442079460958"),
        ("0044 20 7946 0958", "DE", "+442079460958"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+39 333 123 4567 ext. 12", None, "+393331234567"),
        ("555-0100", "US", None),  # too short
        ("3331234567", None, None),  # national number, unknown country
        ("3331234567", "ZZ", None),  # country not in the table
        ("call me", "US", None),
        ("+1 800 555 01000000000", None, None),  # > 15 digits
    ],
)
def test_phone_e164(raw, country, expected):
    assert normalize_phone(raw, country) == expected


def test_names_countries_zips():
    assert normalize_name("  Mrs. Mary-Ann O'Neil Jr. ") == "maryann oneil"
    assert normalize_name("José") == "josé"
    assert normalize_name_meta("Mary Ann") == "maryann"
    assert normalize_name("Dr") == "dr"  # a title alone is kept, not emptied
    assert normalize_country("Italy") == "IT"
    assert normalize_country("uk") == "GB"
    assert normalize_country("DEU") == "DE"
    assert normalize_country("Atlantis") is None
    assert normalize_zip_meta("94016-1234", "US") == "94016"
    assert normalize_zip_meta("SW1A 1AA", "GB") == "sw1a1aa"


def test_subscriber_hash_is_md5_of_lowercased_trimmed_email():
    expected = hashlib.md5(b"ada@example.com").hexdigest()
    assert subscriber_hash(" Ada@Example.COM ") == expected


def test_invalid_identifiers_are_dropped_and_named():
    ids = normalize_identifiers(
        {"customer_id": "c1", "email": "bad", "phone": "12", "country": "IT", "first_name": "Ada"}
    )
    assert ids.email is None and ids.phone is None
    assert set(ids.dropped) == {"email", "phone"}
    assert not ids.matchable
    fallback = normalize_identifiers({"phone": "333 123 4567"}, default_country="IT")
    assert fallback.phone == "+393331234567" and fallback.matchable


def _ids() -> Identifiers:
    return normalize_identifiers(
        {
            "customer_id": "cust_42",
            "email": " Ada.Lovelace@Gmail.com ",
            "phone": "333 123 4567",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "country": "Italy",
            "zip": "20121",
        }
    )


def test_meta_row_multikey():
    row = meta_row(_ids())
    assert len(row) == len(META_SCHEMA) == 7
    assert dict(zip(META_SCHEMA, row, strict=True)) == {
        "EMAIL": sha256_hex("ada.lovelace@gmail.com"),  # no gmail rule for Meta
        "PHONE": sha256_hex("393331234567"),  # digits only, with country code
        "FN": sha256_hex("ada"),
        "LN": sha256_hex("lovelace"),
        "COUNTRY": sha256_hex("it"),
        "ZIP": sha256_hex("20121"),
        "EXTERN_ID": "cust_42",  # never hashed
    }
    sparse = meta_row(normalize_identifiers({"customer_id": "c2", "email": "a@b.co"}))
    assert sparse[1:6] == ["", "", "", "", ""]


def test_google_user_identifiers():
    out = google_identifiers(_ids())
    assert out[0] == {"emailAddress": sha256_hex("adalovelace@gmail.com")}
    assert out[1] == {"phoneNumber": sha256_hex("+393331234567")}
    assert out[2]["address"] == {
        "givenName": sha256_hex("ada"),
        "familyName": sha256_hex("lovelace"),
        "regionCode": "IT",  # not hashed
        "postalCode": "20121",  # not hashed
    }
    no_address = google_identifiers(normalize_identifiers({"email": "a@b.co", "first_name": "A"}))
    assert no_address == [{"emailAddress": sha256_hex("a@b.co")}]


def test_google_ads_csv_row():
    plain = google_ads_csv_row(_ids(), hashed=False)
    assert tuple(plain) == GOOGLE_ADS_CSV_HEADERS
    assert plain == {
        "Email": "ada.lovelace@gmail.com",
        "Phone": "+393331234567",
        "First Name": "ada",
        "Last Name": "lovelace",
        "Country": "it",
        "Zip": "20121",
    }
    hashed = google_ads_csv_row(_ids())
    assert hashed["Phone"] == sha256_hex("+393331234567")
    assert hashed["Country"] == "it" and hashed["Zip"] == "20121"
