"""Customer attributes: ids, names, realistic (slightly dirty) e-mails and phones, consent.

Dirt on purpose, as in real shop exports: some e-mails in mixed or upper case or with
surrounding spaces, phones in E.164 or in the local format of the country (some missing),
a few missing postcodes. Every e-mail address is unique: its local part carries a number that
is a bijection of the customer number.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from workbench.synth import people

#: Multiplier of the bijection customer number -> e-mail number (coprime with 10).
_EMAIL_MULT = 7919


def customer_ids(numbers: np.ndarray, width: int) -> pa.Array:
    """Ids ``C0000001``... for 1-based customer numbers."""
    return pa.array([f"C{n:0{width}d}" for n in numbers.tolist()], pa.string())


def id_width(customers: int) -> int:
    """Digits of the customer number in ids (at least 7)."""
    return max(7, len(str(customers)))


def _emails(
    rng: np.random.Generator,
    first: list[str],
    last: list[str],
    country: list[str],
    numbers: np.ndarray,
    digits: int,
) -> list[str | None]:
    n = len(first)
    token = (numbers * _EMAIL_MULT + 4049) % 10**digits
    pattern = rng.integers(0, 5, n)
    domain_u = rng.random(n)
    case = rng.random(n)
    space = rng.random(n)
    out: list[str | None] = []
    for i in range(n):
        f, la, t = people.ascii_fold(first[i]), people.ascii_fold(last[i]), int(token[i])
        local = (
            f"{f}.{la}{t}",
            f"{f[0]}{la}{t}",
            f"{f}_{la}.{t}",
            f"{f}{t}",
            f"{la}.{f}{t}",
        )[pattern[i]]
        domains = people.EMAIL_DOMAINS[country[i]]
        email = f"{local}@{domains[int(domain_u[i] ** 1.5 * len(domains))]}"
        if case[i] < 0.08:
            email = ".".join(w.capitalize() for w in local.split(".")) + email[len(local) :]
        elif case[i] < 0.10:
            email = email.upper()
        if space[i] < 0.02:
            email = f" {email} "
        elif space[i] < 0.03:
            email = f"{email} "
        out.append(email)
    return out


def _phones(rng: np.random.Generator, country: list[str]) -> list[str | None]:
    n = len(country)
    kind = rng.random(n)
    raw = rng.integers(0, 10**9, n)
    out: list[str | None] = []
    for i in range(n):
        if kind[i] < 0.10:
            out.append(None)
            continue
        prefix, width, _ = people.PHONES[country[i]]
        digits = f"{raw[i] % 10**width:0{width}d}"
        out.append(
            f"{prefix}{digits}" if kind[i] < 0.75 else people.local_phone(country[i], digits)
        )
    return out


def customer_table(
    rng: np.random.Generator,
    ids: pa.Array,
    numbers: np.ndarray,
    birth_us: np.ndarray,
    email_digits: int,
) -> pa.Table:
    """The customers table of one block.

    Parameters
    ----------
    rng : numpy.random.Generator
        The block's attribute stream.
    ids : pa.Array
        Customer ids of the block.
    numbers : np.ndarray
        1-based customer numbers (make e-mails unique).
    birth_us : np.ndarray
        First-purchase instant per customer, microseconds since the epoch (UTC).
    email_digits : int
        Digits of the e-mail number (enough for every customer number).

    Returns
    -------
    pa.Table
        customer_id, email, phone, first_name, last_name, country, zip, language, subscribed,
        created_at (account creation: at checkout or up to weeks before the first order).
    """
    n = len(numbers)
    codes = list(people.COUNTRIES)
    share = np.array([people.COUNTRIES[c][0] for c in codes])
    cidx = np.searchsorted(np.cumsum(share / share.sum())[:-1], rng.random(n), side="right")
    country = [codes[c] for c in cidx]
    fu, lu = rng.random(n), rng.random(n)
    first = [people.FIRST_NAMES[c][int(u * len(people.FIRST_NAMES[c]))] for c, u in zip(
        country, fu, strict=True)]  # fmt: skip
    last = [people.LAST_NAMES[c][int(u * len(people.LAST_NAMES[c]))] for c, u in zip(
        country, lu, strict=True)]  # fmt: skip
    zip_n = rng.integers(0, 10**6, n)
    letters = rng.integers(0, len(people.LETTERS), (n, 2))
    area = rng.integers(0, len(people.UK_AREAS), n)
    no_zip = rng.random(n) < 0.03
    zips = [
        None
        if no_zip[i]
        else people.postcode(country[i], int(zip_n[i]), tuple(letters[i]), int(area[i]))
        for i in range(n)
    ]
    english = rng.random(n) < 0.05
    language = ["en" if english[i] else people.COUNTRIES[c][1] for i, c in enumerate(country)]
    at_checkout = rng.random(n) < 0.6
    lead_days = np.where(
        at_checkout, rng.uniform(1, 20, n) / 1440.0, rng.exponential(20.0, n) + 1 / 1440.0
    )
    created = birth_us - (lead_days * 86_400e6).astype(np.int64)
    return pa.table(
        {
            "customer_id": ids,
            "email": pa.array(_emails(rng, first, last, country, numbers, email_digits)),
            "phone": pa.array(_phones(rng, country), pa.string()),
            "first_name": pa.array(first, pa.string()),
            "last_name": pa.array(last, pa.string()),
            "country": pa.array(country, pa.string()),
            "zip": pa.array(zips, pa.string()),
            "language": pa.array(language, pa.string()),
            "subscribed": pa.array(rng.random(n) < 0.45, pa.bool_()),
            "created_at": pa.array(created, pa.timestamp("us", tz="UTC")),
        }
    )
