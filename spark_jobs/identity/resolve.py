"""Minimal identity resolution: map every person-bearing source record to a customer id.

Rules, strongest first:
1. an order that carries the CRM contact id of a known contact belongs to that contact's customer;
2. records with the same normalised email are the same customer;
3. a record with neither gets a customer of its own.

The customer id is derived from the normalised email (or the record key), so it is stable
across runs while the email is. #4 replaces this with probabilistic matching and persistent
ids with history; the output table keeps its shape.

    python -m spark_jobs.identity.resolve
"""

from __future__ import annotations

import argparse
import logging

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.reporting import spark_job

log = logging.getLogger(__name__)

IDENTITY_MAP_TABLE = "silver.identity_map"
CUSTOMER_ID_PREFIX = "cus_"


def normalise_email(column: Column) -> Column:
    """Lower-case and trim; blanks become null."""
    cleaned = F.lower(F.trim(column))
    return F.when(cleaned == "", None).otherwise(cleaned)


def source_records(contacts: DataFrame, orders: DataFrame) -> DataFrame:
    """Person-bearing records of every source, in one shape."""
    crm = contacts.select(
        F.lit("crm_contacts").alias("source_table"),
        F.col("contact_id").alias("source_record_id"),
        F.col("contact_id").alias("crm_contact_id"),
        F.col("email").alias("email_raw"),
    )
    shop = orders.select(
        F.lit("shop_orders").alias("source_table"),
        F.col("order_id").alias("source_record_id"),
        F.col("crm_contact_id"),
        F.col("customer_email").alias("email_raw"),
    )
    return crm.unionByName(shop).withColumn("email_normalised", normalise_email(F.col("email_raw")))


def _id_from(value: Column) -> Column:
    return F.concat(F.lit(CUSTOMER_ID_PREFIX), F.substring(F.sha2(value, 256), 1, 16))


def resolve_identities(records: DataFrame) -> DataFrame:
    """One row per source record: its customer_id and the rule that decided it."""
    contact_emails = records.where("source_table = 'crm_contacts'").select(
        F.col("source_record_id").alias("_contact_id"),
        F.col("email_normalised").alias("_contact_email"),
    )
    linked = records.join(
        contact_emails,
        (records.source_table == "shop_orders") & (records.crm_contact_id == contact_emails._contact_id),
        "left",
    )
    # An order placed by a logged-in contact takes the contact's email as its identity.
    identity_email = F.coalesce(F.col("_contact_email"), F.col("email_normalised"))
    rule = (
        F.when(F.col("_contact_id").isNotNull(), F.lit("crm_contact_id"))
        .when(F.col("email_normalised").isNotNull(), F.lit("exact_email"))
        .otherwise(F.lit("no_identifier"))
    )
    record_key = F.concat_ws(":", "source_table", "source_record_id")
    return linked.select(
        "source_table",
        "source_record_id",
        F.when(identity_email.isNotNull(), _id_from(identity_email)).otherwise(_id_from(record_key)).alias("customer_id"),
        rule.alias("match_rule"),
        "email_normalised",
    )


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description="Resolve bronze records into customer ids.").parse_args(argv)
    with spark_job("cdp-identity-resolve") as (spark, _, reporter):
        spark.sql("CREATE DATABASE IF NOT EXISTS silver")
        current_contacts = spark.table("bronze.crm_contacts").where(~F.col("_is_deleted"))
        records = source_records(current_contacts, spark.table("bronze.shop_orders"))
        identity_map = resolve_identities(records)
        # Full recompute each run (replaced by an incremental graph in #4): overwrite atomically.
        identity_map.write.format("delta").mode("overwrite").saveAsTable(IDENTITY_MAP_TABLE)
        stats = spark.table(IDENTITY_MAP_TABLE).agg(
            F.count("*").alias("source_records"),
            F.countDistinct("customer_id").alias("customers"),
        ).first().asDict()
        by_rule = {r["match_rule"]: r["count"] for r in spark.table(IDENTITY_MAP_TABLE).groupBy("match_rule").count().collect()}
        reporter.materialized("silver/identity_map", {**stats, **{f"records_by_{k}": v for k, v in by_rule.items()}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
