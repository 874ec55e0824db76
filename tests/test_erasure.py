"""Erasure's parts on small inputs: tombstones at ingestion, text scrubbing, audience files on
S3, contract and retention settings. The whole erasure runs in the end-to-end tests."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from conftest import write_lines
from pyspark.sql import functions as F

from spark_jobs.ingest.bronze import QUARANTINE_TABLE, ingest_contract, reconciliation
from spark_jobs.ingest.contracts import ContractError, get_contract, parse_contract
from spark_jobs.privacy.erasure import (
    TextMatcher,
    hashed_needles,
    identifying_columns,
    scrub_exports,
    scrub_text,
)
from spark_jobs.privacy.retention import RetentionRulesError, load_rules
from spark_jobs.privacy.tombstones import Tombstones, column_hash, record_kind
from spark_jobs.spark import table_names

CRM_HEADER = (
    "op,change_ts,contact_id,first_name,last_name,email,phone,birth_date,street,city,postcode,country,"
    "loyalty_card_id,created_at"
)
SALT = "test-salt"


def crm(contact_id: str, email: str, change_ts: str = "2026-01-02T10:00:00Z", phone: str = "") -> str:
    return f"I,{change_ts},{contact_id},Ann,Lee,{email},{phone},1990-01-02,1 High St,London,N1 1AA,GB,,"


def tombstones(spark, *identifiers: tuple[str, str]) -> Tombstones:
    """Tombstones of (kind, value as delivered), hashed as the erasure job hashes them."""
    hashes: dict[str, set[str]] = {}
    for kind, value in identifiers:
        (digest,) = spark.range(1).select(column_hash(SALT, kind, F.lit(value))).first()
        hashes.setdefault(kind, set()).add(digest)
    return Tombstones(SALT, {k: frozenset(v) for k, v in hashes.items()})


def test_ingestion_drops_an_erased_persons_rows_counts_them_and_still_reconciles(fresh_database, tmp_path):
    """Ann was erased (her email) and so was contact C9 (by id). A re-delivered file holds
    their rows, one of them malformed: none reaches bronze, its history or the quarantine; the
    file's counts say how many were dropped, and nothing else about them is kept."""
    spark, landing = fresh_database, tmp_path / "landing"
    write_lines(
        landing / "crm" / "contacts" / "2026-01-02" / "contacts.csv",
        [
            CRM_HEADER,
            crm("C1", " ANN@example.com"),  # her email, as another system wrote it
            crm("C9", "c9@example.com"),
            crm("C2", "bob@example.com"),
            crm("C1", "ann@example.com", change_ts="not a time"),  # hers and malformed
            crm("C3", "cy@example.com", change_ts="not a time"),  # someone else's, malformed
        ],
    )
    erased = tombstones(spark, ("email", "ann@example.com"), ("crm_contact_id", "C9"))
    stats = ingest_contract(spark, get_contract("crm_contacts"), landing.as_uri(), "b1", tombstones=erased)
    assert (stats.received, stats.accepted, stats.quarantined, stats.erased) == (5, 1, 1, 3)
    passed, metadata = reconciliation(spark, stats)
    assert passed and metadata["erased"] == 3
    assert [r.contact_id for r in spark.table("bronze.crm_contacts").collect()] == ["C2"]
    assert [r.contact_id for r in spark.table("bronze.crm_contacts_history").collect()] == ["C2"]
    quarantined = spark.table(QUARANTINE_TABLE).collect()
    assert len(quarantined) == 1 and "cy@example.com" in quarantined[0].raw_record
    files = spark.table("bronze._processed_files").collect()
    assert [(f.received, f.accepted, f.quarantined, f.erased) for f in files] == [(5, 1, 1, 3)]


def test_tombstones_match_only_through_columns_of_their_kind(fresh_database, tmp_path):
    """A phone tombstone cannot match a frame without the contract's phone column, and a source
    whose rows hold other phones loads every row."""
    spark, landing = fresh_database, tmp_path / "landing"
    contract = get_contract("crm_contacts")
    only_phones = tombstones(spark, ("phone", "+447700900123"))
    no_phone = spark.createDataFrame([("C1", "ann@example.com")], "contact_id string, email string")
    assert only_phones.matches(no_phone, contract) is None
    write_lines(
        landing / "crm" / "contacts" / "2026-01-02" / "c.csv",
        [CRM_HEADER, crm("C1", "ann@example.com", phone="+447700900999"), crm("C2", "b@x.com", phone="07700 900123")],
    )
    stats = ingest_contract(spark, contract, landing.as_uri(), "b1", tombstones=only_phones)
    # C2's national number is the erased +447700900123 only in the UK; standardised without a
    # country it is no E.164 number, so it is not taken for the erased one.
    assert (stats.received, stats.accepted, stats.erased) == (2, 2, 0)


def test_a_source_records_key_is_tombstoned_by_its_source(spark):
    """Vendor records carry no email or phone: the record itself is tombstoned."""
    contract = get_contract("enrichment_demographics")
    erased = tombstones(spark, (record_kind("enrichment_demographics"), "VX1"))
    rows = spark.createDataFrame([("VX1", None), ("VX2", None)], "vendor_record_id string, email_sha256 string")
    assert [r.vendor_record_id for r in rows.where(~erased.matches(rows, contract)).collect()] == ["VX2"]


def test_a_contract_column_identifies_a_person_by_a_known_kind_on_a_string(tmp_path):
    assert get_contract("shop_orders").identifying_columns == {
        "order_id": "order_id",
        "crm_contact_id": "crm_contact_id",
        "customer_email": "email",
    }
    base = (
        "name: things\ndescription: d\nlanding: t\nformat: csv\nkind: upsert\nprimary_key: [id]\n"
        "version_column: v\ncolumns:\n  - {name: id, type: string, required: true}\n  - {name: v, type: timestamp}\n"
    )
    for column, message in (
        ("{name: x, type: string, identifies: passport}", "identifies must be one of"),
        ("{name: x, type: int, identifies: email}", "on a int column"),
    ):
        path = tmp_path / "things.yml"
        path.write_text(base + f"  - {column}\n", encoding="utf-8")
        with pytest.raises(ContractError, match=message):
            parse_contract(path)


def test_tables_outside_bronze_are_matched_by_column_names_and_identity_ids_only_in_silver():
    contracts = {"crm_contacts": get_contract("crm_contacts")}
    assert identifying_columns("silver._identity_links", ["record_id", "linked_to", "rule"], contracts) == {
        "record_id": "identity_record",
        "linked_to": "identity_record",
    }
    assert identifying_columns("gold.fct_orders", ["order_id", "customer_id", "record_id"], contracts) == {
        "order_id": "order_id",
        "customer_id": "customer_id",
    }
    assert identifying_columns("bronze.crm_contacts_history", ["contact_id", "email", "city"], contracts) == {
        "contact_id": "crm_contact_id",
        "email": "email",
    }


def test_scrubbing_removes_whole_lines_keeps_the_csv_header_and_gzip(tmp_path):
    pattern = TextMatcher(["C10", "ann@example.com", "+44 7700 900123"])
    csv_text = b"contact_id,email\r\nC10,x@y.z\r\nC100,b@y.z\r\nC1,ANN@example.com\r\nC2,c@y.z\r\n"
    scrubbed, removed = scrub_text(csv_text, pattern, keep_first_line=True)
    assert removed == 2 and scrubbed == b"contact_id,email\r\nC100,b@y.z\r\nC2,c@y.z\r\n"  # C100 is not C10
    packed = gzip.compress(csv_text, mtime=0)
    scrubbed_gz, removed = scrub_text(packed, pattern, keep_first_line=True)
    assert removed == 2 and gzip.decompress(scrubbed_gz) == scrubbed
    json_line = b'{"id": "C3", "phone": "+44 7700 900123", "note": "+44 7700 9001234"}'
    assert scrub_text(json_line, pattern, keep_first_line=False) == (b"", 1)
    assert not pattern.search(b'{"phone": "+44 7700 9001234", "id": "C100", "email": "xann@example.com"}')
    untouched = b"contact_id,email\r\nC2,c@y.z\r\n"
    assert scrub_text(untouched, pattern, keep_first_line=True) == (untouched, 0)


def test_old_audience_files_lose_the_persons_rows_and_their_manifest_is_corrected(s3):
    """Files an earlier run exported lose the person's hashed row and the run's manifest gets
    the new row count and SHA-256; the removal this erasure just sent is left alone."""
    client = s3.client()
    hashed = hashed_needles([("r", "email", "ann@example.com", "Ann@Example.com")])
    ann = hashlib.sha256(b"ann@example.com").hexdigest()
    assert ann in hashed
    part = f"Email,Country\r\n{ann},GB\r\n{'b' * 64},FR\r\n".encode()
    client.put_object(Bucket="exports", Key="aud/s/run1/add-00001.csv", Body=part)
    manifest = {"files": [{"key": "aud/s/run1/add-00001.csv", "op": "add", "rows": 2, "sha256": "x"}], "rows_added": 2}
    client.put_object(Bucket="exports", Key="aud/s/run1/manifest.json", Body=json.dumps(manifest).encode())
    cutoff = datetime.now(UTC) + timedelta(seconds=1)

    assert scrub_exports(client, "exports", "aud", hashed, cutoff) == (1, 1)
    body = client.get_object(Bucket="exports", Key="aud/s/run1/add-00001.csv")["Body"].read()
    assert ann.encode() not in body and body.startswith(b"Email,Country\r\n")
    corrected = json.loads(client.get_object(Bucket="exports", Key="aud/s/run1/manifest.json")["Body"].read())
    assert corrected["files"][0]["rows"] == 1 and corrected["rows_added"] == 1
    assert corrected["files"][0]["sha256"] == hashlib.sha256(body).hexdigest()
    assert scrub_exports(client, "exports", "aud", hashed, datetime.now(UTC) - timedelta(days=1)) == (0, 0)
    assert scrub_exports(client, "no-such-bucket", "aud", hashed, cutoff) == (0, 0)


def test_erased_data_retention_is_hours_within_the_month_the_law_allows(tmp_path):
    assert load_rules().erased_data_retention_hours == 168
    path = tmp_path / "rules.yml"
    for value in (-1, 721, "7d"):
        path.write_text(f"erased_data_retention_hours: {value!r}\n", encoding="utf-8")
        with pytest.raises(RetentionRulesError, match="erased_data_retention_hours"):
            load_rules(path)
    path.write_text("erased_data_retention_hours: 0\n", encoding="utf-8")
    assert load_rules(path).erased_data_retention_hours == 0


@pytest.fixture
def privacy_db(spark):
    for database in ("activation", "privacy"):
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
    yield spark
    for database in ("activation", "privacy"):
        for table in table_names(spark, database):
            spark.sql(f"DROP TABLE IF EXISTS {database}.{table}")


def test_a_destination_that_has_not_confirmed_keeps_its_state_row_until_it_does(privacy_db):
    """Deleting an erased person's rows keeps the sync state of a destination that still has
    them ('synced'): from it every later run sends the delete again. The suppression stays."""
    from spark_jobs.activation.engine import ensure_tables
    from spark_jobs.privacy.erasure import ErasureRun, RunReport, delete_rows, write_tombstones

    spark = privacy_db
    ensure_tables(spark)
    spark.sql(
        "INSERT INTO activation.sync_state VALUES ('crm', 'c1', 'h', 'synced', 'X1', 'r', current_timestamp()), "
        "('esp', 'c1', 'h', 'skipped', NULL, 'r', current_timestamp()), "
        "('crm', 'c2', 'h', 'synced', 'X2', 'r', current_timestamp())"
    )
    spark.sql("INSERT INTO activation.suppressions VALUES ('c1', 'erased', current_timestamp())")
    write_tombstones(spark, SALT, [("R1", "customer_id", "c1", "c1")])
    hashes = {"customer_id": set(tombstones(spark, ("customer_id", "c1")).hashes["customer_id"])}

    report = RunReport("run", datetime.now(UTC))
    delete_rows(spark, SALT, hashes, report)
    state = {(r.sync_name, r.record_key, r.status) for r in spark.table("activation.sync_state").collect()}
    assert state == {("crm", "c1", "synced"), ("crm", "c2", "synced")}
    assert report.rows_deleted == {"activation.sync_state": 1}
    assert spark.table("activation.suppressions").count() == 1
    run = ErasureRun(spark, None, SALT, 168, list, None)
    assert run._synced_by_request(["R1"]) == {"R1": {"crm": 1}}


def test_a_request_resolves_to_every_id_record_and_identifier_but_not_a_shared_phone(fresh_database, privacy_db):
    """Ann (CRM C1, and an order under an old customer id merged into hers) shares her phone with
    Bob: her email, ids, records and order are hers to erase, the phone is not."""
    from spark_jobs.identity.resolve import IDENTITY_MAP_TABLE, LINEAGE_TABLE
    from spark_jobs.privacy.erasure import ErasureRequest, resolve

    spark = fresh_database
    spark.createDataFrame(
        [
            ("crm_contacts", "C1", "cus_ann", "ann@example.com", "+447700900123"),
            ("shop_orders", "O1", "cus_ann", "ann@example.com", None),
            ("crm_contacts", "C2", "cus_bob", "bob@example.com", "+447700900123"),
        ],
        "source_table string, source_record_id string, customer_id string, email_normalised string, phone_e164 string",
    ).write.format("delta").saveAsTable(IDENTITY_MAP_TABLE)
    spark.createDataFrame(
        [("cus_old", "cus_ann"), ("cus_ann", "cus_ann"), ("cus_bob", "cus_bob")],
        "customer_id string, current_customer_id string",
    ).write.format("delta").saveAsTable(LINEAGE_TABLE)
    spark.createDataFrame(
        [("C1", "Ann@Example.com", "+44 7700 900123", "L1"), ("C2", "bob@example.com", "+447700900123", None)],
        "contact_id string, email string, phone string, loyalty_card_id string",
    ).write.format("delta").saveAsTable("bronze.crm_contacts")
    spark.createDataFrame(
        [("O1", "C1", "ann@example.com"), ("O2", "C2", "bob@example.com")],
        "order_id string, crm_contact_id string, customer_email string",
    ).write.format("delta").saveAsTable("bronze.shop_orders")
    spark.createDataFrame(  # the source's own table has a request_id column too
        [("R1", "ann@example.com", None, None)], "request_id string, email string, phone string, customer_id string"
    ).write.format("delta").saveAsTable("bronze.erasure_requests")

    found = {(kind, value) for request, kind, value, _ in resolve(spark, [ErasureRequest("R1", "ANN@example.com")])}
    assert {
        ("email", "ann@example.com"),
        ("customer_id", "cus_ann"),
        ("customer_id", "cus_old"),
        ("record:crm_contacts", "c1"),
        ("record:shop_orders", "o1"),
        ("crm_contact_id", "c1"),
        ("loyalty_card_id", "l1"),
        ("order_id", "o1"),
        ("email_sha256", hashlib.sha256(b"ann@example.com").hexdigest()),
    } <= found
    assert not {k for k, v in found if k == "phone"}, "a phone Bob has too is not erased"
    assert not {v for _, v in found if "bob" in v or v in ("c2", "o2", "cus_bob")}
