"""The whole main job with the landing zone and the lakehouse on S3 (the local S3-compatible
server stands in for AWS S3): ``CDP_LANDING_URL`` and ``CDP_LAKEHOUSE_URL`` are ``s3a://``
prefixes, so every Delta table, the dbt models included, lives in the object store and no
lakehouse folder exists on local disk. The gold tables are read back through S3 with an
independent Delta reader (delta-rs) and must hold what the landing files say, computed as in
the local e2e test.
"""

from __future__ import annotations

import os

import boto3
import pytest
from conftest import report_failure

from devstack.runner import local_stack, run_main_job
from devstack.s3_server import LOCAL_CREDENTIALS
from e2e.test_pipeline import CUSTOMERS, SEED, checks_but_dbt_tests, expected_customers, failed_steps, materialized
from spark_jobs.service import Service
from spark_jobs.settings import Settings

# A module of its own, in an xdist group of its own: it runs beside the local e2e module.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-s3")]

LAKEHOUSE_URL = "s3a://cdp-lakehouse/warehouse"
LANDING_URL = "s3a://cdp-landing/deliveries"


@pytest.fixture(scope="module")
def s3_run(tmp_path_factory):
    """(result, home, the local S3 server's endpoint, its data): the main job run once. The
    local S3 server stops with the run, so its objects are read here, while it is up."""
    home = tmp_path_factory.mktemp("e2e-s3-home")
    environ = {
        **os.environ,
        "CDP_HOME": str(home),
        "CDP_LOCAL_S3": "true",
        "CDP_LOCAL_S3_PORT": "0",
        "CDP_CONNECT_PORT": "0",
        "CDP_SQL_PORT": "0",
        "CDP_SPARK_SHUFFLE_PARTITIONS": "2",
        "CDP_LAKEHOUSE_URL": LAKEHOUSE_URL,
        "CDP_LANDING_URL": LANDING_URL,
    }
    try:
        with local_stack(environ) as settings:
            # dbt's tests ran on the same models in the local e2e; here the GE gates run.
            result = run_main_job(CUSTOMERS, SEED, asset_check_selection=checks_but_dbt_tests())
            if not result.success:
                report_failure("pipeline run on S3", failed_steps(result))
            yield result, home, read_back(settings.s3_endpoint_url)
    finally:
        Service(Settings.from_env({"CDP_HOME": str(home)})).stop()


def read_back(endpoint: str) -> dict:
    """What S3 holds after the run: the keys of both buckets, and every gold and silver table
    read with delta-rs through the S3 API."""
    from deltalake import DeltaTable

    s3 = boto3.client("s3", endpoint_url=endpoint)
    keys = {}
    for bucket in ("cdp-lakehouse", "cdp-landing"):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        keys[bucket] = [item["Key"] for page in pages for item in page.get("Contents", [])]
    options = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "AWS_REGION": LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
        "AWS_ALLOW_HTTP": "true",
    }
    tables = sorted(
        {"/".join(key.split("/")[1:3]) for key in keys["cdp-lakehouse"] if "/_delta_log/" in key},
    )
    read = {
        table: DeltaTable(f"s3://cdp-lakehouse/warehouse/{table}", storage_options=options).to_pyarrow_table()
        for table in tables
        if table.split("/")[0] in ("gold.db", "silver.db", "bronze.db")
    }
    return {"keys": keys, "tables": read}


def test_the_whole_job_runs_with_landing_and_lakehouse_on_s3(s3_run):
    result, home, _ = s3_run
    assert result.success, failed_steps(result)
    assert {"bronze/crm_contacts", "silver/identity_map", "gold/dim_customers", "activation/s3_repeat_buyers"} <= (
        materialized(result)
    )
    checks = {(c.asset_check_key.to_user_string(), c.passed) for c in result.get_asset_check_evaluations()}
    assert ("gold/dim_customers:great_expectations", True) in checks
    assert not (home / "lakehouse").exists(), "a lakehouse folder on local disk"


def test_every_table_is_a_delta_table_on_s3_and_ingestion_read_the_s3_landing_zone(s3_run):
    _, home, s3 = s3_run
    tables = s3["tables"]
    assert len([t for t in tables if t.startswith("gold.db/")]) >= 18
    for layer, table in (("bronze.db", "crm_contacts"), ("silver.db", "identity_map"), ("gold.db", "fct_orders")):
        assert tables[f"{layer}/{table}"].num_rows > 0, table
    delivered = {key for key in s3["keys"]["cdp-landing"] if key.startswith("deliveries/")}
    local = {f"deliveries/{p.relative_to(home / 'landing').as_posix()}" for p in (home / "landing").rglob("*.*")}
    assert delivered == local, "the sample's deliveries are in the S3 landing zone"
    processed = tables["bronze.db/_processed_files"].to_pylist()
    assert processed and all(row["file_path"].startswith(f"{LANDING_URL}/") for row in processed)
    assert {row["file_path"].removeprefix("s3a://cdp-landing/") for row in processed} <= delivered


def test_gold_read_back_through_s3_holds_what_the_landing_files_say(s3_run):
    _, home, s3 = s3_run
    identity = {
        (row["source_table"], row["source_record_id"]): row["customer_id"]
        for row in s3["tables"]["silver.db/identity_map"].to_pylist()
    }
    expected = expected_customers(home / "landing", identity)
    gold = s3["tables"]["gold.db/dim_customers"].to_pylist()
    actual = {row["customer_id"]: (row["order_count"], row["total_spend"]) for row in gold}
    assert len(gold) == len(actual), "one row per customer"
    assert actual == expected
