"""Bronze sources to person records and identifiers, then links and clusters on a household."""

from __future__ import annotations

import hashlib
from datetime import date

from pyspark.sql import functions as F

from spark_jobs.identity.clusters import connected_components
from spark_jobs.identity.links import deterministic_links
from spark_jobs.identity.persons import identifiers, person_records

CRM = (
    "contact_id string, first_name string, last_name string, email string, phone string, birth_date date, "
    "street string, postcode string, country string, loyalty_card_id string, _is_deleted boolean"
)


def _tables(spark):
    crm = spark.createDataFrame(
        [
            # Two people of one household: same phone, street and surname.
            (
                "C1",
                "Robert",
                "Smith",
                "Bob.Smith@Gmail.com",
                "01632 960001",
                date(1970, 1, 2),
                "12 High St",
                "N1 1AA",
                "GB",
                "L1",
                False,
            ),
            (
                "C2",
                "Anna",
                "Smith",
                "anna.smith@example.org",
                "+44 1632 960001",
                date(1972, 3, 4),
                "12 High Street",
                "n1 1aa",
                "GB",
                None,
                False,
            ),
            ("C3", "Gone", "Away", "gone@example.org", None, None, None, None, "GB", None, True),  # deleted in the CRM
        ],
        CRM,
    )
    orders = spark.createDataFrame(
        [
            ("O1", None, "bobsmith+shop@gmail.com", "N1 1AA"),  # email only, Gmail variant of C1's
            ("O2", "C2", "ANNA.SMITH@EXAMPLE.ORG", None),  # carries C2's CRM id
        ],
        "order_id string, crm_contact_id string, customer_email string, shipping_postcode string",
    )
    # T2 and T3: store purchases without a loyalty card (empty or blank): anonymous, no person.
    pos = spark.createDataFrame(
        [("T1", "L1"), ("T2", None), ("T3", "  ")], "transaction_id string, loyalty_card_id string"
    )
    vendor = spark.createDataFrame(
        [("V1", hashlib.sha256(b"anna.smith@example.org").hexdigest(), None, None)],
        "vendor_record_id string, email_sha256 string, street string, postcode string",
    )
    return {"crm_contacts": crm, "shop_orders": orders, "pos_transactions": pos, "enrichment_demographics": vendor}


def test_records_are_standardised_and_deleted_contacts_and_cardless_purchases_left_out(spark):
    records = {r.record_id: r for r in person_records(_tables(spark)).collect()}
    assert sorted(records) == [
        "crm_contacts:C1",
        "crm_contacts:C2",
        "enrichment_demographics:V1",
        "pos_transactions:T1",
        "shop_orders:O1",
        "shop_orders:O2",
    ]
    c1 = records["crm_contacts:C1"]
    assert (c1.first_name, c1.email, c1.phone, c1.address_line, c1.postcode) == (
        "robert",
        "bobsmith@gmail.com",
        "+441632960001",
        "12 high street",
        "N11AA",
    )
    assert records["shop_orders:O1"].email == "bobsmith@gmail.com"


def test_the_household_stays_two_customers_and_every_record_finds_its_person(spark):
    records = person_records(_tables(spark))
    links = deterministic_links(identifiers(records), records)
    components = connected_components(
        records.select(F.col("record_id").alias("id")),
        links.select(F.col("record_id").alias("src"), F.col("linked_to").alias("dst")),
    )
    clusters = {}
    for row in components.collect():
        clusters.setdefault(row.component, set()).add(row.id)
    assert sorted(map(sorted, clusters.values())) == [
        ["crm_contacts:C1", "pos_transactions:T1", "shop_orders:O1"],
        ["crm_contacts:C2", "enrichment_demographics:V1", "shop_orders:O2"],
    ]
