"""Resolution end to end on small inputs: households, directives, the size guard, persistent
ids, the silver job twice, and the standalone CLI."""

from __future__ import annotations

import csv
from datetime import date

import pytest
from pyspark.sql import functions as F

from spark_jobs.identity import resolve as job
from spark_jobs.identity.__main__ import InputError, resolve_file
from spark_jobs.identity.persistent_ids import assign_ids
from spark_jobs.identity.persons import identifiers
from spark_jobs.identity.records import standard_records
from spark_jobs.identity.resolution import apply_directives, guard_oversized, resolve_records

MAPPING = {"record_id": "id", "first_name": "first", "last_name": "last", "dob": "dob", "email": "email",
           "phone": "phone", "address": "street", "postcode": "zip", "country": "country"}
PEOPLE = "id string, first string, last string, dob string, email string, phone string, street string, zip string, country string"


def _resolve(spark, rows, directives=None, size_limit=200):
    records = standard_records(spark.createDataFrame(rows, PEOPLE), MAPPING)
    resolved = resolve_records(records, identifiers(records), directives, size_limit)
    by_component: dict[str, set[str]] = {}
    for row in resolved.clusters.collect():
        by_component.setdefault(row.component, set()).add(row.record_id)
    return sorted(sorted(ids) for ids in by_component.values()), resolved


HOUSEHOLD = [
    # Husband and wife: same street, surname and landline; different first names and birth dates.
    ("A1", "John", "Miller", "1970-05-01", None, "020 7946 0000", "4 Elm Rd", "SW1A 1AA", "GB"),
    ("A2", "Mary", "Miller", "12/03/1972", None, "+44 20 7946 0000", "4 Elm Road", "sw1a1aa", "GB"),
    # John again, elsewhere: his email and phone in other formats.
    ("A3", "JOHN", "Miller", "01/05/1970", "J.Miller@example.com", "0044 20 7946 0000", None, None, "GB"),
    ("A4", "Jack", "Miller", None, "j.miller@EXAMPLE.com ", None, None, None, "GB"),
    ("Z9", "Nobody", "Known", None, None, None, None, None, None),
]


def test_household_members_stay_two_customers(spark):
    clusters, resolved = _resolve(spark, HOUSEHOLD)
    assert clusters == [["A1", "A3", "A4"], ["A2"], ["Z9"]]
    links = {(r.record_id, r.linked_to, r.rule, r.kind) for r in resolved.links.collect()}
    assert ("A3", "A1", "exact_shared_id_same_name", "phone") in links   # same phone and first name
    assert ("A4", "A3", "exact_shared_id_same_name", "email") in links   # Jack = John
    assert not [link for link in links if "A2" in link[:2]], "Mary shares the landline, not the person"


def test_split_directive_detaches_and_link_directive_joins(spark):
    directives = spark.createDataFrame([
        ("split", "A3", None),      # the steward says A3 is not John after all
        ("link", "Z9", "A2"),       # and Z9 is Mary
    ], "action string, record_id string, other_record_id string")
    clusters, resolved = _resolve(spark, HOUSEHOLD, directives)
    # A3 takes no part in matching any more; A4 and A1 shared nothing but A3.
    assert clusters == [["A1"], ["A2", "Z9"], ["A3"], ["A4"]]
    assert {(r.record_id, r.linked_to, r.rule) for r in resolved.links.collect()} == {("Z9", "A2", "directive_link")}


def test_an_invalid_directive_is_refused(spark):
    links = spark.createDataFrame([], "record_id string, linked_to string, rule string, kind string")
    bad = spark.createDataFrame([("merge", "A1", "A2")], "action string, record_id string, other_record_id string")
    with pytest.raises(ValueError, match="action must be one of"):
        apply_directives(links, bad)


def test_oversized_cluster_is_split_on_strong_links(spark):
    records = spark.createDataFrame([(f"R{i}",) for i in range(6)], "record_id string")
    links = spark.createDataFrame([
        ("R1", "R0", "exact_personal_id"), ("R2", "R1", "fellegi_sunter"), ("R3", "R2", "fellegi_sunter"),
        ("R4", "R3", "exact_personal_id"), ("R5", "R4", "exact_personal_id"),
    ], "record_id string, linked_to string, rule string")
    clusters = records.select("record_id", F.lit("R0").alias("component"))
    split, kept, flagged = guard_oversized(records, links, clusters, size_limit=4)
    assert [(r.component, r.size) for r in flagged.collect()] == [("R0", 6)]
    groups = {}
    for row in split.collect():
        groups.setdefault(row.component, []).append(row.record_id)
    assert sorted(sorted(g) for g in groups.values()) == [["R0", "R1"], ["R2"], ["R3", "R4", "R5"]]
    assert {r.rule for r in kept.collect()} == {"exact_personal_id"}


def _ids(assigned):
    return {r.record_id: r.customer_id for r in assigned.identity.collect()}


def test_ids_persist_and_merges_and_splits_are_recorded(spark):
    first = assign_ids(spark.createDataFrame([("a1", "a1"), ("a2", "a1"), ("b1", "b1"), ("c1", "c1"), ("c2", "c1")],
                                             "record_id string, component string"), None, None, "run1")
    ids1 = _ids(first)
    a, b, c = ids1["a1"], ids1["b1"], ids1["c1"]
    assert len({a, b, c}) == 3 and ids1["a2"] == a and all(x.startswith("cus_") for x in (a, b, c))
    assert first.history.count() == 0

    # Next run: a new record joins a and b (a has more records, so a survives); c splits in two.
    clusters = spark.createDataFrame([("a1", "a1"), ("a2", "a1"), ("b1", "a1"), ("n1", "a1"), ("c1", "c1"),
                                      ("c2", "c2")], "record_id string, component string")
    previous = spark.createDataFrame(list(ids1.items()), "record_id string, customer_id string")
    second = assign_ids(clusters, previous, first.lineage, "run2")
    ids2 = _ids(second)
    assert ids2["a1"] == ids2["b1"] == ids2["n1"] == a
    assert ids2["c1"] == c and ids2["c2"] not in (a, b, c)
    history = {(r.old_customer_id, r.new_customer_id, r.reason) for r in second.history.collect()}
    assert history == {(b, a, "merged"), (c, ids2["c2"], "split")}
    lineage = {r.customer_id: r.current_customer_id for r in second.lineage.collect()}
    assert lineage == {a: a, b: a, c: c, ids2["c2"]: ids2["c2"]}

    # A third run where a's records disappear: b follows a to nothing, both are removed.
    third = assign_ids(spark.createDataFrame([("c1", "c1"), ("c2", "c2")], "record_id string, component string"),
                       spark.createDataFrame(list(ids2.items()), "record_id string, customer_id string"),
                       second.lineage, "run3")
    lineage = {r.customer_id: r.current_customer_id for r in third.lineage.collect()}
    assert lineage[a] is None and lineage[b] is None and lineage[c] == c


CRM_SCHEMA = ("contact_id string, first_name string, last_name string, email string, phone string, birth_date date, "
              "street string, postcode string, country string, loyalty_card_id string, _is_deleted boolean")
ORDER_SCHEMA = "order_id string, crm_contact_id string, customer_email string, shipping_postcode string"


def _crm(spark, rows):
    return spark.createDataFrame(rows, CRM_SCHEMA)


def test_the_job_keeps_ids_uses_email_history_visitors_and_directives(fresh_database):
    spark = fresh_database
    ann = ("C1", "Ann", "Lee", "ann.old@x.com", None, date(1980, 1, 1), "1 Oak St", "N1 1AA", "GB", None, False)
    _crm(spark, [ann, ("C2", "Bob", "Lee", "bob@x.com", None, date(1979, 2, 2), "1 Oak Street", "N1 1AA", "GB",
                       None, False)]) \
        .write.format("delta").option("delta.enableChangeDataFeed", "true").saveAsTable("bronze.crm_contacts")
    spark.sql("UPDATE bronze.crm_contacts SET email = 'ann@x.com' WHERE contact_id = 'C1'")   # Ann's new email
    spark.createDataFrame([("O1", None, "ANN@x.com", None), ("O2", None, "ann.old@x.com", None)], ORDER_SCHEMA) \
        .write.format("delta").saveAsTable("bronze.shop_orders")
    spark.createDataFrame([("a-1", "C2"), ("a-2", None)], "anonymous_id string, user_id string") \
        .write.format("delta").saveAsTable("bronze.web_events")

    metrics = job.run(spark)
    first = {(r.source_table, r.source_record_id): r.customer_id for r in spark.table(job.IDENTITY_MAP_TABLE).collect()}
    c1, c2 = first[("crm_contacts", "C1")], first[("crm_contacts", "C2")]
    assert first[("shop_orders", "O1")] == first[("shop_orders", "O2")] == c1 != c2   # O2: the email C1 had
    assert metrics["records"] == 4 and metrics["customers"] == 2 and metrics["flagged_clusters"] == 0
    assert {(r.anonymous_id, r.customer_id) for r in spark.table(job.ANONYMOUS_IDS_TABLE).collect()} == {("a-1", c2)}
    members = {r.customer_id: (r.household_id, r.relationship) for r in spark.table(job.HOUSEHOLD_MEMBERS_TABLE).collect()}
    assert members[c1][0] == members[c2][0] and members[c1][1] == members[c2][1] == "family"
    assert (metrics["duplicated_records"], metrics["missing_records"], metrics["mode"]) == (0, 0, "full")
    evidence = {(r.record_id, r.linked_to, r.rule, r.kind, r.customer_id)
                for r in spark.table(job.EVIDENCE_TABLE).collect()}
    assert ("shop_orders:O2", "crm_contacts:C1", "exact_shared_id_unnamed", "email", c1) in evidence

    # Second run (incremental): a new order of Ann's under her CRM id, and the steward splits O2
    # off. Every other id stays; O2 gets a new id, and the history says where it went.
    spark.createDataFrame([("O3", "C1", None, None)], ORDER_SCHEMA).write.format("delta").mode("append") \
        .saveAsTable("bronze.shop_orders")
    spark.createDataFrame([("d1", "split", "shop_orders:O2", None, "not Ann", "steward", None)],
                          job.DIRECTIVES_SCHEMA).write.format("delta").mode("append").saveAsTable(job.DIRECTIVES_TABLE)
    metrics = job.run(spark)
    second = {(r.source_table, r.source_record_id): r.customer_id for r in spark.table(job.IDENTITY_MAP_TABLE).collect()}
    o2 = second.pop(("shop_orders", "O2"))
    assert o2 not in (c1, c2)
    first.pop(("shop_orders", "O2"))
    assert second == {**first, ("shop_orders", "O3"): c1}
    assert (metrics["mode"], metrics["changed_records"]) == ("incremental", 2)   # O3 new, O2 split off
    assert [(r.old_customer_id, r.new_customer_id, r.reason) for r in spark.table(job.HISTORY_TABLE).collect()] == \
        [(c1, o2, "split")]
    lineage = {r.customer_id: r.current_customer_id for r in spark.table(job.LINEAGE_TABLE).collect()}
    assert lineage == {c1: c1, c2: c2, o2: o2}


def test_mapped_exactly_once_finds_duplicates_and_missing_records(spark):
    mapped = spark.createDataFrame([("crm_contacts", "C1", "cus_a"), ("crm_contacts", "C1", "cus_b")],
                                   "source_table string, source_record_id string, customer_id string")
    people = spark.createDataFrame([("crm_contacts", "C1"), ("shop_orders", "O1")],
                                   "source_table string, source_record_id string")
    assert job.mapped_exactly_once(mapped, people) == {"duplicated_records": 1, "missing_records": 1}


def test_cli_resolves_a_csv_with_mixed_formats(spark, tmp_path):
    people = tmp_path / "people.csv"
    people.write_text(
        "id,name,born,mail,tel,street,zip,cc\n"
        "1,Elizabeth Taylor,1985-07-14,liz.taylor@example.com,+44 7700 900123,3 Mill Lane,M1 2AB,GB\n"
        "2,Liz Taylor,14/07/1985,,07700 900123,,,GB\n"                # UK date and national phone
        "3,Robert Brown,07/14/1985,bob.brown@example.com,(512) 555-0100,,,US\n"  # US date
        "4,Bob Brown,,BOB.BROWN@example.com,,,,US\n"
        "5,,,,,,,\n",                                                 # nothing to match on
        encoding="utf-8")
    mapping = tmp_path / "mapping.yml"
    mapping.write_text("record_id: id\nfull_name: name\ndob: born\nemail: mail\nphone: tel\naddress: street\n"
                       "postcode: zip\ncountry: cc\n", encoding="utf-8")
    output = tmp_path / "out" / "clusters.csv"

    counts = resolve_file(spark, people, mapping, output)

    rows = list(csv.DictReader(output.open(encoding="utf-8")))
    assert list(rows[0]) == ["record_id", "customer_id"]
    customer = {r["record_id"]: r["customer_id"] for r in rows}
    assert sorted(customer) == ["1", "2", "3", "4", "5"]
    assert customer["1"] == customer["2"] and customer["3"] == customer["4"]
    assert len({customer["1"], customer["3"], customer["5"]}) == 3
    assert counts == {"records": 5, "customers": 3, "flagged_clusters": 0}


def test_cli_refuses_duplicate_record_ids_and_writes_nothing(spark, tmp_path):
    people = tmp_path / "people.csv"
    people.write_text("id,mail\n1,a@x.com\n1,b@x.com\n", encoding="utf-8")
    mapping = tmp_path / "mapping.yml"
    mapping.write_text("record_id: id\nemail: mail\n", encoding="utf-8")
    with pytest.raises(InputError, match="record_id must be unique"):
        resolve_file(spark, people, mapping, tmp_path / "clusters.csv")
    assert not (tmp_path / "clusters.csv").exists()
