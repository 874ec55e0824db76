"""Person records in the platform's standard shape, from any table or CSV of people.

A *mapping* says which of the file's columns holds each standard field (``mapping.yml``,
one ``field: column`` per line). Any number of ``identifier_<name>: column`` entries add
personal identifiers (a national id, an account number): records that carry the same value
of one are the same person, like a CRM contact id. :func:`standard_records` turns a frame into one row per
record with, for every field, the raw text (``<field>_raw``) beside the standard value, so
a data steward can always see what the source said.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.identity import standardise as std

FIELDS = (
    "record_id",
    "source",
    "first_name",
    "last_name",
    "full_name",
    "dob",
    "email",
    "phone",
    "address",
    "city",
    "state",
    "postcode",
    "country",
)
REQUIRED = ("record_id",)
IDENTIFIER_FIELD = re.compile(r"^identifier_[a-z0-9_]+$")


class MappingError(ValueError):
    """The mapping is not usable (the message says which field or column)."""


def parse_mapping(text: str, source: str = "mapping") -> dict[str, str]:
    raw = yaml.safe_load(text) or {}
    if not isinstance(raw, dict):
        raise MappingError(f"{source}: expected one 'field: column' per line")
    unknown = sorted(f for f in set(raw) - set(FIELDS) if not IDENTIFIER_FIELD.match(str(f)))
    if unknown:
        raise MappingError(
            f"{source}: unknown field(s) {unknown}; known: {list(FIELDS)} and "
            "identifier_<name> (lower case letters, digits, _) for personal identifiers"
        )
    missing = [f for f in REQUIRED if not raw.get(f)]
    if missing:
        raise MappingError(f"{source}: {missing} must be mapped to a column")
    return {field: str(column) for field, column in raw.items() if column not in (None, "")}


def load_mapping(path: Path) -> dict[str, str]:
    return parse_mapping(path.read_text(encoding="utf-8"), path.name)


def _text(df: DataFrame, mapping: dict[str, str], field: str) -> Column:
    column = mapping.get(field)
    if column is None:
        return F.lit(None).cast("string")
    if column not in df.columns:
        raise MappingError(
            f"field {field} is mapped to column {column!r}, which the input does not have (columns: {df.columns})"
        )
    return F.nullif(F.trim(F.col(f"`{column}`").cast("string")), F.lit(""))


def identifier_fields(mapping: dict[str, str]) -> list[str]:
    return sorted(f for f in mapping if IDENTIFIER_FIELD.match(f))


def standard_records(df: DataFrame, mapping: dict[str, str], default_source: str = "input") -> DataFrame:
    """One row per input row: record_id, source, ``<field>_raw``, the standard fields and
    one ``identifier_<name>`` column per mapped personal identifier (trimmed text)."""
    raw = {field: _text(df, mapping, field) for field in (*FIELDS, *identifier_fields(mapping))}
    # A full name fills the first and last names that are not mapped on their own:
    # the last word is the last name ("Mary Ann Smith" -> "Mary Ann" / "Smith").
    full = F.regexp_replace(raw["full_name"], r"\s+", " ")
    first_raw = F.coalesce(raw["first_name"], F.nullif(F.regexp_extract(full, r"^(.*) [^ ]+$", 1), F.lit("")))
    last_raw = F.coalesce(raw["last_name"], F.regexp_extract(full, r"([^ ]+)$", 1))
    country = F.upper(raw["country"])
    frame = df.select(
        raw["record_id"].alias("record_id"),
        F.coalesce(raw["source"], F.lit(default_source)).alias("source"),
        first_raw.alias("first_name_raw"),
        last_raw.alias("last_name_raw"),
        raw["dob"].alias("dob_raw"),
        raw["email"].alias("email_raw"),
        raw["phone"].alias("phone_raw"),
        raw["address"].alias("address_raw"),
        raw["city"].alias("city_raw"),
        raw["state"].alias("state_raw"),
        raw["postcode"].alias("postcode_raw"),
        country.alias("country"),
        *[raw[f].alias(f) for f in identifier_fields(mapping)],
    )
    return frame.select(
        "record_id",
        "source",
        *[c for c in frame.columns if c.endswith("_raw")],
        std.name(F.col("first_name_raw")).alias("given_name"),
        std.first_name(F.col("first_name_raw")).alias("first_name"),
        std.name(F.col("last_name_raw")).alias("last_name"),
        std.birth_date(F.col("dob_raw"), F.col("country")).alias("birth_date"),
        std.email(F.col("email_raw")).alias("email"),
        std.phone(F.col("phone_raw"), F.col("country")).alias("phone"),
        std.address_line(F.col("address_raw")).alias("address_line"),
        std.address_unit(F.col("address_raw")).alias("address_unit"),
        std.name(F.col("city_raw")).alias("city"),
        std.name(F.col("state_raw")).alias("state"),
        std.postcode(F.col("postcode_raw")).alias("postcode"),
        "country",
        *identifier_fields(mapping),
    )
