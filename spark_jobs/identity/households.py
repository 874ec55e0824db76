"""Households: customers who live at the same address. A household is never a customer.

Each customer gets one address, the one its CRM record gives (the CRM is the source people
keep up to date), else any other record's; ties go to the smallest record id. Customers
with the same standardised address (line, unit, postcode) form a household. Inside a
household, ``relationship`` says what the data shows between members: ``family`` when a
member shares the surname of another member, ``co_resident`` otherwise, ``only_member``
when the customer lives alone as far as the data knows. The enrichment vendor's records
keyed by an address (not a person) are attached to the household at that address.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark_jobs.identity import standardise as std

SOURCE_PREFERENCE = ["crm_contacts"]


def household_id(line: Column, unit: Column, postcode: Column) -> Column:
    """``hh_`` + 16 hex digits of the standardised address: the same address, the same id."""
    key = F.concat_ws("|", line, F.coalesce(unit, F.lit("")), postcode)
    return F.concat(F.lit("hh_"), F.substring(F.sha2(key, 256), 1, 16))


def vendor_addresses(vendor: DataFrame) -> DataFrame:
    """``(household_id, vendor_record_id)`` of the enrichment vendor's records keyed by a postal
    address: they describe whoever lives there (income band, homeowner, children), so they
    belong to the household, not to a person."""
    keyed = vendor.where("email_sha256 IS NULL AND street IS NOT NULL AND postcode IS NOT NULL")
    return keyed.select(
        household_id(
            std.address_line(F.col("street")), std.address_unit(F.col("street")), std.postcode(F.col("postcode"))
        ).alias("household_id"),
        "vendor_record_id",
    )


def household_members(records: DataFrame, identity: DataFrame) -> DataFrame:
    """``records`` (record_id, source_table, last_name, address_line, address_unit, postcode)
    and ``identity`` (record_id, customer_id) -> ``(household_id, customer_id, last_name,
    address_line, address_unit, postcode, relationship)``."""
    preference = F.when(F.col("source_table").isin(*SOURCE_PREFERENCE), F.lit(0)).otherwise(F.lit(1))
    addressed = (
        records.where("address_line IS NOT NULL AND postcode IS NOT NULL")
        .join(identity, "record_id")
        .withColumn("_rank", F.row_number().over(Window.partitionBy("customer_id").orderBy(preference, "record_id")))
    )
    # The surname from any of the customer's named records, preferring the same order.
    surnames = (
        records.where("last_name IS NOT NULL")
        .join(identity, "record_id")
        .withColumn("_rank", F.row_number().over(Window.partitionBy("customer_id").orderBy(preference, "record_id")))
        .where("_rank = 1")
        .select("customer_id", "last_name")
    )
    members = (
        addressed.where("_rank = 1")
        .select(
            household_id(F.col("address_line"), F.col("address_unit"), F.col("postcode")).alias("household_id"),
            "customer_id",
            "address_line",
            "address_unit",
            "postcode",
        )
        .join(surnames, "customer_id", "left")
    )
    same_surname = F.count(F.lit(1)).over(Window.partitionBy("household_id", "last_name"))
    size = F.count(F.lit(1)).over(Window.partitionBy("household_id"))
    return members.withColumn(
        "relationship",
        F.when(size == 1, F.lit("only_member"))
        .when(F.col("last_name").isNotNull() & (same_surname > 1), F.lit("family"))
        .otherwise(F.lit("co_resident")),
    )


def households(members: DataFrame, vendor: DataFrame | None = None) -> DataFrame:
    """One row per household: its address, member count and the vendor records keyed by it."""
    out = members.groupBy("household_id").agg(
        F.first("address_line").alias("address_line"),
        F.first("address_unit").alias("address_unit"),
        F.first("postcode").alias("postcode"),
        F.count(F.lit(1)).alias("members"),
    )
    if vendor is None:
        return out.withColumn("vendor_record_ids", F.array().cast("array<string>"))
    attached = (
        vendor_addresses(vendor)
        .groupBy("household_id")
        .agg(F.sort_array(F.collect_list("vendor_record_id")).alias("vendor_record_ids"))
    )
    return out.join(attached, "household_id", "left").withColumn(
        "vendor_record_ids", F.coalesce("vendor_record_ids", F.array().cast("array<string>"))
    )
