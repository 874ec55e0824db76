"""The ingestion job on small landing zones written inline: replay, CDC order, drift, bad files."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from conftest import write_lines
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spark_jobs.ingest.bronze import (
    INGESTION_LOG_TABLE,
    PROCESSED_FILES_TABLE,
    QUARANTINE_TABLE,
    freshness,
    ingest_contract,
    reconciliation,
)
from spark_jobs.ingest.contracts import get_contract

CRM_HEADER = (
    "op,change_ts,contact_id,first_name,last_name,email,phone,birth_date,street,city,postcode,country,"
    "loyalty_card_id,created_at"
)


def crm(op, ts, contact_id, city="London", email=None):
    email = email or f"{contact_id.lower()}@x.com"
    return f"{op},{ts},{contact_id},Ann,Lee,{email},,1990-01-02,1 High St,{city},N1 1AA,GB,,2024-01-01T00:00:00Z"


def web_event(event_id, ts="2026-01-02T10:00:00Z", **extra):
    return json.dumps(
        {
            "event_id": event_id,
            "anonymous_id": "a1",
            "event_type": "page_view",
            "platform": "web",
            "event_ts": ts,
            **extra,
        }
    )


def ingest(spark, name: str, landing: Path, batch: str):
    return ingest_contract(spark, get_contract(name), landing.as_uri(), batch)


def counts(stats):
    return (
        stats.files,
        stats.failed_files,
        stats.received,
        stats.accepted,
        stats.quarantined,
        stats.inserted,
        stats.updated,
    )


def test_rerun_reads_nothing_and_redelivered_rows_are_not_duplicated(fresh_database, tmp_path):
    spark, landing = fresh_database, tmp_path / "landing"
    events = landing / "web" / "events"
    write_lines(events / "2026-01-02" / "part-1.jsonl", [web_event("E1"), web_event("E2"), "{oops"])

    first = ingest(spark, "web_events", landing, "b1")
    assert counts(first) == (1, 0, 3, 2, 1, 2, 0)
    assert counts(ingest(spark, "web_events", landing, "b2")) == (0, 0, 0, 0, 0, 0, 0)

    # The vendor re-sends E2 in a new file along with a new event.
    write_lines(events / "2026-01-03" / "part-1.jsonl", [web_event("E2"), web_event("E3", "2026-01-03T01:00:00Z")])
    third = ingest(spark, "web_events", landing, "b3")
    assert counts(third) == (1, 0, 2, 2, 0, 1, 0)
    assertDataFrameEqual(
        spark.table("bronze.web_events").select("event_id", "event_date", "_batch_id"),
        [
            Row(event_id="E1", event_date=date(2026, 1, 2), _batch_id="b1"),
            Row(event_id="E2", event_date=date(2026, 1, 2), _batch_id="b1"),
            Row(event_id="E3", event_date=date(2026, 1, 3), _batch_id="b3"),
        ],
    )
    assert spark.sql("DESCRIBE DETAIL bronze.web_events").first().partitionColumns == ["event_date"]
    quarantine = spark.table(QUARANTINE_TABLE).collect()
    assert [(q.entity, q.raw_record, q.reason) for q in quarantine] == [
        ("web_events", "{oops", "unparseable jsonl record")
    ]
    log = spark.table(INGESTION_LOG_TABLE).where("entity = 'web_events'").orderBy("batch_id")
    assert [(r.received, r.accepted, r.quarantined) for r in log.collect()] == [(3, 2, 1), (0, 0, 0), (2, 2, 0)]


def test_a_file_sent_again_under_its_name_with_other_bad_rows_reconciles_and_keeps_both(fresh_database, tmp_path):
    """A vendor re-sends a day's file under the same name, with other content: its batch's
    rejected rows are counted apart from the first delivery's, which stay in quarantine."""
    spark, landing = fresh_database, tmp_path / "landing"
    part = landing / "web" / "events" / "2026-01-02" / "part-1.jsonl"
    write_lines(part, [web_event("E1"), "{first oops"])
    first = ingest(spark, "web_events", landing, "b1")
    write_lines(part, [web_event("E1"), web_event("E2"), "{second oops"])
    os.utime(part, (part.stat().st_mtime + 60,) * 2)  # a new delivery, whatever the clock's resolution
    second = ingest(spark, "web_events", landing, "b2")

    assert (counts(first)[:5], counts(second)[:5]) == ((1, 0, 2, 1, 1), (1, 0, 3, 2, 1))
    assert reconciliation(spark, first)[0] and reconciliation(spark, second) == (
        True,
        {"received": 3, "accepted": 2, "quarantined": 1, "erased": 0, "quarantine_rows_stored": 1, "failed_files": 0},
    )
    stored = spark.table(QUARANTINE_TABLE).select("raw_record", "batch_id").orderBy("batch_id").collect()
    assert [tuple(r) for r in stored] == [("{first oops", "b1"), ("{second oops", "b2")]


def test_cdc_latest_change_wins_whatever_file_it_came_in(fresh_database, tmp_path):
    spark, contacts = fresh_database, tmp_path / "landing" / "crm" / "contacts"
    # The update (t2) arrives in an earlier delivery than the insert (t1).
    write_lines(contacts / "2026-01-01" / "changes.csv", [CRM_HEADER, crm("U", "2026-01-01T02:00:00Z", "C1", "Paris")])
    write_lines(
        contacts / "2026-01-02" / "changes.csv",
        [CRM_HEADER, crm("I", "2026-01-01T01:00:00Z", "C1", "London"), crm("I", "2026-01-01T01:00:00Z", "C2", "Leeds")],
    )
    ingest(spark, "crm_contacts", tmp_path / "landing", "b1")
    assertDataFrameEqual(
        spark.table("bronze.crm_contacts").select("contact_id", "city", "op", "_is_deleted"),
        [
            Row(contact_id="C1", city="Paris", op="U", _is_deleted=False),
            Row(contact_id="C2", city="Leeds", op="I", _is_deleted=False),
        ],
    )

    # And across batches: a late, older update does not overwrite the newer one.
    write_lines(contacts / "2026-01-03" / "changes.csv", [CRM_HEADER, crm("U", "2026-01-01T01:30:00Z", "C1", "Rome")])
    stats = ingest(spark, "crm_contacts", tmp_path / "landing", "b2")
    assert (stats.inserted, stats.updated) == (0, 0)
    assert spark.table("bronze.crm_contacts").where("contact_id = 'C1'").first().city == "Paris"

    # The history keeps every change delivered, the late one too, and a re-delivery adds nothing.
    write_lines(contacts / "2026-01-04" / "resent.csv", [CRM_HEADER, crm("I", "2026-01-01T01:00:00Z", "C1", "London")])
    ingest(spark, "crm_contacts", tmp_path / "landing", "b3")
    history = spark.table("bronze.crm_contacts_history")
    assert sorted((r.contact_id, r.op, r.city, r._batch_id) for r in history.collect()) == [
        ("C1", "I", "London", "b1"),
        ("C1", "U", "Paris", "b1"),
        ("C1", "U", "Rome", "b2"),
        ("C2", "I", "Leeds", "b1"),
    ]


def test_delete_is_honoured_and_neither_a_late_update_nor_a_replay_resurrects(fresh_database, tmp_path):
    spark, landing = fresh_database, tmp_path / "landing"
    contacts = landing / "crm" / "contacts"
    write_lines(contacts / "d1" / "a.csv", [CRM_HEADER, crm("I", "2026-01-01T01:00:00Z", "C1")])
    ingest(spark, "crm_contacts", landing, "b1")
    write_lines(contacts / "d2" / "a.csv", [CRM_HEADER, crm("D", "2026-01-03T00:00:00Z", "C1")])
    ingest(spark, "crm_contacts", landing, "b2")
    # late update (older than the delete) and a replay of the original insert
    write_lines(
        contacts / "d3" / "a.csv",
        [CRM_HEADER, crm("U", "2026-01-02T00:00:00Z", "C1", "Oslo"), crm("I", "2026-01-01T01:00:00Z", "C1")],
    )
    stats = ingest(spark, "crm_contacts", landing, "b3")
    assert (stats.inserted, stats.updated) == (0, 0)
    # a delete of a key never seen leaves a tombstone, so its late insert stays deleted too
    write_lines(contacts / "d4" / "a.csv", [CRM_HEADER, crm("D", "2026-01-05T00:00:00Z", "C9")])
    write_lines(contacts / "d5" / "a.csv", [CRM_HEADER, crm("I", "2026-01-04T00:00:00Z", "C9")])
    ingest(spark, "crm_contacts", landing, "b4")
    assertDataFrameEqual(
        spark.table("bronze.crm_contacts").select("contact_id", "op", "city", "_is_deleted"),
        [
            Row(contact_id="C1", op="D", city="London", _is_deleted=True),
            Row(contact_id="C9", op="D", city="London", _is_deleted=True),
        ],
    )


def test_a_new_optional_column_is_added_and_reported(fresh_database, tmp_path):
    spark, landing = fresh_database, tmp_path / "landing"
    write_lines(landing / "web" / "events" / "2026-01-02" / "a.jsonl", [web_event("E1")])
    assert ingest(spark, "web_events", landing, "b1").new_columns == ""
    write_lines(landing / "web" / "events" / "2026-01-03" / "b.jsonl", [web_event("E2", consent_version="v2")])
    stats = ingest(spark, "web_events", landing, "b2")
    assert stats.new_columns == "consent_version"
    assertDataFrameEqual(
        spark.table("bronze.web_events").select("event_id", "consent_version"),
        [Row(event_id="E1", consent_version=None), Row(event_id="E2", consent_version="v2")],
    )


def test_a_removed_required_column_fails_the_file_with_a_clear_error(fresh_database, tmp_path):
    spark, landing = fresh_database, tmp_path / "landing"
    contacts = landing / "crm" / "contacts"
    write_lines(contacts / "good.csv", [CRM_HEADER, crm("I", "2026-01-01T01:00:00Z", "C1")])
    write_lines(
        contacts / "no_op.csv",
        [CRM_HEADER.replace("op,", "", 1), crm("I", "2026-01-01T01:00:00Z", "C2").split(",", 1)[1]],
    )
    stats = ingest(spark, "crm_contacts", landing, "b1")
    assert counts(stats) == (1, 1, 1, 1, 0, 1, 0)
    failed = spark.table(PROCESSED_FILES_TABLE).where("status = 'failed'").collect()
    assert [Path(f.file_path).name for f in failed] == ["no_op.csv"]
    assert failed[0].error.startswith("contract violation: required column(s) ['op'] missing from the header")


def test_unreadable_and_wrong_format_files_fail_alone_and_the_rest_loads(fresh_database, tmp_path):
    spark, landing = fresh_database, tmp_path / "landing"
    events = landing / "web" / "events" / "2026-01-02"
    good = gzip.compress(("\n".join(web_event(f"E{i}", extra="x" * 40) for i in range(3000)) + "\n").encode())
    events.mkdir(parents=True)
    (events / "good.jsonl.gz").write_bytes(good)
    (events / "truncated.jsonl.gz").write_bytes(good[: len(good) // 2])
    (events / "picture.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    write_lines(events / "mixed.jsonl", [web_event("M1"), "not json", web_event("M2", event_type="teleport")])

    stats = ingest(spark, "web_events", landing, "b1")
    assert counts(stats)[:5] == (2, 2, 3003, 3001, 2)
    files = {Path(r.file_path).name: r for r in spark.table(PROCESSED_FILES_TABLE).collect()}
    assert files["truncated.jsonl.gz"].status == "failed"
    assert files["truncated.jsonl.gz"].error.startswith("unreadable file:")
    assert files["picture.jsonl"].status == "failed"
    assert "wrong format" in files["picture.jsonl"].error
    assert (files["mixed.jsonl"].received, files["mixed.jsonl"].accepted, files["mixed.jsonl"].quarantined) == (3, 1, 2)
    assert spark.table("bronze.web_events").count() == 3001
    reasons = sorted(r.reason for r in spark.table(QUARANTINE_TABLE).collect())
    assert reasons == [
        "column event_type: 'teleport' is not one of ['page_view', 'product_view', 'search', "
        "'add_to_cart', 'checkout', 'purchase', 'login', 'app_open']",
        "unparseable jsonl record",
    ]
    # failed files are not retried until they change; a fixed re-delivery is read again
    assert counts(ingest(spark, "web_events", landing, "b2"))[:2] == (0, 0)
    (events / "truncated.jsonl.gz").write_bytes(gzip.compress((web_event("T1") + "\n").encode()))
    assert counts(ingest(spark, "web_events", landing, "b3"))[:5] == (1, 0, 1, 1, 0)


def test_vendor_columns_are_renamed_and_dates_parsed_with_the_contract_format(fresh_database, tmp_path):
    spark, landing = fresh_database, tmp_path / "landing"
    write_lines(
        landing / "vendor" / "demographics" / "2026-01-01" / "demo.csv",
        [
            "REC_ID,EMAIL_SHA256,ADDR_LINE_1,POST_CD,AGE_BAND,HH_INCOME_BAND,HOMEOWNER_FLG,NUM_CHILDREN,DELIVERY_DT",
            "V1,abc,,,25-34,50-75k,Y,2,20260101",
            "V2,,,,35-44,,N,0,20260101",
        ],
    )
    stats = ingest(spark, "enrichment_demographics", landing, "b1")
    assert (stats.accepted, stats.quarantined) == (1, 1)
    row = spark.table("bronze.enrichment_demographics").first()
    assert (row.vendor_record_id, row.email_sha256, row.is_homeowner, row.children_count, row.delivered_on) == (
        "V1",
        "abc",
        True,
        2,
        date(2026, 1, 1),
    )
    assert (
        spark.table(QUARANTINE_TABLE).first().reason == "neither a hashed email nor a full postal address to match on"
    )


def test_latest_per_key_gives_the_same_rows_by_broadcast_and_by_full_window(spark, monkeypatch):
    import spark_jobs.ingest.apply as apply

    contract = get_contract("crm_contacts")
    rows = [  # C1: three changes, the delete at the newest time wins; C2: a tie on time, later file wins
        ("U", "2026-01-01 02:00:00", "C1", "f1", "h1"),
        ("D", "2026-01-01 03:00:00", "C1", "f1", "h2"),
        ("I", "2026-01-01 01:00:00", "C1", "f2", "h3"),
        ("U", "2026-01-01 05:00:00", "C2", "f1", "h4"),
        ("U", "2026-01-01 05:00:00", "C2", "f2", "h5"),
        ("I", "2026-01-01 01:00:00", "C3", "f1", "h6"),
    ]
    df = spark.createDataFrame(
        rows, "op string, change_ts string, contact_id string, _source_file string, _row_hash string"
    ).withColumn("change_ts", F.to_timestamp("change_ts"))
    expected = [
        Row(contact_id="C1", op="D", _source_file="f1"),
        Row(contact_id="C2", op="U", _source_file="f2"),
        Row(contact_id="C3", op="I", _source_file="f1"),
    ]
    assertDataFrameEqual(apply.latest_per_key(df, contract).select("contact_id", "op", "_source_file"), expected)
    monkeypatch.setattr(apply, "MAX_BROADCAST_KEYS", 0)  # too many repeated keys: sort the whole batch
    assertDataFrameEqual(apply.latest_per_key(df, contract).select("contact_id", "op", "_source_file"), expected)


def test_a_new_csv_column_is_added_and_files_with_either_header_load_together(fresh_database, tmp_path):
    spark, contacts = fresh_database, tmp_path / "landing" / "crm" / "contacts" / "2026-01-01"
    write_lines(contacts / "old.csv", [CRM_HEADER, crm("I", "2026-01-01T01:00:00Z", "C1")])
    write_lines(
        contacts / "new.csv", [CRM_HEADER + ",preferred_store", crm("I", "2026-01-01T01:00:00Z", "C2") + ",S07"]
    )
    stats = ingest(spark, "crm_contacts", tmp_path / "landing", "b1")
    assert (stats.received, stats.accepted, stats.new_columns) == (2, 2, "preferred_store")
    assertDataFrameEqual(
        spark.table("bronze.crm_contacts").select("contact_id", "city", "preferred_store"),
        [
            Row(contact_id="C1", city="London", preferred_store=None),
            Row(contact_id="C2", city="London", preferred_store="S07"),
        ],
    )


def test_a_first_batch_with_every_row_quarantined_still_creates_the_empty_table(fresh_database, tmp_path):
    """Models over bronze need every source's table once its files were read, even if no row passed."""
    spark, landing = fresh_database, tmp_path / "landing"
    write_lines(landing / "web" / "events" / "2026-01-02" / "part-1.jsonl", ["{oops", web_event("E1", ts="not a time")])

    stats = ingest(spark, "web_events", landing, "b1")
    assert counts(stats) == (1, 0, 2, 0, 2, 0, 0)
    table = spark.table("bronze.web_events")
    assert table.count() == 0
    assert {"event_id", "anonymous_id", "event_ts", "event_date", "_batch_id", "_row_hash"} <= set(table.columns)

    write_lines(landing / "web" / "events" / "2026-01-03" / "part-1.jsonl", [web_event("E2", "2026-01-03T01:00:00Z")])
    assert counts(ingest(spark, "web_events", landing, "b2")) == (1, 0, 1, 1, 0, 1, 0)
    assert [r.event_id for r in spark.table("bronze.web_events").collect()] == ["E2"]


def test_odd_file_names_are_read_literally_and_counted(fresh_database, tmp_path):
    """Spaces, %, #, ? and glob characters in file names: each file read once, as itself, its
    rows counted against it (Spark reports paths URL-encoded; a * is no wildcard)."""
    spark, landing = fresh_database, tmp_path / "landing"
    events = landing / "web" / "events" / "2026-01-02"
    names = {"a b%25#?.jsonl": "E1", "br[1]{x}.jsonl": "E2", "star*.jsonl": "E3", "plus+sign.jsonl": "E4"}
    for name, event_id in names.items():
        write_lines(events / name, [web_event(event_id), "{oops"])
    stats = ingest(spark, "web_events", landing, "b1")
    assert counts(stats) == (4, 0, 8, 4, 4, 4, 0)
    files = {
        Path(r.file_path).name: (r.status, r.received, r.accepted) for r in spark.table(PROCESSED_FILES_TABLE).collect()
    }
    assert files == dict.fromkeys(names, ("loaded", 2, 1))
    by_file = {Path(r._source_file).name: r.event_id for r in spark.table("bronze.web_events").collect()}
    assert by_file == names
    assert {Path(r.source_file).name for r in spark.table(QUARANTINE_TABLE).collect()} == set(names)
    assert counts(ingest(spark, "web_events", landing, "b2")) == (0, 0, 0, 0, 0, 0, 0)


def test_symlinks_are_not_followed_and_an_impossible_date_folder_is_no_crash(fresh_database, tmp_path):
    spark, landing = fresh_database, tmp_path / "landing"
    events = landing / "web" / "events"
    outside = tmp_path / "outside"
    write_lines(outside / "secret.jsonl", [web_event("X1")])
    write_lines(events / "2026-01-02" / "real.jsonl", [web_event("E1")])
    (events / "2026-01-02" / "link.jsonl").symlink_to(outside / "secret.jsonl")
    (events / "linked-folder").symlink_to(outside)
    (events / "2026-01-02" / "loop").symlink_to(events)
    write_lines(events / "2026-02-30" / "late.jsonl", [web_event("E2")])
    stats = ingest(spark, "web_events", landing, "b1")
    assert counts(stats) == (*(2, 0, 2, 2, 2, 0, 0)[:2], 2, 2, 0, 2, 0)
    assert sorted(r.event_id for r in spark.table("bronze.web_events").collect()) == ["E1", "E2"]
    assert sorted(Path(r.file_path).name for r in spark.table(PROCESSED_FILES_TABLE).collect()) == [
        "late.jsonl",
        "real.jsonl",
    ]


def test_a_repeated_csv_header_name_fails_its_file_alone(fresh_database, tmp_path):
    spark, landing = fresh_database, tmp_path / "landing"
    contacts = landing / "crm" / "contacts" / "2026-01-02"
    write_lines(contacts / "good.csv", [CRM_HEADER, crm("I", "2026-01-01T01:00:00Z", "C1")])
    write_lines(contacts / "twice.csv", [CRM_HEADER + ",city", crm("I", "2026-01-01T01:00:00Z", "C2") + ",Leeds"])
    stats = ingest(spark, "crm_contacts", landing, "b1")
    assert (stats.files, stats.failed_files, stats.accepted) == (1, 1, 1)
    failed = {
        Path(r.file_path).name: r.error for r in spark.table(PROCESSED_FILES_TABLE).where("status = 'failed'").collect()
    }
    assert failed == {
        "twice.csv": "repeated column name(s) ['city'] in the CSV header: which one holds the value is unknown"
    }
    assert counts(ingest(spark, "crm_contacts", landing, "b2"))[:2] == (0, 0)


def test_a_new_column_delta_cannot_name_is_renamed_by_the_documented_rule(fresh_database, tmp_path):
    spark, landing = fresh_database, tmp_path / "landing"
    events = landing / "web" / "events" / "2026-01-02"
    write_lines(events / "good.jsonl", [web_event("E1")])
    # and a key that repeats a declared one in other case (Spark resolves names case-insensitively)
    write_lines(
        events / "odd_key.jsonl", [web_event("E2", **{"unit price (EUR)": "3", "a=b;c": "x", "EVENT_ID": "e2"})]
    )
    stats = ingest(spark, "web_events", landing, "b1")
    assert (stats.files, stats.failed_files, stats.accepted) == (2, 0, 2)
    assert sorted(stats.new_columns.split(",")) == ["EVENT_ID_2", "a_b_c", "unit_price_eur"]
    rows = {r.event_id: (r.unit_price_eur, r.a_b_c, r.EVENT_ID_2) for r in spark.table("bronze.web_events").collect()}
    assert rows == {"E1": (None, None, None), "E2": ("3", "x", "e2")}


def test_a_truncated_gzip_is_reported_by_its_cause(fresh_database, tmp_path):
    spark, landing = fresh_database, tmp_path / "landing"
    events = landing / "web" / "events" / "2026-01-02"
    events.mkdir(parents=True)
    whole = gzip.compress(("\n".join(web_event(f"E{i}") for i in range(2000)) + "\n").encode())
    (events / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    ingest(spark, "web_events", landing, "b1")
    error = spark.table(PROCESSED_FILES_TABLE).first().error
    assert "An error occurred while calling" not in error and "EOF" in error, error


def test_values_that_only_look_valid_are_quarantined_with_their_reason(fresh_database, tmp_path):
    """Non-finite amounts (NaN passes 'total_amount >= 0'), a padded enum value and a
    timestamp far outside any real event."""
    spark, landing = fresh_database, tmp_path / "landing"

    def order(order_id, amount, status="completed", ts="2026-01-01T10:00:00Z"):
        return (
            f'{{"order_id": "{order_id}", "customer_email": "a@x.com", "order_ts": "{ts}", "currency": "EUR", '
            f'"total_amount": {amount}, "status": "{status}", "updated_at": "{ts}"}}'
        )

    write_lines(
        landing / "shop" / "orders" / "2026-01-02" / "orders.jsonl",
        [
            order("O1", "12.5"),
            order("O2", '"NaN"'),
            order("O3", '"Infinity"'),
            order("O4", "1e309"),
            order("O5", "3", status=" completed"),
            order("O6", "4", ts="9999-12-31T00:00:00Z"),
        ],
    )
    stats = ingest(spark, "shop_orders", landing, "b1")
    assert (stats.received, stats.accepted, stats.quarantined) == (6, 1, 5)
    reasons = {json.loads(r.raw_record)["order_id"]: r.reason for r in spark.table(QUARANTINE_TABLE).collect()}
    # 1e309 overflows while the JSON is parsed: its text arrives as an infinity, not a number
    assert reasons.pop("O4").startswith("column total_amount: ")
    assert reasons == {
        "O2": "column total_amount: 'NaN' is not a finite number",
        "O3": "column total_amount: 'Infinity' is not a finite number",
        "O5": "column status: ' completed' is not one of ['pending', 'completed', 'cancelled', 'refunded']",
        "O6": "column order_ts: '9999-12-31T00:00:00Z' is outside 1900-01-01 to 2100-12-31; "
        "column updated_at: '9999-12-31T00:00:00Z' is outside 1900-01-01 to 2100-12-31",
    }
    assert [r.order_id for r in spark.table("bronze.shop_orders").collect()] == ["O1"]


def test_merges_racing_into_one_table_are_retried_and_lose_nothing(fresh_database):
    """Two ingestion steps run side by side and both MERGE into bronze._quarantine: the loser of
    a race gets Delta's DELTA_CONCURRENT_APPEND and runs its (idempotent) MERGE again."""
    from concurrent.futures import ThreadPoolExecutor

    from spark_jobs.ingest.apply import is_write_conflict, merge_into

    spark = fresh_database
    spark.createDataFrame([("seed", "x")], "id string, entity string").write.format("delta").saveAsTable(
        "bronze.race_target"
    )

    def writer(entity: str) -> None:
        for batch in range(4):
            rows = spark.createDataFrame(
                [(f"{entity}-{batch}-{i}", entity) for i in range(3)], "id string, entity string"
            )
            merge_into(spark, rows, "bronze.race_target", "t.id = s.id")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(writer, ["events", "crm"]))
    ids = {r.id for r in spark.table("bronze.race_target").collect()}
    assert ids == {"seed"} | {f"{e}-{b}-{i}" for e in ("events", "crm") for b in range(4) for i in range(3)}
    history = spark.sql("DESCRIBE HISTORY bronze.race_target").where("operation = 'MERGE'").count()
    assert history == 8  # one commit per batch: a retried MERGE committed once

    conflict = Exception("[DELTA_CONCURRENT_APPEND.WITHOUT_HINT] Transaction conflict detected.")
    assert is_write_conflict(conflict) and not is_write_conflict(Exception("[DELTA_MERGE_UNRESOLVED_EXPRESSION]"))


def test_a_step_finding_a_bookkeeping_table_half_created_waits_and_appends(fresh_database):
    """The first run's parallel steps both append to bronze._ingestion_log before it exists. The
    loser may find its location holding the winner's data files before the winner's first
    commit (DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION): it waits and appends once the table is
    there. Here the winner's files are put in place by hand, then the winner commits."""
    import threading
    from urllib.parse import urlparse

    from spark_jobs.ingest.apply import retry_on_write_conflict

    spark = fresh_database
    table = "bronze.half_created"
    database = spark.sql("DESCRIBE DATABASE bronze").where("info_name = 'Location'").first().info_value
    location = Path(urlparse(database).path) / "half_created"
    location.mkdir(parents=True)
    (location / "part-00000-in-flight.snappy.parquet").write_bytes(b"PAR1")  # the winner's first file

    loser_rows = spark.createDataFrame([("crm", i) for i in range(5)], "entity string, n int")
    errors: list[BaseException] = []
    first_attempt_done = threading.Event()

    def append() -> None:
        try:
            loser_rows.write.format("delta").mode("append").saveAsTable(table)
        finally:
            first_attempt_done.set()

    def loser() -> None:
        try:
            retry_on_write_conflict(append, table)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=loser)
    thread.start()
    assert first_attempt_done.wait(60)  # it met the half-created table
    (location / "part-00000-in-flight.snappy.parquet").unlink()
    winner_rows = spark.createDataFrame([("events", i) for i in range(5)], "entity string, n int")
    retry_on_write_conflict(lambda: winner_rows.write.format("delta").mode("append").saveAsTable(table), table)
    thread.join(60)
    assert errors == []
    counts = {r.entity: r["count"] for r in spark.table(table).groupBy("entity").count().collect()}
    assert counts == {"events": 5, "crm": 5}


def test_freshness_fails_a_late_or_missing_source_and_passes_one_without_a_limit(fresh_database, tmp_path):
    spark, landing = fresh_database, tmp_path / "landing"
    write_lines(landing / "web" / "events" / "2026-01-02" / "part-1.jsonl", [web_event("E1")])
    ingest(spark, "web_events", landing, "b1")
    now = datetime.now(UTC)
    web, limit = get_contract("web_events"), get_contract("web_events").freshness_hours
    passed, metadata = freshness(spark, web, now)
    assert passed and metadata["limit_hours"] == limit and 0 <= metadata["newest_file_age_hours"] < 1
    late, metadata = freshness(spark, web, now + timedelta(hours=limit + 1))
    assert not late and metadata["newest_file_age_hours"] > limit
    # A source that never delivered fails when its contract sets a limit...
    never, metadata = freshness(spark, get_contract("crm_contacts"), now)
    assert not never and metadata["newest_file_age_hours"] is None
    # ... and passes when it sets none: erasure requests come when someone asks.
    assert freshness(spark, get_contract("erasure_requests"), now) == (
        True,
        {"outcome": "no freshness limit in the contract", "newest_file_age_hours": None},
    )
