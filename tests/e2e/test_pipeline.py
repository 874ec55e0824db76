"""The whole Dagster job on a small generated data set, as `./cdp run` runs it.

The expected gold values are computed here in plain Python from the landing files and the
generator's hidden truth, independently of the pipeline's Spark and SQL code.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from dagster_project.local.runner import local_stack, run_main_job
from spark_jobs.activation.s3_export import audience_key

pytestmark = pytest.mark.e2e

CUSTOMERS, SEED = 60, 11


def expected_customers(landing: Path, truth_file: Path) -> dict[str, tuple[int, Decimal]]:
    """email -> (completed orders, spend) per real person, from the raw files and the truth."""
    person_of = {(r["source_table"], r["source_record_id"]): r["person_id"]
                 for r in csv.DictReader(truth_file.open(encoding="utf-8"))}
    email_of, orders, spend = {}, defaultdict(int), defaultdict(Decimal)
    for path in sorted((landing / "crm" / "contacts").glob("*.csv")):
        for row in csv.DictReader(path.open(encoding="utf-8")):
            email_of.setdefault(person_of[("crm_contacts", row["contact_id"])], row["email"].strip().lower())
    for line in (landing / "shop" / "orders" / "orders_0001.jsonl").open(encoding="utf-8"):
        order = json.loads(line)
        person = person_of[("shop_orders", order["order_id"])]
        email_of.setdefault(person, order["customer_email"].strip().lower())
        if order["status"] == "completed":
            orders[person] += 1
            spend[person] += Decimal(str(order["total_amount"]))
    return {email: (orders[p], spend[p].quantize(Decimal("0.01"))) for p, email in email_of.items()}


def run_pipeline(home: Path):
    """Run the main job with its own CDP_HOME and local S3; return (result, exported CSV or None)."""
    environ = {**os.environ, "CDP_HOME": str(home), "CDP_LOCAL_S3": "true", "CDP_LOCAL_S3_PORT": "0"}
    with local_stack(environ) as settings:
        result = run_main_job(CUSTOMERS, SEED)
        import boto3

        client = boto3.client("s3", endpoint_url=settings.s3_endpoint_url)
        listing = client.list_objects_v2(Bucket=settings.export_bucket).get("Contents", [])
        key = audience_key(settings, "repeat_buyers")
        body = (client.get_object(Bucket=settings.export_bucket, Key=key)["Body"].read().decode()
                if any(o["Key"] == key for o in listing) else None)
    return result, body


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e-home")


@pytest.fixture(scope="module")
def first_run(home):
    return run_pipeline(home)


def test_main_job_builds_gold_and_exports_the_audience(first_run, home, spark):
    result, body = first_run
    assert result.success
    assert {"bronze/crm_contacts", "bronze/shop_orders", "silver/identity_map", "gold/dim_customers",
            "gold/sync_s3__repeat_buyers", "activation/s3_repeat_buyers"} <= materialized(result)
    checks = {(c.asset_check_key.to_user_string(), c.passed) for c in result.get_asset_check_evaluations()}
    assert ("gold/dim_customers:great_expectations", True) in checks

    expected = expected_customers(home / "landing", home / "truth" / "source_records.csv")
    # Read the gold Delta table by path with another Spark session (no shared metastore needed).
    gold = spark.read.format("delta").load(str(home / "lakehouse" / "gold.db" / "dim_customers"))
    actual = {r.email: (r.order_count, r.total_spend) for r in gold.collect()}
    assert gold.count() == len(expected), "one row per real person"
    assert actual == expected

    rows = list(csv.DictReader(io.StringIO(body)))
    expected_audience = {email for email, (orders, _) in expected.items() if orders >= 2}
    assert {r["email"] for r in rows} == expected_audience
    assert all(Decimal(r["total_spend"]) == expected[r["email"]][1] for r in rows)
    assert [r["customer_id"] for r in rows] == sorted(r["customer_id"] for r in rows)


def test_failing_quality_check_blocks_the_export(first_run, home):
    _, exported_before = first_run
    (home / "landing" / "crm" / "contacts" / "contacts_9999.csv").write_text(
        "contact_id,first_name,last_name,email,phone,city,country,created_at,updated_at\n"
        "C9999999,Mal,Formed,not-an-email,,London,GB,2025-01-01T00:00:00Z,2025-01-02T00:00:00Z\n",
        encoding="utf-8",
    )

    result, exported_after = run_pipeline(home)

    evaluations = {c.asset_check_key.to_user_string(): c for c in result.get_asset_check_evaluations()}
    ge = evaluations["gold/dim_customers:great_expectations"]
    assert not ge.passed
    assert ge.metadata["failed_expectations"].value == ["expect_column_values_to_match_regex(email)"]
    assert "gold/dim_customers" in materialized(result), "the bad row did reach gold..."
    assert "activation/s3_repeat_buyers" not in materialized(result), "...but must not be exported"
    assert not result.success
    assert exported_after == exported_before
