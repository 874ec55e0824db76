"""Each standardiser on awkward real-world input: unicode, international formats, blanks."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import functions as F

from spark_jobs.identity import standardise as std


def _apply(spark, function, values, *extra):
    """[function(value, *extra columns)] for one-column (or more) rows, in input order."""
    width = 1 + len(extra)
    rows = (
        [(i, v, *e) for i, (v, *e) in enumerate(zip(values, *extra, strict=True))]
        if extra
        else [(i, v) for i, v in enumerate(values)]
    )
    names = ["v"] + [f"x{k}" for k in range(1, width)]
    df = spark.createDataFrame(rows, "i int, " + ", ".join(f"{n} string" for n in names))
    out = df.select("i", function(*[F.col(n) for n in names]).alias("out")).orderBy("i")
    return [r.out for r in out.collect()]


def test_email_case_space_gmail_dots_and_tags(spark):
    values = [
        "  Ann.Lee@Gmail.com ",
        "annlee+shop@gmail.com",
        "a.n.n.lee@googlemail.com",
        "ann.lee+news@outlook.com",
        "ann.lee+x@example.org",
        "ANN.LEE@EXAMPLE.ORG",
        "not-an-email",
        "",
        None,
        "@gmail.com",
        "two@@at.com",
        "josé@correo.es",
    ]
    assert _apply(spark, std.email, values) == [
        "annlee@gmail.com",
        "annlee@gmail.com",
        "annlee@gmail.com",
        "ann.lee@outlook.com",
        "ann.lee+x@example.org",  # +tags are kept where the provider does not ignore them
        "ann.lee@example.org",
        None,
        None,
        None,
        None,
        None,
        "josé@correo.es",
    ]


def test_phones_in_any_national_or_international_format_become_e164(spark):
    numbers = [
        "07700 900123",
        "+44 7700 900123",
        "0044 7700900123",
        "(07700) 900-123",
        "+1 512-555-0147",
        "(512) 555-0147",
        "512.555.0147",
        "030 1234567",
        "+49 30 1234567",
        "12",
        "",
        None,
        "call me",
    ]
    countries = ["GB", "GB", "FR", "GB", "GB", "US", "US", "DE", None, "GB", "GB", "GB", "GB"]
    assert _apply(spark, std.phone, numbers, countries) == [
        "+447700900123",
        "+447700900123",
        "+447700900123",
        "+447700900123",
        "+15125550147",
        "+15125550147",
        "+15125550147",
        "+49301234567",
        "+49301234567",
        None,
        None,
        None,
        None,
    ]


def test_names_are_folded_and_nicknames_become_formal_names(spark):
    values = [
        "  ZOË ",
        "Søren",
        "O'Brien",
        "Jean-Luc",
        "Müller",
        "bob",
        "Liz",
        "Robert",
        "  ",
        None,
        "Straße",
        "X Æ A-12",
    ]
    assert _apply(spark, std.name, values) == [
        "zoe",
        "soren",
        "obrien",
        "jean luc",
        "muller",
        "bob",
        "liz",
        "robert",
        None,
        None,
        "strasse",
        "x ae a",
    ]
    assert _apply(spark, std.first_name, ["Bob", "BOBBY", "Liz", "Elizabeth", "Zoë", None]) == [
        "robert",
        "robert",
        "elizabeth",
        "elizabeth",
        "zoe",
        None,
    ]


@pytest.mark.parametrize(
    "text, country, expected",
    [
        ("1990-04-03", None, date(1990, 4, 3)),
        ("19900403", None, date(1990, 4, 3)),
        ("03/04/1990", "GB", date(1990, 4, 3)),  # day first outside the US
        ("04/03/1990", "US", date(1990, 4, 3)),  # month first in the US
        ("25/12/1980", "US", date(1980, 12, 25)),  # only one reading is a date
        ("12/25/1980", "GB", date(1980, 12, 25)),
        ("3.4.1990", "DE", date(1990, 4, 3)),
        ("31/02/1990", "GB", None),  # no such day
        ("1990-13-01", None, None),
        ("yesterday", "GB", None),
        ("", "GB", None),
    ],
)
def test_birth_dates_in_iso_european_and_us_forms(spark, text, country, expected):
    assert _apply(spark, std.birth_date, [text], [country]) == [expected]


def test_addresses_lose_abbreviations_and_units_and_keep_the_unit_apart(spark):
    values = [
        "Flat 3, 12 High St",
        "12 High Street Apt 3",
        "12, HIGH STREET",
        "7 Kings Rd.",
        "7 kings road #12b",
        "Apartment 4 9 Park Ave",
        "",
        None,
    ]
    assert _apply(spark, std.address_line, values) == [
        "12 high street",
        "12 high street",
        "12 high street",
        "7 kings road",
        "7 kings road",
        "9 park avenue",
        None,
        None,
    ]
    assert _apply(spark, std.address_unit, values) == ["3", "3", None, None, "12b", "4", None, None]


def test_postcodes_are_upper_case_without_spaces(spark):
    assert _apply(spark, std.postcode, [" n1 1aa", "SW1A-1AA", "78701", "", None]) == [
        "N11AA",
        "SW1A1AA",
        "78701",
        None,
        None,
    ]
