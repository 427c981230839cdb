"""Normalise and hash customer identifiers the way each ad / email platform expects.

One customer record (a mapping with ``customer_id``, ``email``, ``phone``, ``first_name``,
``last_name``, ``country``, ``zip``) becomes an :class:`Identifiers` value holding the
*normalised plaintext* identifiers; platform functions then render it:

===========================  ==========================================================
function                     platform format
===========================  ==========================================================
:func:`meta_row`             Meta multi-key row for :data:`META_SCHEMA` (SHA-256 hex,
                             EXTERN_ID not hashed, unknown key = ``""``)
:func:`google_identifiers`   Data Manager ``userData.userIdentifiers`` (gmail rule,
                             E.164 phones, regionCode / postalCode not hashed)
:func:`google_ads_csv_row`   Google Ads UI upload CSV (:data:`GOOGLE_ADS_CSV_HEADERS`)
:func:`subscriber_hash`      Mailchimp member key (MD5 of the lowercased, trimmed email)
===========================  ==========================================================

Rules follow ``shared/reference/SYNC_SPECS.md`` sections 1.4, 3.5, 4.5 and 4.6.

Invalid identifiers are never sent broken: a value that cannot be normalised (an e-mail
without a domain, a phone that cannot be written in E.164) is *dropped* and its name is listed
in :attr:`Identifiers.dropped`, so callers can count it. A customer left with neither an
e-mail nor a phone has no match key (:attr:`Identifiers.matchable` is false) and must be
counted as invalid by the caller.

Phones are written in E.164 (``+<country code><national number>``). A number written with
``+`` or ``00`` is international; otherwise the customer's country (or the ``default_country``
argument) supplies the calling code from :data:`PHONE_PLANS`, a small table of common
countries with their trunk prefix and national-number lengths. A national number whose country
is unknown or not in the table cannot be normalised and is dropped.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "GOOGLE_ADS_CSV_HEADERS",
    "META_SCHEMA",
    "PHONE_PLANS",
    "Identifiers",
    "PhonePlan",
    "google_ads_csv_row",
    "google_identifiers",
    "meta_row",
    "normalize_country",
    "normalize_email",
    "normalize_email_google",
    "normalize_identifiers",
    "normalize_name",
    "normalize_name_meta",
    "normalize_phone",
    "normalize_zip",
    "normalize_zip_meta",
    "sha256_hex",
    "subscriber_hash",
]

#: Columns of the Meta multi-key payload, in order (SYNC_SPECS 3.3).
META_SCHEMA: tuple[str, ...] = ("EMAIL", "PHONE", "FN", "LN", "COUNTRY", "ZIP", "EXTERN_ID")
#: Headers of the Google Ads UI customer-match CSV (SYNC_SPECS 4.6).
GOOGLE_ADS_CSV_HEADERS: tuple[str, ...] = (
    "Email",
    "Phone",
    "First Name",
    "Last Name",
    "Country",
    "Zip",
)


class PhonePlan(NamedTuple):
    """Numbering facts for one country: calling code, trunk prefix, national lengths."""

    code: str
    trunk: str | None
    min_len: int
    max_len: int


#: Calling code, trunk prefix (dropped from national numbers, ``None`` when the leading 0 is
#: part of the number, as in Italy) and national significant number lengths.
PHONE_PLANS: dict[str, PhonePlan] = {
    "US": PhonePlan("1", "1", 10, 10),
    "CA": PhonePlan("1", "1", 10, 10),
    "GB": PhonePlan("44", "0", 9, 10),
    "IE": PhonePlan("353", "0", 7, 9),
    "DE": PhonePlan("49", "0", 6, 13),
    "AT": PhonePlan("43", "0", 4, 13),
    "CH": PhonePlan("41", "0", 9, 9),
    "FR": PhonePlan("33", "0", 9, 9),
    "BE": PhonePlan("32", "0", 8, 9),
    "NL": PhonePlan("31", "0", 9, 9),
    "LU": PhonePlan("352", None, 4, 11),
    "IT": PhonePlan("39", None, 6, 11),
    "ES": PhonePlan("34", None, 9, 9),
    "PT": PhonePlan("351", None, 9, 9),
    "GR": PhonePlan("30", None, 10, 10),
    "DK": PhonePlan("45", None, 8, 8),
    "NO": PhonePlan("47", None, 8, 8),
    "SE": PhonePlan("46", "0", 7, 10),
    "FI": PhonePlan("358", "0", 5, 12),
    "PL": PhonePlan("48", None, 9, 9),
    "CZ": PhonePlan("420", None, 9, 9),
    "TR": PhonePlan("90", "0", 10, 10),
    "AU": PhonePlan("61", "0", 9, 9),
    "NZ": PhonePlan("64", "0", 8, 10),
    "JP": PhonePlan("81", "0", 9, 10),
    "CN": PhonePlan("86", "0", 9, 11),
    "IN": PhonePlan("91", "0", 10, 10),
    "SG": PhonePlan("65", None, 8, 8),
    "HK": PhonePlan("852", None, 8, 8),
    "AE": PhonePlan("971", "0", 8, 9),
    "ZA": PhonePlan("27", "0", 9, 9),
    "BR": PhonePlan("55", "0", 10, 11),
    "MX": PhonePlan("52", None, 10, 10),
}

# Country names and non-ISO codes seen in shop data, by ISO 3166-1 alpha-2 code.
_COUNTRY_NAMES: dict[str, str] = {
    "US": "united states|united states of america|usa|u.s.|u.s.a.|america",
    "CA": "canada|can",
    "GB": "united kingdom|uk|u.k.|great britain|england|scotland|wales|northern ireland|gbr",
    "IE": "ireland|eire|irl",
    "DE": "germany|deutschland|deu",
    "AT": "austria|österreich|aut",
    "CH": "switzerland|schweiz|suisse|che",
    "FR": "france|fra",
    "BE": "belgium|belgique|belgië|bel",
    "NL": "netherlands|the netherlands|holland|nederland|nld",
    "LU": "luxembourg|lux",
    "IT": "italy|italia|ita",
    "ES": "spain|españa|espana|esp",
    "PT": "portugal|prt",
    "GR": "greece|el|grc",
    "DK": "denmark|danmark|dnk",
    "NO": "norway|norge|nor",
    "SE": "sweden|sverige|swe",
    "FI": "finland|suomi|fin",
    "PL": "poland|polska|pol",
    "CZ": "czech republic|czechia|cze",
    "TR": "turkey|türkiye|tur",
    "AU": "australia|aus",
    "NZ": "new zealand|nzl",
    "JP": "japan|jpn",
    "CN": "china|chn",
    "IN": "india|ind",
    "SG": "singapore|sgp",
    "HK": "hong kong|hkg",
    "AE": "united arab emirates|uae|are",
    "ZA": "south africa|zaf",
    "BR": "brazil|brasil|bra",
    "MX": "mexico|méxico|mex",
}
_COUNTRY_ALIASES = {
    name: code for code, names in _COUNTRY_NAMES.items() for name in names.split("|")
}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+$")
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_NAME_PREFIXES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "mme"})
_NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "phd", "md", "esq"})
_NON_LETTER = re.compile(r"[\W\d_]+")
_SPACES = re.compile(r"\s+")
_NOT_DIGIT = re.compile(r"\D")
_NOT_PHONE_CHAR = re.compile(r"[^\d\s()+\-./]")
_EXTENSION = re.compile(r"(?i)\s*(?:ext\.?|extension|x|#)\s*\d{1,6}\s*$")


def _text(value: Any) -> str | None:
    """A stripped string, or None for missing values (None, NaN, pandas NA, blank)."""
    if type(value) is str:  # fast path: most values
        text = value.strip()
        if text and not text.isascii():
            text = unicodedata.normalize("NFC", text)
        return text or None
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            value = int(value)
    if type(value).__name__ in {"NAType", "NaTType"}:
        return None
    text = unicodedata.normalize("NFC", str(value)).strip()
    return text or None


def sha256_hex(value: str) -> str:
    """SHA-256 of the UTF-8 bytes of ``value`` as lowercase hex (Meta and Google format)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def normalize_email(value: Any) -> str | None:
    """Trimmed, lowercased e-mail with all whitespace removed; None when not an address.

    >>> normalize_email("  Ada.Lovelace@Example.COM ")
    'ada.lovelace@example.com'
    """
    text = _text(value)
    if text is None:
        return None
    email = _SPACES.sub("", text).strip(".").lower()
    return email if _EMAIL.match(email) else None


def normalize_email_google(value: Any) -> str | None:
    """E-mail normalised for Google Data Manager (SYNC_SPECS 4.5).

    As :func:`normalize_email`, and for ``gmail.com`` / ``googlemail.com`` only: dots are
    removed from the local part and ``+`` with everything after it is dropped.

    >>> normalize_email_google("cloudy.sanfrancisco+shopping@gmail.com")
    'cloudysanfrancisco@gmail.com'
    >>> normalize_email_google("user.name+NYC@Example.com")
    'user.name+nyc@example.com'
    """
    email = normalize_email(value)
    if email is None:
        return None
    local, _, domain = email.rpartition("@")
    if domain in _GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            return None
    return f"{local}@{domain}"


def normalize_country(value: Any) -> str | None:
    """ISO 3166-1 alpha-2 code in upper case (``"Italy"`` -> ``"IT"``, ``"uk"`` -> ``"GB"``).

    Any two-letter value is taken as a code; names and alpha-3 codes are looked up in a small
    table of common countries; anything else gives None.
    """
    text = _text(value)
    if text is None:
        return None
    if len(text) == 2 and text.isascii() and text.isalpha():
        return _COUNTRY_ALIASES.get(text.lower(), text.upper())
    key = _SPACES.sub(" ", text).lower()
    if key in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[key]
    if len(key) == 2 and key.isascii() and key.isalpha():
        return key.upper()
    return None


def _plan_for_international(digits: str) -> PhonePlan | None:
    for length in (3, 2, 1):
        code = digits[:length]
        for plan in PHONE_PLANS.values():
            if plan.code == code:
                return plan
    return None


def normalize_phone(value: Any, country: str | None = None) -> str | None:
    """Phone number in E.164 (``+<digits>``), or None when it cannot be normalised.

    Parameters
    ----------
    value : Any
        The phone as written (spaces, dots, dashes, brackets, ``(0)``, extensions allowed).
    country : str, optional
        ISO alpha-2 (or a name :func:`normalize_country` knows) giving the calling code of
        national numbers. Numbers starting with ``+`` or ``00`` do not need it.

    Returns
    -------
    str or None
        E.g. ``"+393331234567"``; None for letters, unknown countries, or a length that does
        not fit the country's numbering plan (E.164 allows at most 15 digits).

    Examples
    --------
    >>> normalize_phone("(800)555-0100", "US")
    '+18005550100'
    >>> normalize_phone("333 123 4567", "IT")
    '+393331234567'
    >>> normalize_phone("+44 (0)20 7946 0958")
    '+442079460958'
    """
    text = _text(value)
    if text is None:
        return None
    text = _EXTENSION.sub("", text).replace("(0)", "")
    if _NOT_PHONE_CHAR.search(text) or text.count("+") > 1:
        return None
    international = text.startswith("+")
    digits = _NOT_DIGIT.sub("", text)
    code = country if country in PHONE_PLANS else normalize_country(country)
    plan = PHONE_PLANS.get(code) if code else None
    if not international and digits.startswith("00"):
        international, digits = True, digits[2:]
    elif not international and plan is not None and plan.code == "1" and digits.startswith("011"):
        international, digits = True, digits[3:]
    if international:
        e164 = digits
        plan = _plan_for_international(e164)
        if plan is not None and not plan.min_len <= len(e164) - len(plan.code) <= plan.max_len:
            return None
    else:
        if plan is None:
            return None
        national = digits
        if plan.trunk and national.startswith(plan.trunk):
            stripped = national[len(plan.trunk) :]
            if plan.min_len <= len(stripped) <= plan.max_len:
                national = stripped
        if plan.min_len <= len(national) <= plan.max_len:
            e164 = plan.code + national
        elif (
            national.startswith(plan.code)
            and plan.min_len <= len(national) - len(plan.code) <= plan.max_len
        ):
            e164 = national
        else:
            return None
    if not 8 <= len(e164) <= 15 or e164.startswith("0"):
        return None
    return "+" + e164


def _name_words(value: Any) -> list[str] | None:
    text = _text(value)
    if text is None:
        return None
    words = [_NON_LETTER.sub("", w) for w in text.lower().split()]
    words = [w for w in words if w]
    while len(words) > 1 and words[0] in _NAME_PREFIXES:
        words.pop(0)
    while len(words) > 1 and words[-1] in _NAME_SUFFIXES:
        words.pop()
    return words or None


def normalize_name(value: Any) -> str | None:
    """Given / family name for Google: lowercase, no titles or suffixes, no punctuation.

    Letters (accented ones included) are kept, words are joined by one space.

    >>> normalize_name("  Mrs. Mary-Ann O'Neil Jr. ")
    'maryann oneil'
    """
    words = _name_words(value)
    return " ".join(words) if words else None


def normalize_name_meta(value: Any) -> str | None:
    """FN / LN for Meta: lowercase letters only (UTF-8 accents kept, no spaces).

    >>> normalize_name_meta("Mary Ann")
    'maryann'
    """
    words = _name_words(value)
    return "".join(words) if words else None


def normalize_zip(value: Any) -> str | None:
    """Postal code as written, trimmed and with inner whitespace collapsed (Google: as-is)."""
    text = _text(value)
    return _SPACES.sub(" ", text) if text else None


def normalize_zip_meta(value: Any, country: str | None = None) -> str | None:
    """ZIP for Meta: lowercase, no whitespace; US codes keep the 5 digits before ``-``.

    >>> normalize_zip_meta("94016-1234", "US")
    '94016'
    >>> normalize_zip_meta("SW1A 1AA", "GB")
    'sw1a1aa'
    """
    text = _text(value)
    if text is None:
        return None
    if normalize_country(country) == "US":
        text = text.split("-", 1)[0]
    text = _SPACES.sub("", text).lower()
    return text or None


def subscriber_hash(email: str) -> str:
    """Mailchimp subscriber hash: MD5 hex of the trimmed, lowercased e-mail (SYNC_SPECS 1.4)."""
    return hashlib.md5(email.strip().lower().encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Identifiers:
    """Normalised plaintext identifiers of one customer.

    Attributes
    ----------
    external_id : str or None
        The workbench customer id, sent as-is where a platform takes an advertiser id.
    email : str or None
        Trimmed, lowercased address (:func:`normalize_email`).
    phone : str or None
        E.164 with ``+`` (:func:`normalize_phone`).
    first_name, last_name : str or None
        Lowercase, no titles/suffixes/punctuation (:func:`normalize_name`).
    country : str or None
        ISO 3166-1 alpha-2, upper case.
    zip : str or None
        Postal code as written (trimmed).
    dropped : tuple of str
        Names of identifiers present in the input that could not be normalised and were
        dropped (e.g. ``("phone",)``).
    """

    external_id: str | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    country: str | None = None
    zip: str | None = None
    dropped: tuple[str, ...] = ()

    @property
    def matchable(self) -> bool:
        """Whether the customer has a match key (an e-mail or a phone)."""
        return bool(self.email or self.phone)


def normalize_identifiers(
    record: Mapping[str, Any], *, default_country: str | None = None
) -> Identifiers:
    """Normalise one customer record.

    Parameters
    ----------
    record : Mapping
        Keys ``customer_id``, ``email``, ``phone``, ``first_name``, ``last_name``,
        ``country``, ``zip`` (missing keys and null values are fine).
    default_country : str, optional
        Country used for national phone numbers when the record has no valid country.

    Returns
    -------
    Identifiers
        Normalised values; identifiers that were present but invalid are listed in
        ``dropped``.
    """
    dropped: list[str] = []

    def keep(name: str, raw: Any, normalised: str | None) -> str | None:
        if normalised is None and _text(raw) is not None:
            dropped.append(name)
        return normalised

    raw_country = record.get("country")
    country = keep("country", raw_country, normalize_country(raw_country))
    phone_country = country or (normalize_country(default_country) if default_country else None)
    return Identifiers(
        external_id=_text(record.get("customer_id")),
        email=keep("email", record.get("email"), normalize_email(record.get("email"))),
        phone=keep(
            "phone", record.get("phone"), normalize_phone(record.get("phone"), phone_country)
        ),
        first_name=keep(
            "first_name", record.get("first_name"), normalize_name(record.get("first_name"))
        ),
        last_name=keep(
            "last_name", record.get("last_name"), normalize_name(record.get("last_name"))
        ),
        country=country,
        zip=normalize_zip(record.get("zip")),
        dropped=tuple(dropped),
    )


def meta_row(ids: Identifiers, schema: tuple[str, ...] = META_SCHEMA) -> list[str]:
    """One Meta multi-key row: SHA-256 hex per key, EXTERN_ID as-is, ``""`` when unknown.

    Parameters
    ----------
    ids : Identifiers
        Normalised identifiers.
    schema : tuple of str
        Keys to render, a subset of EMAIL, PHONE, FN, LN, COUNTRY, ZIP, EXTERN_ID.
    """
    values = {
        "EMAIL": ids.email,
        "PHONE": ids.phone[1:] if ids.phone else None,
        "FN": ids.first_name.replace(" ", "") if ids.first_name else None,
        "LN": ids.last_name.replace(" ", "") if ids.last_name else None,
        "COUNTRY": ids.country.lower() if ids.country else None,
        "ZIP": normalize_zip_meta(ids.zip, ids.country),
    }
    row = []
    for key in schema:
        if key == "EXTERN_ID":
            row.append(ids.external_id or "")
        elif key in values:
            value = values[key]
            row.append(sha256_hex(value) if value else "")
        else:
            raise ValueError(f"unsupported Meta schema key {key!r}; use {', '.join(META_SCHEMA)}")
    return row


def google_identifiers(ids: Identifiers) -> list[dict[str, Any]]:
    """Data Manager ``userIdentifiers`` (HEX encoding): at most one of each kind.

    E-mail (gmail rule) and phone (E.164) are SHA-256 hex; the address entry is added only
    when given name, family name, country and postal code are all known, with ``regionCode``
    and ``postalCode`` in clear.
    """
    out: list[dict[str, Any]] = []
    email = normalize_email_google(ids.email)
    if email:
        out.append({"emailAddress": sha256_hex(email)})
    if ids.phone:
        out.append({"phoneNumber": sha256_hex(ids.phone)})
    if ids.first_name and ids.last_name and ids.country and ids.zip:
        out.append(
            {
                "address": {
                    "givenName": sha256_hex(ids.first_name),
                    "familyName": sha256_hex(ids.last_name),
                    "regionCode": ids.country,
                    "postalCode": ids.zip,
                }
            }
        )
    return out


def google_ads_csv_row(ids: Identifiers, *, hashed: bool = True) -> dict[str, str]:
    """One row of the Google Ads UI customer-match CSV, keyed by :data:`GOOGLE_ADS_CSV_HEADERS`.

    E-mail, phone (E.164) and names are SHA-256 hex when ``hashed`` (else plain normalised
    text); Country (lowercase alpha-2) and Zip are never hashed; unknown values are ``""``.
    """

    def enc(value: str | None) -> str:
        if not value:
            return ""
        return sha256_hex(value) if hashed else value

    return {
        "Email": enc(ids.email),
        "Phone": enc(ids.phone),
        "First Name": enc(ids.first_name),
        "Last Name": enc(ids.last_name),
        "Country": ids.country.lower() if ids.country else "",
        "Zip": ids.zip or "",
    }
