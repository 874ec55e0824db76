"""Person-bearing records of every bronze source, standardised, and their strong identifiers.

Each source contributes what it knows about a person: the CRM a full profile; orders,
tickets and surveys an email and maybe the CRM id they were placed under; store tickets a
loyalty card; the enrichment vendor a hashed email or an address; social mentions an email
when the platform shared one. ``record_id`` is ``<source_table>:<source_record_id>``.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.identity import standardise as std



def _null() -> Column:
    return F.lit(None).cast("string")


def _record(df: DataFrame, table: str, key: str, **fields: Column) -> DataFrame:
    """Rows of one source in the common shape; fields not given are null."""
    columns = {"first_name": _null(), "last_name": _null(), "birth_date": F.lit(None).cast("date"),
               "email_raw": _null(), "email": _null(), "phone": _null(), "address_line": _null(),
               "address_unit": _null(), "postcode": _null(), "country": _null(), "crm_contact_id": _null(),
               "loyalty_card_id": _null(), "email_sha256": _null()}
    columns.update(fields)
    return df.select(
        F.concat(F.lit(f"{table}:"), F.col(key)).alias("record_id"), F.lit(table).alias("source_table"),
        F.col(key).alias("source_record_id"), *[value.alias(name) for name, value in columns.items()],
    )


def _emailed(column: str) -> dict[str, Column]:
    return {"email_raw": F.col(column), "email": std.email(F.col(column))}


def _crm(df: DataFrame) -> DataFrame:
    live = df.where(~F.col("_is_deleted")) if "_is_deleted" in df.columns else df
    return _record(
        live, "crm_contacts", "contact_id",
        first_name=std.first_name(F.col("first_name")), last_name=std.name(F.col("last_name")),
        birth_date=F.col("birth_date"), **_emailed("email"), phone=std.phone(F.col("phone"), F.col("country")),
        address_line=std.address_line(F.col("street")), address_unit=std.address_unit(F.col("street")),
        postcode=std.postcode(F.col("postcode")), country=F.upper(F.col("country")),
        crm_contact_id=F.col("contact_id"), loyalty_card_id=F.col("loyalty_card_id"),
    )


SOURCES: dict[str, Callable[[DataFrame], DataFrame]] = {
    "crm_contacts": _crm,
    "shop_orders": lambda df: _record(df, "shop_orders", "order_id", **_emailed("customer_email"),
                                      postcode=std.postcode(F.col("shipping_postcode")),
                                      crm_contact_id=F.col("crm_contact_id")),
    "support_tickets": lambda df: _record(df, "support_tickets", "ticket_id", **_emailed("customer_email"),
                                          crm_contact_id=F.col("crm_contact_id")),
    "survey_responses": lambda df: _record(df, "survey_responses", "response_id", **_emailed("respondent_email"),
                                           crm_contact_id=F.col("crm_contact_id")),
    "pos_transactions": lambda df: _record(df, "pos_transactions", "transaction_id",
                                           loyalty_card_id=F.col("loyalty_card_id")),
    "social_mentions": lambda df: _record(df, "social_mentions", "mention_id", **_emailed("linked_email")),
    "enrichment_demographics": lambda df: _record(
        df, "enrichment_demographics", "vendor_record_id", email_sha256=F.lower(F.col("email_sha256")),
        address_line=std.address_line(F.col("street")), address_unit=std.address_unit(F.col("street")),
        postcode=std.postcode(F.col("postcode"))),
}


def person_records(tables: dict[str, DataFrame]) -> DataFrame:
    """One standardised row per person-bearing record of the given bronze tables."""
    frames = [SOURCES[name](df) for name, df in sorted(tables.items()) if name in SOURCES]
    if not frames:
        raise ValueError(f"none of {sorted(tables)} carries people; expected some of {sorted(SOURCES)}")
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def identifiers(records: DataFrame) -> DataFrame:
    """``(record_id, kind, value)`` for every strong identifier a record carries. A vendor's
    hashed email is matched against the hash of both the raw (lower-cased) and the standard
    email, since vendors hash what they were given."""
    raw_hash = F.sha2(F.lower(F.trim(F.col("email_raw"))), 256)
    standard_hash = F.sha2(F.col("email"), 256)
    kinds = {
        "email": F.array(F.col("email")),
        "phone": F.array(F.col("phone")),
        "crm_contact_id": F.array(F.nullif(F.trim(F.col("crm_contact_id")), F.lit(""))),
        "loyalty_card_id": F.array(F.nullif(F.trim(F.col("loyalty_card_id")), F.lit(""))),
        "email_sha256": F.array(F.coalesce(F.col("email_sha256"), F.when(F.col("email").isNotNull(), raw_hash)),
                                F.when(F.col("email").isNotNull(), standard_hash)),
    }
    frames = [records.select("record_id", F.lit(kind).alias("kind"), F.explode(values).alias("value"))
              for kind, values in kinds.items()]
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out.where(F.col("value").isNotNull() & (F.col("value") != "")).distinct()
