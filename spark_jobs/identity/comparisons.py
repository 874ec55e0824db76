"""Graded comparison levels for a pair of person records (the gamma vector of Fellegi-Sunter).

Each comparison gives a pair one level, an int from 0 (the values disagree) up to the
number of levels minus one (they agree exactly), or null when a side is missing (no
evidence either way). The level names, weakest first, are in :data:`LEVELS`; the model
(probabilistic.py) learns an m and a u probability per level, so a level's order only
decides which one applies when several would.

String similarity (Jaro-Winkler, token overlap, edit distance with transpositions) comes
from rapidfuzz in one vectorised pandas UDF per pair frame; everything else is built-in
Spark. Correlated fields are compared together: the street, postcode and city are one
*location* comparison, so that one address does not count as three pieces of evidence.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

LEVELS: dict[str, tuple[str, ...]] = {
    "first_name": ("different", "initial", "similar", "close", "swapped", "nickname", "exact"),
    "last_name": ("different", "changed", "similar", "close", "exact"),
    "birth_date": ("different", "same_year", "day_month_swapped", "one_edit", "exact"),
    "email": ("different", "local_part_close", "same_local_part", "exact"),
    "phone": ("different", "last_7_digits", "exact"),
    "location": ("different", "city_or_near_postcode", "postcode", "street_elsewhere", "street", "address"),
}
COMPARISONS = tuple(LEVELS)
# A pair *shares a home* when it agrees on one of these levels (the same street, a family
# mailbox or landline). Such pairs are scored on HOME_SCORED against what different people who
# share a home look like (probabilistic.Model); the level that makes the home counts through
# the home prior, and the location not at all: a household shares its address, and one person
# on a shared email or phone at another address has moved. A different email or phone still
# counts (family members have their own).
HOME_LEVELS = {"location": ("address", "street"), "email": ("exact",), "phone": ("exact",)}
HOME_SCORED = ("first_name", "last_name", "birth_date")
HOME_UNSCORED = ("location",)
# Levels that are no evidence either way: a surname changed at marriage is told by the first
# name, birth date and address agreeing, which count on their own.
NEUTRAL_LEVELS = {"last_name": ("changed",)}
# Which exact levels get a term-frequency adjustment, and on which value.
TF_FIELDS = {"first_name": "given_name", "last_name": "last_name", "postcode": "postcode"}

JW_CLOSE, JW_SIMILAR, JW_CITY = 0.92, 0.8, 0.9
STREET_CLOSE = 0.8
# Columns a record needs for comparing (records.py and persons.py give all of them).
RECORD_COLUMNS = (
    "given_name",
    "first_name",
    "last_name",
    "birth_date",
    "email",
    "phone",
    "address_line",
    "city",
    "postcode",
)


def level(comparison: str, name: str) -> int:
    return LEVELS[comparison].index(name)


# --- string similarity (one vectorised UDF) ------------------------------------------------

SIMILARITY = StructType(
    [
        StructField(name, DoubleType())
        for name in ("given", "first", "last", "given_last", "last_given", "city", "street")
    ]
    + [StructField("dob_edits", IntegerType())]
)


def _jaro_winkler(left: pd.Series, right: pd.Series) -> pd.Series:
    from rapidfuzz.distance import JaroWinkler
    from rapidfuzz.process import cpdist

    missing = left.isna() | right.isna()
    scores = cpdist(
        left.fillna("").tolist(), right.fillna("").tolist(), scorer=JaroWinkler.normalized_similarity, workers=1
    )
    return pd.Series(scores, index=left.index).mask(missing)


def _house_number(street: str) -> str | None:
    first = street.split(" ", 1)[0]
    return first if first[:1].isdigit() else None


def street_similarity(left: str | None, right: str | None) -> float | None:
    """0..1 for two standardised street lines: 0 when both carry a house number and the
    numbers differ, else the similarity of the rest with spaces removed (a typo, a missing or
    an extra space cost little: 'coplanddrive' is 'copland drive')."""
    from rapidfuzz.distance import Indel

    if not isinstance(left, str) or not isinstance(right, str):
        return None
    number_l, number_r = _house_number(left), _house_number(right)
    if number_l and number_r and number_l != number_r:
        return 0.0
    rest_l = (left.split(" ", 1)[1] if number_l and " " in left else left).replace(" ", "")
    rest_r = (right.split(" ", 1)[1] if number_r and " " in right else right).replace(" ", "")
    return Indel.normalized_similarity(rest_l, rest_r)


def _edits(left: pd.Series, right: pd.Series) -> pd.Series:
    from rapidfuzz.distance import OSA  # edits with adjacent transpositions counted as one

    return pd.Series(
        [
            OSA.distance(a, b) if isinstance(a, str) and isinstance(b, str) else None
            for a, b in zip(left, right, strict=True)
        ],
        dtype="Int64",
    )


@F.pandas_udf(SIMILARITY)
def _similarity(
    given_l: pd.Series,
    given_r: pd.Series,
    first_l: pd.Series,
    first_r: pd.Series,
    last_l: pd.Series,
    last_r: pd.Series,
    city_l: pd.Series,
    city_r: pd.Series,
    street_l: pd.Series,
    street_r: pd.Series,
    dob_l: pd.Series,
    dob_r: pd.Series,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "given": _jaro_winkler(given_l, given_r),
            "first": _jaro_winkler(first_l, first_r),
            "last": _jaro_winkler(last_l, last_r),
            "given_last": _jaro_winkler(given_l, last_r),
            "last_given": _jaro_winkler(last_l, given_r),
            "city": _jaro_winkler(city_l, city_r),
            "street": pd.Series(
                [street_similarity(a, b) for a, b in zip(street_l, street_r, strict=True)], dtype="float64"
            ),
            "dob_edits": _edits(dob_l, dob_r),
        }
    )


# --- levels ----------------------------------------------------------------------------------


def _l(column: str) -> Column:
    return F.col(f"{column}_l")


def _r(column: str) -> Column:
    return F.col(f"{column}_r")


def _both(column: str) -> Column:
    return _l(column).isNotNull() & _r(column).isNotNull()


def _first_name(sim: Column) -> tuple[Column, Column]:
    """(level, names_swapped)."""
    jw = F.greatest(sim.given, sim.first)
    swapped = (
        (sim.given_last >= JW_CLOSE)
        & (sim.last_given >= JW_CLOSE)
        & (jw < JW_CLOSE)
        & (_l("last_name") != _r("last_name"))
    )
    initial = ((F.length(_l("given_name")) == 1) | (F.length(_r("given_name")) == 1)) & (
        F.substring(_l("given_name"), 1, 1) == F.substring(_r("given_name"), 1, 1)
    )
    lv = lambda name: F.lit(level("first_name", name))  # noqa: E731
    out = (
        F.when(~_both("given_name"), F.lit(None))
        .when(_l("given_name") == _r("given_name"), lv("exact"))
        .when(_l("first_name") == _r("first_name"), lv("nickname"))
        .when(F.coalesce(swapped, F.lit(False)), lv("swapped"))
        .when(jw >= JW_CLOSE, lv("close"))
        .when(jw >= JW_SIMILAR, lv("similar"))
        .when(initial, lv("initial"))
        .otherwise(lv("different"))
    )
    return out.cast("int"), F.coalesce(swapped, F.lit(False))


def _birth_date(sim: Column) -> Column:
    dob_l, dob_r = _l("birth_date"), _r("birth_date")
    lv = lambda name: F.lit(level("birth_date", name))  # noqa: E731
    swapped = (
        (F.year(dob_l) == F.year(dob_r))
        & (F.month(dob_l) == F.dayofmonth(dob_r))
        & (F.dayofmonth(dob_l) == F.month(dob_r))
    )
    return (
        F.when(~_both("birth_date"), F.lit(None))
        .when(dob_l == dob_r, lv("exact"))
        .when(sim.dob_edits <= 1, lv("one_edit"))
        .when(swapped, lv("day_month_swapped"))
        .when(F.year(dob_l) == F.year(dob_r), lv("same_year"))
        .otherwise(lv("different"))
        .cast("int")
    )


def _last_name(sim: Column, swapped: Column, first: Column, dob: Column, location: Column) -> Column:
    jw = F.when(swapped, sim.last_given).otherwise(sim.last)
    lv = lambda name: F.lit(level("last_name", name))  # noqa: E731
    married = (
        first.isin(level("first_name", "exact"), level("first_name", "nickname"))
        & (dob == level("birth_date", "exact"))
        & location.isin(level("location", "address"), level("location", "street"))
    )
    return (
        F.when(~_both("last_name"), F.lit(None))
        .when(jw >= 1.0, lv("exact"))
        .when(jw >= JW_CLOSE, lv("close"))
        .when(jw >= JW_SIMILAR, lv("similar"))
        .when(F.coalesce(married, F.lit(False)), lv("changed"))
        .otherwise(lv("different"))
        .cast("int")
    )


def _email() -> Column:
    """A close local part is one typo away with the same digits: 'olivia.smith12' and
    'olivai.smith12' may be one person, 'olivia.smith12' and 'olivia.smith13' are two."""
    local_l, local_r = F.substring_index(_l("email"), "@", 1), F.substring_index(_r("email"), "@", 1)
    lv = lambda name: F.lit(level("email", name))  # noqa: E731
    digits = lambda local: F.regexp_replace(local, "[^0-9]", "")  # noqa: E731
    close = (
        (F.levenshtein(local_l, local_r) <= 1)
        & (digits(local_l) == digits(local_r))
        & (F.least(F.length(local_l), F.length(local_r)) >= 5)
    )
    return (
        F.when(~_both("email"), F.lit(None))
        .when(_l("email") == _r("email"), lv("exact"))
        .when(local_l == local_r, lv("same_local_part"))
        .when(close, lv("local_part_close"))
        .otherwise(lv("different"))
        .cast("int")
    )


def _phone() -> Column:
    lv = lambda name: F.lit(level("phone", name))  # noqa: E731
    last7 = F.substring(_l("phone"), -7, 7) == F.substring(_r("phone"), -7, 7)
    return (
        F.when(~_both("phone"), F.lit(None))
        .when(_l("phone") == _r("phone"), lv("exact"))
        .when(last7, lv("last_7_digits"))
        .otherwise(lv("different"))
        .cast("int")
    )


def _location(sim: Column) -> Column:
    """Street, postcode and city as one comparison. The *area* agrees when the postcodes are
    equal or one edit apart or the cities nearly agree; the street is the same when it is equal
    but for spaces, close when 80 % alike (street_similarity), with the same house number."""
    lv = lambda name: F.lit(level("location", name))  # noqa: E731
    postcode_same = _l("postcode") == _r("postcode")
    postcode_near = F.levenshtein(_l("postcode"), _r("postcode")) <= 1
    city_same = sim.city >= JW_CITY
    area_known = _both("postcode") | _both("city")
    area_agrees = F.coalesce(postcode_near, F.lit(False)) | F.coalesce(city_same, F.lit(False))
    street = F.coalesce(sim.street, F.lit(0.0))
    street_same = _both("address_line") & (street >= 1.0)
    street_close = _both("address_line") & (street >= STREET_CLOSE)
    anything = _both("address_line") | area_known
    return (
        F.when(~anything, F.lit(None))
        .when(street_same & (area_agrees | ~area_known), lv("address"))
        .when(street_close & (area_agrees | ~area_known), lv("street"))
        .when(street_close, lv("street_elsewhere"))
        .when(F.coalesce(postcode_same, F.lit(False)), lv("postcode"))
        .when(area_agrees, lv("city_or_near_postcode"))
        .otherwise(lv("different"))
        .cast("int")
    )


def _date_text(column: str) -> Column:
    return F.date_format(F.col(column), "yyyyMMdd")


def compare(pairs: DataFrame) -> DataFrame:
    """Adds ``gamma_<comparison>`` for every comparison and ``names_swapped`` to a frame of
    ``<column>_l`` / ``<column>_r`` pairs (see :data:`RECORD_COLUMNS` and :func:`with_sides`)."""
    sim = _similarity(
        _l("given_name"),
        _r("given_name"),
        _l("first_name"),
        _r("first_name"),
        _l("last_name"),
        _r("last_name"),
        _l("city"),
        _r("city"),
        _l("address_line"),
        _r("address_line"),
        _date_text("birth_date_l"),
        _date_text("birth_date_r"),
    )
    with_sim = pairs.withColumn("_sim", sim)
    sim = F.col("_sim")
    first, swapped = _first_name(sim)
    with_first = (
        with_sim.withColumn("gamma_first_name", first)
        .withColumn("names_swapped", swapped)
        .withColumn("gamma_birth_date", _birth_date(sim))
        .withColumn("gamma_location", _location(sim))
    )
    return (
        with_first.withColumn(
            "gamma_last_name",
            _last_name(
                sim,
                F.col("names_swapped"),
                F.col("gamma_first_name"),
                F.col("gamma_birth_date"),
                F.col("gamma_location"),
            ),
        )
        .withColumn("gamma_email", _email())
        .withColumn("gamma_phone", _phone())
        .drop("_sim")
        .select(*pairs.columns, *[f"gamma_{c}" for c in COMPARISONS], "names_swapped")
    )


def with_sides(pairs: DataFrame, records: DataFrame) -> DataFrame:
    """The compared columns of both records of each ``(id_l, id_r)`` pair, as ``<column>_l`` / ``_r``."""
    side = records.select("record_id", *RECORD_COLUMNS)
    left = side.select(F.col("record_id").alias("id_l"), *[F.col(c).alias(f"{c}_l") for c in RECORD_COLUMNS])
    right = side.select(F.col("record_id").alias("id_r"), *[F.col(c).alias(f"{c}_r") for c in RECORD_COLUMNS])
    return pairs.join(left, "id_l").join(right, "id_r")


def shares_home(pattern: dict[str, int | None]) -> bool:
    return any(pattern.get(c) in {level(c, name) for name in names} for c, names in HOME_LEVELS.items())


def home_column() -> Column:
    """The same test as :func:`shares_home`, on ``gamma_*`` columns."""
    tests = [F.col(f"gamma_{c}").isin(*[level(c, name) for name in names]) for c, names in HOME_LEVELS.items()]
    return F.greatest(*[F.coalesce(t, F.lit(False)).cast("int") for t in tests]) == 1
