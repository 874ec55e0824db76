"""Standardise person attributes before matching.

Each function takes the raw column(s) and returns the standard form as a Spark Column, or
null when nothing usable is left (empty text, an email without a domain, an impossible
phone). The callers keep the raw value beside the standard one. Everything is a built-in
Spark expression except phones, which need the ``phonenumbers`` library and run as a
vectorised (Arrow) pandas UDF, never a row-at-a-time Python UDF.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

REFERENCE_DIR = Path(__file__).with_name("reference")

# Providers that deliver user+tag@ to user@ (the tag is noise for matching). Gmail also
# ignores dots in the local part, and googlemail.com is the same mailbox as gmail.com.
PLUS_TAG_DOMAINS = (
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "icloud.com",
    "me.com",
    "proton.me",
    "protonmail.com",
    "fastmail.com",
)
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")
EMAIL_SHAPE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

# Single characters folded to ASCII (covers the Latin-1 and Latin Extended-A letters seen in
# names); the few that become two letters are replaced first.
_FOLDS = {
    "a": "àáâãäåāăą",
    "c": "çćč",
    "d": "ď",
    "e": "èéêëēėęě",
    "i": "ìíîïīį",
    "l": "ł",
    "n": "ñńň",
    "o": "òóôõöøōő",
    "r": "ŕř",
    "s": "śšş",
    "t": "ť",
    "u": "ùúûüūůűų",
    "y": "ýÿ",
    "z": "žźż",
}
_FOLD_FROM = "".join(accented for accented in _FOLDS.values())
_FOLD_TO = "".join(plain * len(accented) for plain, accented in _FOLDS.items())
_MULTI_LETTER = {"ß": "ss", "æ": "ae", "œ": "oe", "þ": "th", "đ": "d", "ð": "d"}

STREET_ABBREVIATIONS = {
    "st": "street",
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "ln": "lane",
    "dr": "drive",
    "ct": "court",
    "pl": "place",
    "sq": "square",
    "blvd": "boulevard",
    "cres": "crescent",
    "hwy": "highway",
}
UNIT_WORDS = r"(?:flat|apt|apartment|unit|suite|ste|#)"


def _blank_to_null(column: Column) -> Column:
    return F.when(column != "", column)


def fold(column: Column) -> Column:
    """Lower case, accents removed, whitespace collapsed: 'ZOË  Müller' -> 'zoe muller'."""
    text = F.lower(F.trim(column))
    for letter, replacement in _MULTI_LETTER.items():
        text = F.replace(text, F.lit(letter), F.lit(replacement))
    text = F.translate(text, _FOLD_FROM, _FOLD_TO)
    return F.regexp_replace(text, r"\s+", " ")


# --- email ---------------------------------------------------------------------------------


def email(column: Column) -> Column:
    """Lower case and trimmed; +tags dropped where the provider ignores them, dots dropped for
    Gmail; null unless it looks like local@domain.tld."""
    text = F.lower(F.trim(column))
    local, domain = F.substring_index(text, "@", 1), F.substring_index(text, "@", -1)
    domain = F.when(domain == "googlemail.com", F.lit("gmail.com")).otherwise(domain)
    local = F.when(domain.isin(*PLUS_TAG_DOMAINS), F.regexp_replace(local, r"\+.*$", "")).otherwise(local)
    local = F.when(domain.isin(*GMAIL_DOMAINS), F.replace(local, F.lit("."), F.lit(""))).otherwise(local)
    return F.when(text.rlike(EMAIL_SHAPE) & (local != ""), F.concat(local, F.lit("@"), domain))


# --- phone ---------------------------------------------------------------------------------


def _e164(numbers: pd.Series, regions: pd.Series) -> pd.Series:
    import phonenumbers

    def one(number, region):
        if not isinstance(number, str) or not number.strip():
            return None
        region = region.upper() if isinstance(region, str) and len(region) == 2 else None
        try:
            parsed = phonenumbers.parse(number, region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_possible_number(parsed):
            return None
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)

    return pd.Series([one(n, r) for n, r in zip(numbers, regions, strict=True)], dtype=object)


@cache
def _e164_udf():
    """Made on first use, not at import: pyspark makes a classic or a Spark Connect UDF by the
    session kind current when the UDF is created (a process may import this module before its
    environment names the Spark service)."""
    return F.pandas_udf(_e164, StringType())


def phone(column: Column, country: Column | None = None) -> Column:
    """E.164 ('+447700900123'). A national number is read in the record's country (ISO 3166
    alpha-2); '+' and '00' international forms need no country. Impossible numbers give null."""
    # The cast gives a plain string: over Spark Connect a UDF's string result is stored as
    # "string collate UTF8_BINARY", a type that Delta readers other than Spark (delta-rs) refuse.
    return _e164_udf()(column, country if country is not None else F.lit(None).cast("string")).cast("string")


# --- names ---------------------------------------------------------------------------------


def name(column: Column) -> Column:
    """Folded, punctuation removed, hyphens as spaces: "O'Brien" -> 'obrien', 'Jean-Luc' -> 'jean luc'."""
    text = F.regexp_replace(fold(column), r"[-_.]", " ")
    text = F.regexp_replace(text, r"[^a-z ]", "")
    return _blank_to_null(F.trim(F.regexp_replace(text, r"\s+", " ")))


@cache
def nicknames() -> dict[str, str]:
    """nickname -> formal first name, from reference/nicknames.csv (lower case ASCII)."""
    with (REFERENCE_DIR / "nicknames.csv").open(encoding="utf-8") as f:
        return {row["nickname"]: row["name"] for row in csv.DictReader(f)}


def first_name(column: Column) -> Column:
    """The standard name, with a known nickname replaced by its formal name (Bob -> robert)."""
    standard = name(column)
    table = F.create_map(*[F.lit(x) for pair in sorted(nicknames().items()) for x in pair])
    return F.coalesce(F.try_element_at(table, standard), standard)


# --- dates of birth ------------------------------------------------------------------------

MONTH_FIRST_COUNTRIES = ("US", "PH", "FM", "PW", "MH")


def birth_date(column: Column, country: Column | None = None) -> Column:
    """A date from ISO (1990-04-03, 19900403), day-first (03/04/1990, 3.4.1990) or US
    month-first (04/03/1990) text. When both readings of a slashed date are valid, the
    record's country decides (month first in the US), else day first."""
    text = F.trim(column)
    slashed = F.regexp_extract(text, r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$", 0) != ""
    first = F.regexp_extract(text, r"^(\d{1,2})", 1).cast("int")
    second = F.regexp_extract(text, r"^\d{1,2}[/.\-](\d{1,2})", 1).cast("int")
    year = F.regexp_extract(text, r"(\d{4})$", 1)
    us = country.isin(*MONTH_FIRST_COUNTRIES) if country is not None else F.lit(False)
    month_first = (first <= 12) & ((second > 12) | us)
    month = F.when(month_first, first).otherwise(second)
    day = F.when(month_first, second).otherwise(first)
    from_slashed = F.try_make_timestamp(year.cast("int"), month, day, F.lit(0), F.lit(0), F.lit(0))
    iso = F.coalesce(
        F.try_to_timestamp(text, F.lit("yyyy-MM-dd")),
        F.try_to_timestamp(text, F.lit("yyyyMMdd")),
        F.try_to_timestamp(text, F.lit("yyyy/MM/dd")),
    )
    return F.to_date(F.when(slashed, from_slashed).otherwise(iso))


# --- addresses -----------------------------------------------------------------------------


def _address_text(column: Column) -> Column:
    text = F.regexp_replace(fold(column), r"[,;.]", " ")
    return F.regexp_replace(text, r"\s+", " ")


def address_unit(column: Column) -> Column:
    """The flat/apartment/unit number of an address line ('Flat 3, 12 High St' -> '3')."""
    unit = F.regexp_extract(_address_text(column), rf"{UNIT_WORDS}\s*([0-9]+[a-z]?)", 1)
    return _blank_to_null(unit)


def address_line(column: Column) -> Column:
    """The street part, unit removed and abbreviations spelled out: 'Flat 3, 12 High St' and
    '12 High Street Apt 3' -> '12 high street'."""
    text = F.regexp_replace(_address_text(column), rf"{UNIT_WORDS}\s*[0-9]+[a-z]?", " ")
    for short, long in STREET_ABBREVIATIONS.items():
        text = F.regexp_replace(text, rf"\b{short}\b", long)
    text = F.regexp_replace(text, r"[^a-z0-9 ]", "")
    return _blank_to_null(F.trim(F.regexp_replace(text, r"\s+", " ")))


def postcode(column: Column) -> Column:
    """Upper case without spaces or punctuation: 'n1 1aa' -> 'N11AA'."""
    return _blank_to_null(F.upper(F.regexp_replace(F.trim(column), r"[^0-9A-Za-z]", "")))
