"""Comparison levels: every level of every comparison on an awkward pair, by name."""

from __future__ import annotations

from datetime import date

import pytest

from spark_jobs.identity.comparisons import LEVELS, RECORD_COLUMNS, compare, street_similarity

PAIR_SCHEMA = ", ".join(
    f"{c}_{side} {'date' if c == 'birth_date' else 'string'}" for c in RECORD_COLUMNS for side in ("l", "r")
)
BASE = {
    "given_name": "anna",
    "first_name": "anna",
    "last_name": "kowalski",
    "birth_date": date(1980, 3, 4),
    "email": "anna.k@example.com",
    "phone": "+447700900123",
    "address_line": "12 high street",
    "city": "london",
    "postcode": "N11AA",
}
OTHER = {
    "given_name": "zoe",
    "first_name": "zoe",
    "last_name": "nguyen",
    "birth_date": date(1955, 11, 20),
    "email": "zn@mail.org",
    "phone": "+15125550100",
    "address_line": "9 oak road",
    "city": "leeds",
    "postcode": "LS11XY",
}


def _levels(spark, cases: dict[str, tuple[dict, dict]], comparison: str) -> dict[str, str | None]:
    rows = []
    for name, (left, right) in cases.items():
        values = []
        for c in RECORD_COLUMNS:
            values += [left.get(c, BASE[c]), right.get(c, BASE[c])]
        rows.append((name, *values))
    frame = spark.createDataFrame(rows, f"case string, {PAIR_SCHEMA}")
    out = {}
    for row in compare(frame).collect():
        lv = row[f"gamma_{comparison}"]
        out[row.case] = None if lv is None else LEVELS[comparison][lv]
    return out


def _names(given: str, last: str, formal: str | None = None) -> dict:
    return {"given_name": given, "first_name": formal or given, "last_name": last}


def test_first_name_levels(spark):
    cases = {
        "exact": (_names("anna", "smith"), _names("anna", "smith")),
        "nickname": (_names("bob", "smith", "robert"), _names("robert", "smith")),
        # a typo in the formal name on one side, a nickname on the other
        "close": (_names("robret", "smith"), _names("bob", "smith", "robert")),
        "swapped": (_names("smith", "john"), _names("john", "smith")),
        "similar": (_names("dwayne", "smith"), _names("duane", "smith")),
        "initial": (_names("j", "smith"), _names("john", "smith")),
        "different": (_names("anna", "smith"), _names("zoe", "smith")),
        "missing": (_names(None, "smith"), _names("anna", "smith")),
    }
    levels = _levels(spark, cases, "first_name")
    assert levels == {**{name: name for name in cases if name != "missing"}, "missing": None}


def test_last_name_levels_and_a_surname_changed_at_marriage(spark):
    cases = {
        "exact": ({"last_name": "smith"}, {"last_name": "smith"}),
        "close": ({"last_name": "garcia"}, {"last_name": "garica"}),
        "similar": ({"last_name": "smith"}, {"last_name": "smyth"}),
        # same first name, birth date and address: a new surname is no evidence either way
        "changed": ({"last_name": "smith"}, {"last_name": "nguyen"}),
        "different": ({"last_name": "smith", "address_line": "1 mill lane"}, {"last_name": "nguyen"}),
        # swapped names compare the aligned surname: 'smith' against 'smith'
        "exact after a swap": (_names("smith", "john"), _names("john", "smith")),
    }
    levels = _levels(spark, cases, "last_name")
    assert levels == {
        "exact": "exact",
        "close": "close",
        "similar": "similar",
        "changed": "changed",
        "different": "different",
        "exact after a swap": "exact",
    }


def test_birth_date_levels(spark):
    cases = {
        "exact": (date(1980, 3, 4), date(1980, 3, 4)),
        "one digit off": (date(1980, 3, 4), date(1980, 3, 5)),
        "two digits transposed": (date(1983, 1, 2), date(1938, 1, 2)),
        "day_month_swapped": (date(1980, 3, 4), date(1980, 4, 3)),
        "same_year": (date(1980, 3, 4), date(1980, 11, 22)),
        "different": (date(1980, 3, 4), date(1955, 11, 20)),
    }
    levels = _levels(spark, {k: ({"birth_date": a}, {"birth_date": b}) for k, (a, b) in cases.items()}, "birth_date")
    assert levels == {
        "exact": "exact",
        "one digit off": "one_edit",
        "two digits transposed": "one_edit",
        "day_month_swapped": "day_month_swapped",
        "same_year": "same_year",
        "different": "different",
    }


def test_email_and_phone_levels(spark):
    emails = {
        "exact": ("anna.k@example.com", "anna.k@example.com"),
        "same_local_part": ("anna.k@example.com", "anna.k@other.org"),
        "local_part_close": ("olivia.smith12@x.com", "olivia.smth12@y.com"),
        "other digits": ("olivia.smith12@x.com", "olivia.smith13@x.com"),
        "different": ("anna.k@example.com", "zn@mail.org"),
    }
    levels = _levels(spark, {k: ({"email": a}, {"email": b}) for k, (a, b) in emails.items()}, "email")
    assert levels == {
        "exact": "exact",
        "same_local_part": "same_local_part",
        "local_part_close": "local_part_close",
        "other digits": "different",
        "different": "different",
    }
    phones = {
        "exact": ("+447700900123", "+447700900123"),
        "last_7_digits": ("+447700900123", "+337700900123"),
        "different": ("+447700900123", "+15125550100"),
    }
    levels = _levels(spark, {k: ({"phone": a}, {"phone": b}) for k, (a, b) in phones.items()}, "phone")
    assert levels == {k: k for k in phones}


def test_location_levels(spark):
    cases = {
        "address": ({"address_line": "12 high street"}, {"address_line": "12 highstreet"}),
        "street": ({"address_line": "12 high street"}, {"address_line": "12 hgh stret"}),
        "street_elsewhere": (
            {"address_line": "12 high street"},
            {"address_line": "12 high street", "city": "leeds", "postcode": "LS11XY"},
        ),
        "postcode": ({"address_line": "12 high street"}, {"address_line": "3 oak road"}),
        "city_or_near_postcode": (
            {"address_line": "12 high street"},
            {"address_line": "3 oak road", "postcode": "N11AB"},
        ),
        "different": ({"address_line": "12 high street"}, OTHER),
        "house number differs": ({"address_line": "12 high street"}, {"address_line": "14 high street"}),
        "nothing to compare": ({"address_line": None, "city": None, "postcode": None}, {}),
    }
    levels = _levels(spark, cases, "location")
    assert levels == {
        "address": "address",
        "street": "street",
        "street_elsewhere": "street_elsewhere",
        "postcode": "postcode",
        "city_or_near_postcode": "city_or_near_postcode",
        "different": "different",
        "house number differs": "postcode",
        "nothing to compare": None,
    }


@pytest.mark.parametrize(
    "left, right, expected",
    [
        ("12 high street", "12 highstreet", 1.0),
        ("12 high street", "14 high street", 0.0),  # house numbers must agree
        ("high street", "12 high street", 1.0),  # one side has no number: the street decides
        (None, "12 high street", None),
    ],
)
def test_street_similarity(left, right, expected):
    assert street_similarity(left, right) == expected
