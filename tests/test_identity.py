from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spark_jobs.identity.resolve import normalise_email, resolve_identities, source_records


def test_normalise_email_lowercases_trims_and_blanks_to_null(spark):
    df = spark.createDataFrame([("  Ann@X.COM ",), ("",), ("   ",), (None,)], "email string")
    assert [r.e for r in df.select(normalise_email(F.col("email")).alias("e")).collect()] == ["ann@x.com", None, None, None]


def test_records_link_by_crm_contact_id_then_by_email(spark):
    contacts = spark.createDataFrame([
        Row(contact_id="C1", email="ann@x.com"),
        Row(contact_id="C2", email=" ANN@x.com"),   # same person entered twice
        Row(contact_id="C3", email=None),           # no identifier at all
    ], "contact_id string, email string")
    orders = spark.createDataFrame([
        Row(order_id="O1", crm_contact_id="C1", customer_email="work@y.com"),  # logged in, other email
        Row(order_id="O2", crm_contact_id=None, customer_email="Ann@X.com "),  # guest checkout, same email
        Row(order_id="O3", crm_contact_id=None, customer_email="guest@z.com"),
    ], "order_id string, crm_contact_id string, customer_email string")

    mapped = resolve_identities(source_records(contacts, orders))
    by_record = {(r.source_table, r.source_record_id): r for r in mapped.collect()}
    ann = by_record[("crm_contacts", "C1")].customer_id
    assert by_record[("crm_contacts", "C2")].customer_id == ann
    assert by_record[("shop_orders", "O1")].customer_id == ann
    assert by_record[("shop_orders", "O2")].customer_id == ann
    assert len({ann, by_record[("crm_contacts", "C3")].customer_id, by_record[("shop_orders", "O3")].customer_id}) == 3

    assertDataFrameEqual(
        mapped.select("source_table", "source_record_id", "match_rule"),
        spark.createDataFrame([
            ("crm_contacts", "C1", "exact_email"), ("crm_contacts", "C2", "exact_email"),
            ("crm_contacts", "C3", "no_identifier"), ("shop_orders", "O1", "crm_contact_id"),
            ("shop_orders", "O2", "exact_email"), ("shop_orders", "O3", "exact_email"),
        ], "source_table string, source_record_id string, match_rule string"),
    )


def test_customer_id_is_stable_across_runs(spark):
    contacts = spark.createDataFrame([Row(contact_id="C1", email="ann@x.com")])
    orders = spark.createDataFrame([], "order_id string, crm_contact_id string, customer_email string")
    first = resolve_identities(source_records(contacts, orders)).first().customer_id
    again = resolve_identities(source_records(contacts, orders)).first().customer_id
    assert first == again and first.startswith("cus_") and len(first) == len("cus_") + 16
