"""Person-bearing records of every bronze source, standardised, and their strong identifiers.

Each source contributes what it knows about a person: the CRM a full profile; orders,
tickets and surveys an email and maybe the CRM id they were placed under; store tickets a
loyalty card (a purchase without one is anonymous: no person record); the enrichment vendor a
hashed email; social mentions a handle on a platform and an email when the platform shared
one. A vendor record keyed by a postal address alone is a household's, not a person's: it is
not a person record (households.py attaches it). ``record_id`` is
``<source_table>:<source_record_id>``.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.identity import standardise as std
from spark_jobs.identity.links import IDENTIFIER_PREFIX


def _null() -> Column:
    return F.lit(None).cast("string")


def _record(df: DataFrame, table: str, key: str, **fields: Column) -> DataFrame:
    """Rows of one source in the common shape; fields not given are null."""
    columns = {
        "given_name": _null(),
        "first_name": _null(),
        "last_name": _null(),
        "birth_date": F.lit(None).cast("date"),
        "email_raw": _null(),
        "email": _null(),
        "phone": _null(),
        "address_line": _null(),
        "address_unit": _null(),
        "city": _null(),
        "postcode": _null(),
        "country": _null(),
        "crm_contact_id": _null(),
        "loyalty_card_id": _null(),
        "email_sha256": _null(),
        "social_handle": _null(),
    }
    columns.update(fields)
    return df.select(
        F.concat(F.lit(f"{table}:"), F.col(key)).alias("record_id"),
        F.lit(table).alias("source_table"),
        F.col(key).alias("source_record_id"),
        *[value.alias(name) for name, value in columns.items()],
    )


def _emailed(column: str) -> dict[str, Column]:
    return {"email_raw": F.col(column), "email": std.email(F.col(column))}


def _crm(df: DataFrame) -> DataFrame:
    live = df.where(~F.col("_is_deleted")) if "_is_deleted" in df.columns else df
    return _record(
        live,
        "crm_contacts",
        "contact_id",
        given_name=std.name(F.col("first_name")),
        first_name=std.first_name(F.col("first_name")),
        last_name=std.name(F.col("last_name")),
        city=std.name(F.col("city")) if "city" in df.columns else _null(),
        birth_date=F.col("birth_date"),
        **_emailed("email"),
        phone=std.phone(F.col("phone"), F.col("country")),
        address_line=std.address_line(F.col("street")),
        address_unit=std.address_unit(F.col("street")),
        postcode=std.postcode(F.col("postcode")),
        country=F.upper(F.col("country")),
        crm_contact_id=F.col("contact_id"),
        loyalty_card_id=F.col("loyalty_card_id"),
    )


SOURCES: dict[str, Callable[[DataFrame], DataFrame]] = {
    "crm_contacts": _crm,
    "shop_orders": lambda df: _record(
        df,
        "shop_orders",
        "order_id",
        **_emailed("customer_email"),
        postcode=std.postcode(F.col("shipping_postcode")),
        crm_contact_id=F.col("crm_contact_id"),
    ),
    "support_tickets": lambda df: _record(
        df, "support_tickets", "ticket_id", **_emailed("customer_email"), crm_contact_id=F.col("crm_contact_id")
    ),
    "survey_responses": lambda df: _record(
        df, "survey_responses", "response_id", **_emailed("respondent_email"), crm_contact_id=F.col("crm_contact_id")
    ),
    # A store purchase without a loyalty card is an anonymous transaction, not a person.
    "pos_transactions": lambda df: _record(
        df.where(F.length(F.trim(F.col("loyalty_card_id"))) > 0),
        "pos_transactions",
        "transaction_id",
        loyalty_card_id=F.trim(F.col("loyalty_card_id")),
    ),
    "social_mentions": lambda df: _record(
        df,
        "social_mentions",
        "mention_id",
        **_emailed("linked_email"),
        social_handle=F.concat_ws(":", F.lower("platform"), F.lower(F.trim("handle"))),
    ),
    # Only the vendor's records keyed by a hashed email describe a person; those keyed by an
    # address describe a household (see households.vendor_households).
    "enrichment_demographics": lambda df: _record(
        df.where(F.col("email_sha256").isNotNull()),
        "enrichment_demographics",
        "vendor_record_id",
        email_sha256=F.lower(F.col("email_sha256")),
    ),
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
    email, since vendors hash what they were given. Kinds whose columns ``records`` lacks
    (a user's file has no CRM id) are skipped. Each ``identifier_<name>`` column a user's
    mapping added is a personal identifier of its own kind."""
    raw_hash = F.sha2(F.lower(F.trim(F.col("email_raw"))), 256)
    standard_hash = F.sha2(F.col("email"), 256)
    kinds = {
        "email": F.array(F.col("email")),
        "phone": F.array(F.col("phone")),
        "crm_contact_id": F.array(F.nullif(F.trim(F.col("crm_contact_id")), F.lit(""))),
        "loyalty_card_id": F.array(F.nullif(F.trim(F.col("loyalty_card_id")), F.lit(""))),
        "social_handle": F.array(F.col("social_handle")),
        "email_sha256": F.array(
            F.coalesce(F.col("email_sha256"), F.when(F.col("email").isNotNull(), raw_hash)),
            F.when(F.col("email").isNotNull(), standard_hash),
        ),
    }
    needs = {
        "email": {"email"},
        "phone": {"phone"},
        "crm_contact_id": {"crm_contact_id"},
        "loyalty_card_id": {"loyalty_card_id"},
        "social_handle": {"social_handle"},
        "email_sha256": {"email", "email_raw", "email_sha256"},
    }
    kinds = {kind: values for kind, values in kinds.items() if needs[kind] <= set(records.columns)}
    kinds.update({column: F.array(F.col(column)) for column in records.columns if column.startswith(IDENTIFIER_PREFIX)})
    frames = [
        records.select("record_id", F.lit(kind).alias("kind"), F.explode(values).alias("value"))
        for kind, values in kinds.items()
    ]
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out.where(F.col("value").isNotNull() & (F.col("value") != "")).distinct()


VISITOR_SOURCE = "web_visitors"


def crm_identifier_history(changes: DataFrame) -> DataFrame:
    """``(record_id, kind, value)``: every email and phone a CRM contact has had, from its change
    records (``bronze.crm_contacts_history``, or the table's change data feed, whose
    ``_change_type`` is then used to skip delete images). An old address or number still
    identifies the person: an order placed before they told us about the new one carries it."""
    if "_change_type" in changes.columns:
        changes = changes.where(F.col("_change_type").isin("insert", "update_preimage", "update_postimage"))
    record_id = F.concat(F.lit("crm_contacts:"), F.col("contact_id")).alias("record_id")
    emails = changes.select(record_id, F.lit("email").alias("kind"), std.email(F.col("email")).alias("value"))
    phones = changes.select(
        record_id, F.lit("phone").alias("kind"), std.phone(F.col("phone"), F.col("country")).alias("value")
    )
    return emails.unionByName(phones).where(F.col("value").isNotNull() & (F.col("value") != "")).distinct()


def visitors(web_events: DataFrame | None, email_events: DataFrame | None) -> tuple[DataFrame, DataFrame] | None:
    """Anonymous web/app visitors as records (``web_visitors:<anonymous_id>``) and their identifiers:
    the CRM contact they logged in as and the emails whose tracked links they clicked. An
    anonymous id seen logged in as more than one user is a shared device: it links nothing."""
    frames = []
    if web_events is not None:
        frames.append(
            web_events.where("user_id IS NOT NULL").select(
                "anonymous_id", F.lit("crm_contact_id").alias("kind"), F.trim("user_id").alias("value")
            )
        )
    if email_events is not None:
        frames.append(
            email_events.where("event_type = 'click' AND anonymous_id IS NOT NULL").select(
                "anonymous_id", F.lit("email").alias("kind"), std.email(F.col("email")).alias("value")
            )
        )
    if not frames:
        return None
    seen = frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])
    seen = seen.where(F.col("value").isNotNull() & (F.col("value") != "")).distinct()
    shared = seen.where("kind = 'crm_contact_id'").groupBy("anonymous_id").count().where("count > 1")
    usable = seen.join(shared, "anonymous_id", "left_anti")
    ids = usable.select(
        F.concat(F.lit(f"{VISITOR_SOURCE}:"), F.col("anonymous_id")).alias("record_id"), "kind", "value"
    )
    return _record(usable.select("anonymous_id").distinct(), VISITOR_SOURCE, "anonymous_id"), ids
