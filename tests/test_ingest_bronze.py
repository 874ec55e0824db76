import json
from urllib.parse import urlparse
from datetime import datetime

from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from conftest import write_lines
from spark_jobs.ingest.bronze import (
    INGESTION_LOG_TABLE, QUARANTINE_TABLE, ingest_entity, latest_per_key, read_landing, split_valid,
)
from spark_jobs.ingest.sources import CRM_CONTACTS, SHOP_ORDERS

CONTACT_HEADER = "contact_id,first_name,last_name,email,phone,city,country,created_at,updated_at"


def _order(order_id, email="a@x.com", ts="2025-01-01T10:00:00Z", amount=10.0, status="completed"):
    return json.dumps({"order_id": order_id, "crm_contact_id": None, "customer_email": email,
                       "order_ts": ts, "currency": "GBP", "total_amount": amount, "status": status})


def test_malformed_rows_are_quarantined_with_a_reason_and_counts_reconcile(spark, tmp_path):
    path = write_lines(tmp_path / "shop" / "orders" / "orders_1.jsonl", [
        _order("O1"),
        "{this is not json",
        json.dumps({"order_id": None, "customer_email": "b@x.com"}),
        json.dumps({"order_id": "O4", "order_ts": "not a timestamp"}),
    ])
    parsed = read_landing(spark, SHOP_ORDERS, [path]).cache()
    accepted, quarantined = split_valid(parsed, SHOP_ORDERS)

    assert parsed.count() == 4
    assert [r.order_id for r in accepted.collect()] == ["O1"]
    reasons = sorted((r.reason, r.raw_record) for r in quarantined.collect())
    schema_reason = "row does not match the declared json schema of shop_orders"
    assert reasons == sorted([
        (schema_reason, "{this is not json"),
        (schema_reason, json.dumps({"order_id": "O4", "order_ts": "not a timestamp"})),
        ("missing primary key column order_id", '{"customer_email":"b@x.com"}'),
    ])
    assert {urlparse(r.source_file).path for r in quarantined.collect()} == {str(path)}


def test_latest_per_key_keeps_the_newest_version(spark):
    df = spark.createDataFrame([
        Row(contact_id="C1", email="old@x.com", updated_at=datetime(2025, 1, 1), _source_file="f2"),
        Row(contact_id="C1", email="new@x.com", updated_at=datetime(2025, 3, 1), _source_file="f1"),
        Row(contact_id="C2", email="c2@x.com", updated_at=datetime(2025, 1, 1), _source_file="f1"),
    ])
    assertDataFrameEqual(
        latest_per_key(df, CRM_CONTACTS).select("contact_id", "email"),
        spark.createDataFrame([Row(contact_id="C1", email="new@x.com"), Row(contact_id="C2", email="c2@x.com")]),
    )


def test_rerun_adds_nothing_and_a_later_correction_updates_only_its_row(fresh_database, tmp_path):
    spark = fresh_database
    landing = tmp_path / "landing"
    write_lines(landing / "crm" / "contacts" / "contacts_1.csv", [
        CONTACT_HEADER,
        "C1,Ann,Lee,ann@x.com,,London,GB,2024-01-01T00:00:00Z,2024-01-02T00:00:00Z",
        "C2,Bob,Ray,bob@x.com,,Paris,FR,2024-01-01T00:00:00Z,2024-01-02T00:00:00Z",
        ",No,Key,nokey@x.com,,Paris,FR,2024-01-01T00:00:00Z,2024-01-02T00:00:00Z",
    ])

    first = ingest_entity(spark, CRM_CONTACTS, landing, "b1")
    assert (first.received, first.accepted, first.quarantined, first.inserted, first.updated) == (3, 2, 1, 2, 0)

    second = ingest_entity(spark, CRM_CONTACTS, landing, "b2")
    assert (second.received, second.accepted, second.quarantined, second.inserted, second.updated) == (3, 2, 1, 0, 0)
    assert spark.table(QUARANTINE_TABLE).count() == 1, "the same bad row must not be quarantined twice"

    # Bob moves; a late, stale copy of Ann's old record must not overwrite anything.
    write_lines(landing / "crm" / "contacts" / "contacts_2.csv", [
        CONTACT_HEADER,
        "C2,Bob,Ray,bob@x.com,,Berlin,DE,2024-01-01T00:00:00Z,2024-06-01T00:00:00Z",
    ])
    third = ingest_entity(spark, CRM_CONTACTS, landing, "b3")
    assert (third.inserted, third.updated) == (0, 1)

    assertDataFrameEqual(
        spark.table("bronze.crm_contacts").select("contact_id", "city", "_batch_id"),
        spark.createDataFrame([Row(contact_id="C1", city="London", _batch_id="b1"),
                               Row(contact_id="C2", city="Berlin", _batch_id="b3")]),
    )
    log = spark.table(INGESTION_LOG_TABLE).where("entity = 'crm_contacts'")
    assert sorted((r.batch_id, r.received, r.accepted, r.quarantined) for r in log.collect()) == [
        ("b1", 3, 2, 1), ("b2", 3, 2, 1), ("b3", 4, 3, 1),
    ]


def test_stale_redelivery_does_not_overwrite_newer_row(fresh_database, tmp_path):
    spark = fresh_database
    landing = tmp_path / "landing"
    write_lines(landing / "shop" / "orders" / "orders_1.jsonl", [_order("O1", ts="2025-02-01T00:00:00Z", status="refunded")])
    ingest_entity(spark, SHOP_ORDERS, landing, "b1")
    write_lines(landing / "shop" / "orders" / "orders_0.jsonl", [_order("O1", ts="2025-01-01T00:00:00Z", status="completed")])
    stats = ingest_entity(spark, SHOP_ORDERS, landing, "b2")
    assert (stats.inserted, stats.updated) == (0, 0)
    assert [r.status for r in spark.table("bronze.shop_orders").collect()] == ["refunded"]
