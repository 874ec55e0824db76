"""Great Expectations suite for gold.dim_customers, run as a Spark job.

Dagster runs it as the blocking asset check ``gold/dim_customers:great_expectations`` through
Pipes; on its own it exits 1 when the data fails, so a scheduler can block exports too.

    python -m spark_jobs.quality.dim_customers
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from pyspark.sql import DataFrame

from spark_jobs.reporting import spark_job

log = logging.getLogger(__name__)

TABLE = "gold.dim_customers"
ASSET_KEY = "gold/dim_customers"
CHECK_NAME = "great_expectations"
# Pragmatic address check (what a sender accepts), not the full RFC 5322 grammar.
EMAIL_REGEX = r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"


def build_suite():
    import great_expectations as gx

    suite = gx.ExpectationSuite(name="dim_customers")
    suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column="customer_id"))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeUnique(column="customer_id"))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL_REGEX))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column="order_count", min_value=0))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column="total_spend", min_value=0))
    return suite


def validate(df: DataFrame) -> tuple[bool, dict[str, Any]]:
    """Validate a DataFrame against the suite; (passed, per-expectation summary)."""
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    batch_definition = (
        context.data_sources.add_spark(name="lakehouse")
        .add_dataframe_asset(name="dim_customers")
        .add_batch_definition_whole_dataframe("whole_table")
    )
    result = batch_definition.get_batch(batch_parameters={"dataframe": df}).validate(build_suite())
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
                "partial_unexpected_list": [str(v) for v in (details.get("partial_unexpected_list") or [])[:5]],
            }
    summary["failed_expectations"] = failed
    return bool(result.success), summary


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description="Validate gold.dim_customers with Great Expectations.").parse_args(argv)
    with spark_job("cdp-quality-dim-customers") as (spark, _, reporter):
        passed, summary = validate(spark.table(TABLE))
        reporter.checked(ASSET_KEY, CHECK_NAME, passed, {"table": TABLE, **summary})
    return 0 if passed or reporter.to_dagster else 1


if __name__ == "__main__":
    raise SystemExit(main())
