"""Subject access export: a merged customer found by email, phone or a retired id, with every
source record and version, and nothing of anyone else."""

from __future__ import annotations

import json

import pytest

from spark_jobs.privacy.subject_access import SubjectAccess, SubjectNotGiven, main


def _table(spark, name: str, rows: list[tuple], schema: str) -> None:
    spark.createDataFrame(rows, schema).write.format("delta").mode("overwrite").saveAsTable(name)


@pytest.fixture
def lakehouse(fresh_database):
    """Ann: CRM contact C1 (two versions) and order O1, merged from cus_old into cus_a. Bob: C2, O2."""
    spark = fresh_database
    spark.sql("CREATE DATABASE IF NOT EXISTS activation")
    _table(spark, "bronze.crm_contacts", [("C1", "ann@x.com", "Ann"), ("C2", "bob@y.com", "Bob")],
           "contact_id string, email string, first_name string")  # fmt: skip
    _table(spark, "bronze.crm_contacts_history",
           [("C1", "ann.old@x.com", "2025-01-01"), ("C1", "ann@x.com", "2025-02-01"),
            ("C2", "bob@y.com", "2025-01-01")],
           "contact_id string, email string, change_ts string")  # fmt: skip
    _table(spark, "bronze.shop_orders", [("O1", "Ann@X.com", 12.5), ("O2", "bob@y.com", 3.0)],
           "order_id string, customer_email string, total_amount double")  # fmt: skip
    _table(spark, "silver.identity_map",
           [("crm_contacts", "C1", "cus_a", "deterministic", "ann@x.com", "+447700900001"),
            ("shop_orders", "O1", "cus_a", "probabilistic", "ann@x.com", None),
            ("crm_contacts", "C2", "cus_b", "deterministic", "bob@y.com", "+447700900002"),
            ("shop_orders", "O2", "cus_b", "deterministic", "bob@y.com", None)],
           "source_table string, source_record_id string, customer_id string, match_rule string, "
           "email_normalised string, phone_e164 string")  # fmt: skip
    _table(spark, "silver.customer_id_lineage", [("cus_old", "cus_a"), ("cus_a", "cus_a"), ("cus_b", "cus_b")],
           "customer_id string, current_customer_id string")  # fmt: skip
    _table(spark, "gold.dim_customers", [("cus_a", "ann@x.com", "Ann"), ("cus_b", "bob@y.com", "Bob")],
           "customer_id string, email string, first_name string")  # fmt: skip
    _table(spark, "gold.customer_consent",
           [("cus_a", "ad_targeting", "granted", True), ("cus_b", "ad_targeting", "withdrawn", False)],
           "customer_id string, purpose string, consent_status string, is_granted boolean")  # fmt: skip
    _table(spark, "activation.sync_state", [("crm_customers", "cus_a", "synced"), ("crm_customers", "cus_b", "synced")],
           "sync_name string, record_key string, status string")  # fmt: skip
    _table(spark, "bronze._quarantine",
           [("bad.csv", "x,ANN@x.com,not-a-date", "invalid date"), ("bad.csv", "y,bob@y.com,?", "invalid date")],
           "source_file string, raw_record string, reason string")  # fmt: skip
    yield spark
    spark.sql("DROP TABLE IF EXISTS activation.sync_state")


def test_a_merged_customer_is_found_by_email_with_every_source_record_and_nothing_of_others(lakehouse):
    document = SubjectAccess(lakehouse).export(email=" Ann@X.com ", request_id="DSR-1")
    assert document["found"] and [c["customer_id"] for c in document["customers"]] == ["cus_a"]
    ann = document["customers"][0]
    assert ann["ids_ever"] == ["cus_a", "cus_old"]
    records = {(r["source"], r["record_id"]): r for r in ann["source_records"]}
    assert set(records) == {("crm_contacts", "C1"), ("shop_orders", "O1")}
    assert records[("shop_orders", "O1")]["record"]["total_amount"] == 12.5
    assert records[("shop_orders", "O1")]["match_rule"] == "probabilistic"
    assert [v["email"] for v in records[("crm_contacts", "C1")]["versions"]] == ["ann.old@x.com", "ann@x.com"]
    assert ann["golden_record"] == [{"customer_id": "cus_a", "email": "ann@x.com", "first_name": "Ann"}]
    assert [(c["purpose"], c["consent_status"]) for c in ann["consent"]] == [("ad_targeting", "granted")]
    assert [s["sync_name"] for s in ann["sent_to_destinations"]] == ["crm_customers"]
    assert [q["raw_record"] for q in document["quarantined_records"]] == ["x,ANN@x.com,not-a-date"]
    assert "gold.customer_traits" in document["tables_not_present"]
    assert document["request"]["request_id"] == "DSR-1" and document["request"]["looked_up_by"] == ["email"]
    text = json.dumps(document)
    assert "bob" not in text.lower() and "cus_b" not in text and "C2" not in text and "O2" not in text


def test_a_retired_id_or_a_phone_leads_to_todays_customer_and_an_unknown_person_to_nothing(lakehouse, tmp_path):
    by_old_id = SubjectAccess(lakehouse).export(customer_id="cus_old")
    by_phone = SubjectAccess(lakehouse).export(phone="+447700900001")
    assert [c["customer_id"] for c in by_old_id["customers"]] == [c["customer_id"] for c in by_phone["customers"]]
    assert [c["customer_id"] for c in by_phone["customers"]] == ["cus_a"]

    nobody = SubjectAccess(lakehouse).export(email="nobody@z.com")
    assert (nobody["found"], nobody["customers"], nobody["quarantined_records"]) == (False, [], [])
    with pytest.raises(SubjectNotGiven):
        SubjectAccess(lakehouse).export()
    with pytest.raises(SystemExit):  # the CLI says what is missing before any Spark work
        main(["--output", str(tmp_path / "x.json")])
