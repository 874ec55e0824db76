"""Great Expectations suites for the gold tables, run as one Spark job.

Dagster runs it as the asset checks ``gold/<table>:great_expectations`` through Pipes (one
Spark process for all of them); the check on dim_customers blocks every export. On its own
it exits 1 when any table fails, so another scheduler can block exports too.

    python -m spark_jobs.quality.gold [--tables dim_customers fct_orders ...]

Besides keys, labels and value ranges, every suite checks that no column left untagged as
PII in the dbt docs (``meta: {pii: true}``) holds an email address or a phone number, and
the dim_customers suite reconciles with the identity map: every current customer id appears
exactly once.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from datetime import date
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.jobspec import Check
from spark_jobs.reporting import spark_job
from spark_jobs.settings import REPO_ROOT

log = logging.getLogger(__name__)

CHECK_NAME = "great_expectations"
MANIFEST = REPO_ROOT / "dbt" / "target" / "manifest.json"
# Pragmatic address check (what a sender accepts), not the full RFC 5322 grammar.
EMAIL_REGEX = r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
# PII found anywhere in a value: an email address, or a phone number standing on its own
# (9+ digits between spaces or the ends; not a number inside a URL path or an id). Columns
# named *_id are identifiers and skip the phone pattern.
EMBEDDED_EMAIL_REGEX = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.-]+"
EMBEDDED_PHONE_REGEX = r"(^|[\s,;:])\+?[0-9][0-9 ().-]{7,}[0-9]($|[\s,;])"
IN_IDENTITY_MAP = "_in_identity_map"
ATTRIBUTED_CONSISTENTLY = "_attributed_consistently"
UNTAGGED_PII = "_untagged_pii"


def pii_columns(model: str, manifest_path=MANIFEST) -> set[str]:
    """Columns the dbt docs tag ``meta: {pii: true}`` on ``model``."""
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    nodes = [n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["name"] == model]
    if not nodes:
        raise ValueError(f"model {model} is not in {manifest_path}; run `dbt parse` first")
    return {
        name
        for name, column in nodes[0]["columns"].items()
        if (column.get("meta") or {}).get("pii") or (column.get("config", {}).get("meta") or {}).get("pii")
    }


def with_untagged_pii(df: DataFrame, pii: set[str]) -> DataFrame:
    """Add UNTAGGED_PII: per row, which text columns not tagged PII hold an email address or
    a phone number ("notes: email, city: phone"), null when none. One expectation on it
    replaces two per column: Great Expectations runs a Spark query per expectation."""
    findings = []
    for field in df.schema.fields:
        column = field.name
        if field.dataType.simpleString() != "string" or column in pii or column.startswith("_"):
            continue
        findings.append(F.when(F.col(column).rlike(EMBEDDED_EMAIL_REGEX), F.lit(f"{column}: email")))
        if not column.endswith("_id"):
            findings.append(F.when(F.col(column).rlike(EMBEDDED_PHONE_REGEX), F.lit(f"{column}: phone")))
    found = F.concat_ws(", ", *findings) if findings else F.lit("")
    return df.withColumn(UNTAGGED_PII, F.when(found != "", found))


def no_untagged_pii() -> list:
    """The expectation on the column with_untagged_pii adds."""
    import great_expectations as gx

    return [gx.expectations.ExpectColumnValuesToBeNull(column=UNTAGGED_PII)]


def dim_customers_expectations(df: DataFrame, identity_customers: int | None) -> list:
    import great_expectations as gx

    e = gx.expectations
    expectations = [
        e.ExpectColumnValuesToNotBeNull(column="customer_id"),
        e.ExpectColumnValuesToBeUnique(column="customer_id"),
        e.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL_REGEX),
        e.ExpectColumnValuesToBeBetween(column="order_count", min_value=0),
        e.ExpectColumnValuesToBeBetween(column="total_spend", min_value=0),
    ]
    if "birth_date" in df.columns:
        expectations.append(
            e.ExpectColumnValuesToBeBetween(column="birth_date", min_value=date(1900, 1, 1), max_value=date.today())
        )
    if "email_subscription_status" in df.columns:
        expectations.append(
            e.ExpectColumnValuesToBeInSet(
                column="email_subscription_status", value_set=["subscribed", "unsubscribed", "unknown"]
            )
        )
    if identity_customers is not None:
        expectations += [
            e.ExpectTableRowCountToEqual(value=identity_customers),
            e.ExpectColumnValuesToBeInSet(column=IN_IDENTITY_MAP, value_set=[True]),
        ]
    return expectations + no_untagged_pii()


def fct_orders_expectations(df: DataFrame) -> list:
    import great_expectations as gx

    e = gx.expectations
    return [
        e.ExpectColumnValuesToNotBeNull(column="order_id"),
        e.ExpectColumnValuesToBeUnique(column="order_id"),
        e.ExpectColumnValuesToNotBeNull(column="total_amount"),  # converted: a rate was found
        e.ExpectColumnValuesToBeBetween(column="total_amount", min_value=0),
        e.ExpectColumnValuesToNotBeNull(column="reporting_currency"),
        e.ExpectColumnValuesToBeInSet(column="channel", value_set=["web", "app", "store"]),
        e.ExpectColumnValuesToBeInSet(column="original_currency", value_set=["GBP", "EUR", "USD"]),
        *no_untagged_pii(),
    ]


def with_attribution_flag(touchpoints: DataFrame) -> DataFrame:
    """Flag whether a touchpoint has a customer exactly when it says how it was attributed."""
    return touchpoints.withColumn(
        ATTRIBUTED_CONSISTENTLY, F.col("customer_id").isNull() == F.col("attributed_by").isNull()
    )


def fct_customer_touchpoints_expectations(df: DataFrame) -> list:
    """``df``: the touchpoints with_attribution_flag. customer_id may be null (activity nobody
    can be attributed yet), but then attributed_by is null too, and the other way round."""
    import great_expectations as gx

    e = gx.expectations
    return [
        e.ExpectColumnValuesToNotBeNull(column="touchpoint_id"),
        e.ExpectColumnValuesToBeUnique(column="touchpoint_id"),
        e.ExpectColumnValuesToBeInSet(column=ATTRIBUTED_CONSISTENTLY, value_set=[True]),
        e.ExpectColumnValuesToBeInSet(
            column="attributed_by", value_set=["identity_map", "login", "email", "anonymous_id"]
        ),
        e.ExpectColumnValuesToBeInSet(
            column="channel", value_set=["web", "app", "email", "store", "support", "survey", "social"]
        ),
        *no_untagged_pii(),
    ]


def customer_traits_expectations(df: DataFrame) -> list:
    """Traits activation and segments read: scores in their ranges, labels in their sets."""
    import great_expectations as gx

    e = gx.expectations
    scores = [
        e.ExpectColumnValuesToBeBetween(column=column, min_value=1, max_value=5)
        for column in ("recency_score", "frequency_score", "monetary_score")
    ]
    return [
        e.ExpectColumnValuesToNotBeNull(column="customer_id"),
        e.ExpectColumnValuesToBeUnique(column="customer_id"),
        *scores,
        e.ExpectColumnValuesToBeBetween(column="purchase_count", min_value=0),
        e.ExpectColumnValuesToBeBetween(column="lifetime_value_to_date", min_value=0),
        e.ExpectColumnValuesToBeBetween(column="churn_risk", min_value=0, max_value=1),
        e.ExpectColumnValuesToBeBetween(column="average_social_sentiment", min_value=-1, max_value=1),
        e.ExpectColumnValuesToBeInSet(column="latest_nps_category", value_set=["promoter", "passive", "detractor"]),
        e.ExpectColumnValuesToBeInSet(column="social_sentiment", value_set=["positive", "neutral", "negative"]),
        *no_untagged_pii(),
    ]


def validate(df: DataFrame, expectations: list, name: str = "table") -> tuple[bool, dict[str, Any]]:
    """Validate a DataFrame against ``expectations``; (passed, per-expectation summary)."""
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    suite = gx.ExpectationSuite(name=name)
    for expectation in expectations:
        suite.add_expectation(expectation)
    batch_definition = (
        context.data_sources.add_spark(name="lakehouse")
        .add_dataframe_asset(name=name)
        .add_batch_definition_whole_dataframe("whole_table")
    )
    result = batch_definition.get_batch(batch_parameters={"dataframe": df}).validate(suite)
    summary: dict[str, Any] = {"evaluated_expectations": len(result.results)}
    failed = []
    for expectation_result in result.results:
        config = expectation_result.expectation_config
        label = f"{config.type}({config.kwargs.get('column', '')})"
        if not expectation_result.success:
            details = expectation_result.result or {}
            failed.append(label)
            summary[label] = {
                "unexpected_count": details.get("unexpected_count"),
                "observed_value": str(details.get("observed_value")) if "observed_value" in details else None,
                "partial_unexpected_list": [str(v) for v in (details.get("partial_unexpected_list") or [])[:5]],
            }
    summary["failed_expectations"] = failed
    return bool(result.success), summary


IDENTITY_MAP_RESOLVED = "intermediate.int_identity_map_resolved"


def current_identity_customers(spark: SparkSession) -> DataFrame:
    """Distinct customer ids carrying a source record today (the dbt view that resolves
    silver.identity_map through the id lineage)."""
    return spark.table(IDENTITY_MAP_RESOLVED).select("customer_id").distinct()


def dim_customers_batch(spark: SparkSession) -> tuple[DataFrame, list]:
    table = spark.table("gold.dim_customers")
    identity = current_identity_customers(spark).withColumn(IN_IDENTITY_MAP, F.lit(True)).localCheckpoint()
    df = table.join(identity, "customer_id", "left").withColumn(
        IN_IDENTITY_MAP, F.coalesce(IN_IDENTITY_MAP, F.lit(False))
    )
    return df, dim_customers_expectations(df, identity.count())


def plain_batch(
    table: str, expectations: Callable[[DataFrame], list], prepare: Callable[[DataFrame], DataFrame] = lambda df: df
) -> Callable[[SparkSession], tuple[DataFrame, list]]:
    def batch(spark: SparkSession) -> tuple[DataFrame, list]:
        df = prepare(spark.table(f"gold.{table}"))
        return df, expectations(df)

    return batch


# Suite name (the gold table) -> spark -> (the DataFrame to validate, its expectations).
SUITES: dict[str, Callable[[SparkSession], tuple[DataFrame, list]]] = {
    "dim_customers": dim_customers_batch,
    "fct_orders": plain_batch("fct_orders", fct_orders_expectations),
    "fct_customer_touchpoints": plain_batch(
        "fct_customer_touchpoints", fct_customer_touchpoints_expectations, with_attribution_flag
    ),
    "customer_traits": plain_batch("customer_traits", customer_traits_expectations),
}


# The Dagster asset check each suite reports as (dim_customers blocks the exports downstream).
SUITE_CHECKS = {
    table: Check(CHECK_NAME, f"gold/{table}", text, blocking)
    for table, (text, blocking) in {
        "dim_customers": ("key, email format, value ranges, one row per identity-map customer, no untagged PII", True),
        "fct_orders": ("key, non-negative amounts, channel and currency labels, no untagged PII", False),
        "fct_customer_touchpoints": ("key, attributed customer, channel labels, no untagged PII", False),
        "customer_traits": (
            "key, RFM scores 1-5, churn risk 0-1, sentiment -1..1, NPS and sentiment labels, no untagged PII",
            False,
        ),
    }.items()
}
assert set(SUITE_CHECKS) == set(SUITES)


def suite_batch(spark: SparkSession, name: str, pii: set[str] | None = None) -> tuple[DataFrame, list]:
    """The table to validate, with the PII finding column, and its expectations. ``pii``: the
    table's PII columns (default: from the local dbt manifest)."""
    df, expectations = SUITES[name](spark)
    return with_untagged_pii(df, pii_columns(name) if pii is None else pii), expectations


def pii_arguments(tables: list[str], manifest_path=MANIFEST) -> list[str]:
    """``--pii TABLE=COL,COL`` for each table, from the dbt manifest: what the orchestrator (which
    has the manifest) hands the job, since a cluster's driver has no dbt project."""
    return [arg for t in tables for arg in ("--pii", f"{t}={','.join(sorted(pii_columns(t, manifest_path)))}")]


def pii_by_table(values: list[str]) -> dict[str, set[str]]:
    by_table = {}
    for value in values:
        table, sep, columns = value.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--pii {value!r}: expected TABLE=COL,COL")
        by_table[table] = {c for c in columns.split(",") if c}
    return by_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Validate the gold tables with Great Expectations.")
    tables = sorted(SUITES)
    parser.add_argument("--tables", nargs="+", choices=tables, default=tables)
    parser.add_argument(
        "--pii",
        action="append",
        default=[],
        metavar="TABLE=COL,COL",
        help="a table's PII columns (the dbt docs' meta.pii; Dagster passes them); "
        "a table without it reads them from dbt/target/manifest.json",
    )
    args = parser.parse_args(argv)
    pii = pii_by_table(args.pii)
    all_passed = True
    with spark_job("cdp-quality-gold") as (spark, _, reporter):
        for name in args.tables:
            df, expectations = suite_batch(spark, name, pii.get(name))
            passed, summary = validate(df, expectations, name)
            reporter.checked(f"gold/{name}", CHECK_NAME, passed, {"table": f"gold.{name}", **summary})
            all_passed &= passed
    return 0 if all_passed or reporter.to_dagster else 1


if __name__ == "__main__":
    raise SystemExit(main())
