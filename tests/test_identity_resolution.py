"""Resolution end to end on small inputs: households, directives, the size guard, persistent
ids, the silver job twice, and the standalone CLI."""

from __future__ import annotations

import csv
from datetime import date

import pytest
from conftest import write_lines
from pyspark.sql import functions as F

from spark_jobs.identity import resolve as job
from spark_jobs.identity.__main__ import InputError, resolve_file
from spark_jobs.identity.persistent_ids import assign_ids
from spark_jobs.identity.persons import identifiers
from spark_jobs.identity.records import standard_records
from spark_jobs.identity.resolution import apply_directives, guard_oversized, resolve_records
from spark_jobs.ingest.bronze import ingest_contract
from spark_jobs.ingest.contracts import get_contract

MAPPING = {
    "record_id": "id",
    "first_name": "first",
    "last_name": "last",
    "dob": "dob",
    "email": "email",
    "phone": "phone",
    "address": "street",
    "postcode": "zip",
    "country": "country",
}
PEOPLE = (
    "id string, first string, last string, dob string, email string, phone string, street string, zip string, "
    "country string"
)


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
    assert ("A3", "A1", "exact_shared_id_same_name", "phone") in links  # same phone and first name
    assert ("A4", "A3", "exact_shared_id_same_name", "email") in links  # Jack = John
    assert not [link for link in links if "A2" in link[:2]], "Mary shares the landline, not the person"


def test_split_directive_detaches_and_link_directive_joins(spark):
    directives = spark.createDataFrame(
        [
            ("split", "A3", None),  # the steward says A3 is not John after all
            ("link", "Z9", "A2"),  # and Z9 is Mary
        ],
        "action string, record_id string, other_record_id string",
    )
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
    links = spark.createDataFrame(
        [
            ("R1", "R0", "exact_personal_id"),
            ("R2", "R1", "fellegi_sunter"),
            ("R3", "R2", "fellegi_sunter"),
            ("R4", "R3", "exact_personal_id"),
            ("R5", "R4", "exact_personal_id"),
        ],
        "record_id string, linked_to string, rule string",
    )
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
    first = assign_ids(
        spark.createDataFrame(
            [("a1", "a1"), ("a2", "a1"), ("b1", "b1"), ("c1", "c1"), ("c2", "c1")], "record_id string, component string"
        ),
        None,
        None,
        "run1",
    )
    ids1 = _ids(first)
    a, b, c = ids1["a1"], ids1["b1"], ids1["c1"]
    assert len({a, b, c}) == 3 and ids1["a2"] == a and all(x.startswith("cus_") for x in (a, b, c))
    assert first.history.count() == 0

    # Next run: a new record joins a and b (a has more records, so a survives); c splits in two.
    clusters = spark.createDataFrame(
        [("a1", "a1"), ("a2", "a1"), ("b1", "a1"), ("n1", "a1"), ("c1", "c1"), ("c2", "c2")],
        "record_id string, component string",
    )
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
    third = assign_ids(
        spark.createDataFrame([("c1", "c1"), ("c2", "c2")], "record_id string, component string"),
        spark.createDataFrame(list(ids2.items()), "record_id string, customer_id string"),
        second.lineage,
        "run3",
    )
    lineage = {r.customer_id: r.current_customer_id for r in third.lineage.collect()}
    assert lineage[a] is None and lineage[b] is None and lineage[c] == c


CRM_SCHEMA = (
    "contact_id string, first_name string, last_name string, email string, phone string, birth_date date, "
    "street string, postcode string, country string, loyalty_card_id string, _is_deleted boolean"
)
ORDER_SCHEMA = "order_id string, crm_contact_id string, customer_email string, shipping_postcode string"


def _crm(spark, rows):
    return spark.createDataFrame(rows, CRM_SCHEMA)


def test_the_job_keeps_ids_uses_email_history_visitors_and_directives(fresh_database):
    spark = fresh_database
    ann = ("C1", "Ann", "Lee", "ann.old@x.com", None, date(1980, 1, 1), "1 Oak St", "N1 1AA", "GB", None, False)
    _crm(
        spark,
        [ann, ("C2", "Bob", "Lee", "bob@x.com", None, date(1979, 2, 2), "1 Oak Street", "N1 1AA", "GB", None, False)],
    ).write.format("delta").option("delta.enableChangeDataFeed", "true").saveAsTable("bronze.crm_contacts")
    spark.sql("UPDATE bronze.crm_contacts SET email = 'ann@x.com' WHERE contact_id = 'C1'")  # Ann's new email
    spark.createDataFrame(
        [("O1", None, "ANN@x.com", None), ("O2", None, "ann.old@x.com", None)], ORDER_SCHEMA
    ).write.format("delta").saveAsTable("bronze.shop_orders")
    spark.createDataFrame([("a-1", "C2"), ("a-2", None)], "anonymous_id string, user_id string").write.format(
        "delta"
    ).saveAsTable("bronze.web_events")

    metrics = job.run(spark)
    first = {(r.source_table, r.source_record_id): r.customer_id for r in spark.table(job.IDENTITY_MAP_TABLE).collect()}
    c1, c2 = first[("crm_contacts", "C1")], first[("crm_contacts", "C2")]
    assert first[("shop_orders", "O1")] == first[("shop_orders", "O2")] == c1 != c2  # O2: the email C1 had
    assert metrics["records"] == 4 and metrics["customers"] == 2 and metrics["flagged_clusters"] == 0
    assert metrics["links_dropped_by_cluster_check"] == 0
    assert {(r.anonymous_id, r.customer_id) for r in spark.table(job.ANONYMOUS_IDS_TABLE).collect()} == {("a-1", c2)}
    members = {
        r.customer_id: (r.household_id, r.relationship) for r in spark.table(job.HOUSEHOLD_MEMBERS_TABLE).collect()
    }
    assert members[c1][0] == members[c2][0] and members[c1][1] == members[c2][1] == "family"
    assert (metrics["duplicated_records"], metrics["missing_records"], metrics["mode"]) == (0, 0, "full")
    evidence = {
        (r.record_id, r.linked_to, r.rule, r.kind, r.customer_id) for r in spark.table(job.EVIDENCE_TABLE).collect()
    }
    assert ("shop_orders:O2", "crm_contacts:C1", "exact_shared_id_unnamed", "email", c1) in evidence

    # Second run (incremental): a new order of Ann's under her CRM id, and the steward splits O2
    # off. Every other id stays; O2 gets a new id, and the history says where it went.
    spark.createDataFrame([("O3", "C1", None, None)], ORDER_SCHEMA).write.format("delta").mode("append").saveAsTable(
        "bronze.shop_orders"
    )
    spark.createDataFrame(
        [("d1", "split", "shop_orders:O2", None, "not Ann", "steward", None)], job.DIRECTIVES_SCHEMA
    ).write.format("delta").mode("append").saveAsTable(job.DIRECTIVES_TABLE)
    metrics = job.run(spark)
    second = {
        (r.source_table, r.source_record_id): r.customer_id for r in spark.table(job.IDENTITY_MAP_TABLE).collect()
    }
    o2 = second.pop(("shop_orders", "O2"))
    assert o2 not in (c1, c2)
    first.pop(("shop_orders", "O2"))
    assert second == {**first, ("shop_orders", "O3"): c1}
    assert (metrics["mode"], metrics["changed_records"]) == ("incremental", 2)  # O3 new, O2 split off
    assert [(r.old_customer_id, r.new_customer_id, r.reason) for r in spark.table(job.HISTORY_TABLE).collect()] == [
        (c1, o2, "split")
    ]
    lineage = {r.customer_id: r.current_customer_id for r in spark.table(job.LINEAGE_TABLE).collect()}
    assert lineage == {c1: c1, c2: c2, o2: o2}


def test_orders_under_each_email_a_contact_ever_had_find_the_contact(fresh_database, tmp_path):
    """Ann's contact was created with one email and changed it twice, all three changes in one
    delivery (so bronze.crm_contacts holds only the newest). An order under each address, with
    no name and no CRM id, joins her; a cardless store purchase stays anonymous."""
    spark, landing = fresh_database, tmp_path / "landing"
    header = (
        "op,change_ts,contact_id,first_name,last_name,email,phone,birth_date,street,city,postcode,country,"
        "loyalty_card_id,created_at"
    )
    row = "{op},{ts},C1,Ann,Lee,{email},{phone},1980-01-01,1 Oak St,London,N1 1AA,GB,,2024-01-01T00:00:00Z"
    write_lines(
        landing / "crm" / "contacts" / "2026-01-02" / "changes.csv",
        [
            header,
            row.format(op="I", ts="2025-01-01T00:00:00Z", email="ann.first@x.com", phone="07700 900001"),
            row.format(op="U", ts="2025-06-01T00:00:00Z", email="ann.second@y.com", phone="07700 900001"),
            row.format(op="U", ts="2025-09-01T00:00:00Z", email="ann@z.com", phone="07700 900002"),
        ],
    )
    ingest_contract(spark, get_contract("crm_contacts"), landing.as_uri(), "b1")
    assert spark.table("bronze.crm_contacts").count() == 1 and spark.table("bronze.crm_contacts_history").count() == 3
    spark.createDataFrame(
        [
            ("O1", None, "ann.first@x.com", None),
            ("O2", None, "Ann.Second@y.com", None),
            ("O3", None, "ann@z.com", None),
        ],
        ORDER_SCHEMA,
    ).write.format("delta").saveAsTable("bronze.shop_orders")
    spark.createDataFrame([("T1", None), ("T2", "")], "transaction_id string, loyalty_card_id string").write.format(
        "delta"
    ).saveAsTable("bronze.pos_transactions")

    metrics = job.run(spark)
    mapped = {
        (r.source_table, r.source_record_id): r.customer_id for r in spark.table(job.IDENTITY_MAP_TABLE).collect()
    }
    ann = mapped[("crm_contacts", "C1")]
    assert {mapped[("shop_orders", o)] for o in ("O1", "O2", "O3")} == {ann}
    assert not [key for key in mapped if key[0] == "pos_transactions"], "a cardless purchase is nobody"
    assert (metrics["records"], metrics["customers"]) == (4, 1)
    phones = {r.value for r in job.crm_history_identifiers(spark).where("kind = 'phone'").collect()}
    assert phones == {"+447700900001", "+447700900002"}


def test_mapped_exactly_once_finds_duplicates_and_missing_records(spark):
    mapped = spark.createDataFrame(
        [("crm_contacts", "C1", "cus_a"), ("crm_contacts", "C1", "cus_b")],
        "source_table string, source_record_id string, customer_id string",
    )
    people = spark.createDataFrame(
        [("crm_contacts", "C1"), ("shop_orders", "O1")], "source_table string, source_record_id string"
    )
    assert job.mapped_exactly_once(mapped, people) == {"duplicated_records": 1, "missing_records": 1}


def test_cli_resolves_a_csv_with_mixed_formats(spark, tmp_path):
    people = tmp_path / "people.csv"
    people.write_text(
        "id,name,born,mail,tel,street,zip,cc\n"
        "1,Elizabeth Taylor,1985-07-14,liz.taylor@example.com,+44 7700 900123,3 Mill Lane,M1 2AB,GB\n"
        "2,Liz Taylor,14/07/1985,,07700 900123,,,GB\n"  # UK date and national phone
        "3,Robert Brown,07/14/1985,bob.brown@example.com,(512) 555-0100,,,US\n"  # US date
        "4,Bob Brown,,BOB.BROWN@example.com,,,,US\n"
        "5,,,,,,,\n",  # nothing to match on
        encoding="utf-8",
    )
    mapping = tmp_path / "mapping.yml"
    mapping.write_text(
        "record_id: id\nfull_name: name\ndob: born\nemail: mail\nphone: tel\naddress: street\n"
        "postcode: zip\ncountry: cc\n",
        encoding="utf-8",
    )
    output = tmp_path / "out" / "clusters.csv"

    counts = resolve_file(spark, people, mapping, output)

    rows = list(csv.DictReader(output.open(encoding="utf-8")))
    assert list(rows[0]) == ["record_id", "customer_id"]
    customer = {r["record_id"]: r["customer_id"] for r in rows}
    assert sorted(customer) == ["1", "2", "3", "4", "5"]
    assert customer["1"] == customer["2"] and customer["3"] == customer["4"]
    assert len({customer["1"], customer["3"], customer["5"]}) == 3
    assert counts == {"records": 5, "customers": 3, "flagged_clusters": 0, "links": 4}


def test_cli_refuses_duplicate_record_ids_and_writes_nothing(spark, tmp_path):
    people = tmp_path / "people.csv"
    people.write_text("id,mail\n1,a@x.com\n1,b@x.com\n", encoding="utf-8")
    mapping = tmp_path / "mapping.yml"
    mapping.write_text("record_id: id\nemail: mail\n", encoding="utf-8")
    with pytest.raises(InputError, match="record_id must be unique"):
        resolve_file(spark, people, mapping, tmp_path / "clusters.csv")
    assert not (tmp_path / "clusters.csv").exists()


def _people(n: int) -> list[tuple]:
    """``n`` unrelated people, each in two records: one clean, one with a nickname, a typo, a
    missing birth date or another date format, and their own email and mobile."""
    first = ["Robert", "Elizabeth", "William", "Katherine", "Michael", "Olivia", "Daniel", "Sophia", "Thomas", "Grace"]
    last = ["Brown", "Garcia", "Kowalski", "Nguyen", "Dubois", "Rossi", "Jensen", "Okafor", "Haddad", "Silva"]
    nick = {"Robert": "Bob", "Elizabeth": "Liz", "William": "Bill", "Katherine": "Kate", "Michael": "Mike"}
    rows = []
    for i in range(n):
        given, family = first[i % 10], last[(i * 3 + i // 10) % 10]
        dob = f"19{50 + i % 45}-{1 + i % 12:02d}-{1 + i % 27:02d}"
        email, phone, street, zip_ = (
            f"p{i}.{family.lower()}@example.com",
            f"+44 7700 9{i:05d}",
            f"{i + 1} Mill Lane",
            f"M{i % 9 + 1} 2AB",
        )
        rows.append((f"P{i:02d}a", given, family, dob, email, phone, street, zip_, "GB"))
        variant = i % 4
        f2 = (
            nick.get(given, given)
            if variant == 0
            else (given[:2] + given[3] + given[2] + given[4:] if variant == 1 else given)
        )
        dob2 = None if variant == 2 else (f"{dob[8:]}/{dob[5:7]}/{dob[:4]}" if variant == 3 else dob)
        rows.append(
            (
                f"P{i:02d}b",
                f2,
                family if variant != 1 else family.upper(),
                dob2,
                None if variant % 2 else email,
                phone if variant != 0 else None,
                street,
                zip_,
                "GB",
            )
        )
    return rows


SMITHS = [  # one household at 4 Elm Road: parents, a junior named after his father, twins
    ("S1a", "John", "Smith", "1950-02-03", "john.smith@example.com", "020 7946 0001", "4 Elm Road", "SW1A 1AA", "GB"),
    ("S1b", "Jon", "Smith", "03/02/1950", None, "020 7946 0001", "4 Elm Rd", "SW1A 1AA", "GB"),
    ("S2a", "Mary", "Smith", "1952-07-08", "mary.smith@example.com", "020 7946 0001", "4 Elm Road", "SW1A 1AA", "GB"),
    ("S2b", "Mary", "Smith", "1952-07-08", None, None, "4 Elm Road", "SW1A1AA", "GB"),
    ("S3a", "John", "Smith", "1980-06-07", "js80@example.com", "020 7946 0001", "4 Elm Road", "SW1A 1AA", "GB"),
    ("S3b", "John", "Smith", "07/06/1980", None, None, "4 Elm Road", "SW1A 1AA", "GB"),
    ("S4a", "Anna", "Smith", "1985-01-01", "anna.s@example.com", "020 7946 0001", "4 Elm Road", "SW1A 1AA", "GB"),
    ("S4b", "Ana", "Smith", "01/01/1985", None, None, "4 Elm Road", "SW1A 1AA", "GB"),
    ("S5a", "Emma", "Smith", "1985-01-01", "emma.s@example.com", "020 7946 0001", "4 Elm Road", "SW1A 1AA", "GB"),
    ("S5b", "Emma", "Smith", "1985-01-01", None, None, "4 Elm Rd", "SW1A 1AA", "GB"),
]


def test_a_household_of_parents_twins_and_a_junior_stays_five_customers(spark):
    clusters, resolved = _resolve(spark, _people(40) + SMITHS)
    smiths = [c for c in clusters if c[0].startswith("S")]
    assert smiths == [["S1a", "S1b"], ["S2a", "S2b"], ["S3a", "S3b"], ["S4a", "S4b"], ["S5a", "S5b"]]
    others = [c for c in clusters if c[0].startswith("P")]
    assert others == [[f"P{i:02d}a", f"P{i:02d}b"] for i in range(40)]
    assert resolved.model.home_prior < 0.9, "pairs at one address are not all one person here"


def test_an_unnamed_record_joins_when_every_named_holder_of_its_email_became_one_customer(spark):
    """F1 and F2 are one man entered twice (a typo in the first name; one loyalty card), both on
    f@x.com: O1, with only that email, is his. A and B are a couple on one family mailbox: O2 on
    it stays alone. O3 carries both emails: it could be either, so it stays alone too."""
    mapping = {**MAPPING, "identifier_card": "card"}
    rows = [
        ("F1", "Frederick", "Jensen", "1946-05-15", "f@x.com", None, None, None, "GB", "L1"),
        ("F2", "Frederck", "Jensen", None, "f@x.com", None, None, None, "GB", "L1"),
        ("A", "Anna", "Lee", "1980-01-01", "lees@x.com", None, None, None, "GB", None),
        ("B", "Bob", "Lee", "1979-02-02", "lees@x.com", None, None, None, "GB", None),
        ("O1", None, None, None, "F@x.com", None, None, None, None, None),
        ("O2", None, None, None, "lees@x.com", None, None, None, None, None),
        ("O3", None, None, None, "lees@x.com", None, None, None, None, None),
    ]
    frame = spark.createDataFrame(rows, PEOPLE + ", card string")
    records = standard_records(frame, mapping)
    ids = identifiers(records)
    # O3's second email: one record with two values of one kind.
    ids = ids.unionByName(ids.where("record_id = 'O1'").withColumn("record_id", F.lit("O3")))
    resolved = resolve_records(records, ids)
    groups: dict[str, set[str]] = {}
    for row in resolved.clusters.collect():
        groups.setdefault(row.component, set()).add(row.record_id)
    assert sorted(map(sorted, groups.values())) == [["A"], ["B"], ["F1", "F2", "O1"], ["O2"], ["O3"]]
    settled = {(r.record_id, r.linked_to, r.rule) for r in resolved.links.collect()}
    assert ("O1", "F1", "exact_shared_id_one_customer") in settled


def test_a_chain_of_weak_links_is_split_on_its_weakest_bridge(spark):
    from spark_jobs.identity.cluster_check import split_contradictions

    # A (John, 1950) - B (J., no date) - C (Mary, 1985) - D: B-C is the weakest link between
    # two records that contradict (first names and birth dates both differ); C-D is a personal id.
    records = standard_records(
        spark.createDataFrame(
            [
                ("A", "John", "Smith", "1950-02-03", None, None, "4 Elm Road", "SW1A 1AA", "GB"),
                ("B", "J", "Smith", None, None, None, "4 Elm Road", "SW1A 1AA", "GB"),
                ("C", "Mary", "Smith", "1985-01-01", None, None, "4 Elm Road", "SW1A 1AA", "GB"),
                ("D", None, None, None, "m@x.com", None, None, None, "GB"),
            ],
            PEOPLE,
        ),
        MAPPING,
    )
    links = spark.createDataFrame(
        [("B", "A", "fellegi_sunter", 8.0), ("C", "B", "fellegi_sunter", 3.0), ("D", "C", "exact_personal_id", None)],
        "record_id string, linked_to string, rule string, match_weight double",
    )
    clusters = spark.createDataFrame([(r, "A") for r in "ABCD"], "record_id string, component string")
    split, kept, dropped = split_contradictions(records, links, clusters, None, ("exact_personal_id",))
    groups: dict[str, set[str]] = {}
    for row in split.collect():
        groups.setdefault(row.component, set()).add(row.record_id)
    assert sorted(sorted(g) for g in groups.values()) == [["A", "B"], ["C", "D"]]
    assert dropped == 1 and ("C", "B") not in {(r.record_id, r.linked_to) for r in kept.collect()}


def test_cli_writes_the_evidence_and_links_extra_identifiers(spark, tmp_path):
    people = tmp_path / "people.csv"
    people.write_text(
        "id,first,last,born,passport\n"
        "1,Anna,Kowalski,1980-03-04,X123\n"
        "2,Anna,Kowalsky,04/03/1980,\n"  # a typo in the surname, another date format
        "3,Zoe,Nguyen,,X123\n"  # only the passport says she is record 1
        "4,Piotr,Nowak,1975-01-01,Y9\n",
        encoding="utf-8",
    )
    mapping = tmp_path / "mapping.yml"
    mapping.write_text(
        "record_id: id\nfirst_name: first\nlast_name: last\ndob: born\nidentifier_passport: passport\n",
        encoding="utf-8",
    )
    output, evidence = tmp_path / "clusters.csv", tmp_path / "pairs.csv"

    counts = resolve_file(spark, people, mapping, output, evidence_path=evidence)

    customer = {r["record_id"]: r["customer_id"] for r in csv.DictReader(output.open(encoding="utf-8"))}
    assert customer["1"] == customer["2"] == customer["3"] != customer["4"]
    rows = list(csv.DictReader(evidence.open(encoding="utf-8")))
    assert list(rows[0]) == [
        "record_id",
        "linked_to",
        "rule",
        "identifier_kind",
        "match_weight",
        "match_probability",
        "first_name",
        "last_name",
        "birth_date",
        "email",
        "phone",
        "location",
        "names_swapped",
    ]
    by_pair = {(r["record_id"], r["linked_to"]): r for r in rows}
    assert by_pair[("3", "1")]["rule"] == "exact_personal_id"
    assert by_pair[("3", "1")]["identifier_kind"] == "identifier_passport"
    fuzzy = by_pair[("2", "1")]
    assert (fuzzy["rule"], fuzzy["first_name"], fuzzy["last_name"], fuzzy["birth_date"]) == (
        "fellegi_sunter",
        "exact",
        "close",
        "exact",
    )
    assert float(fuzzy["match_probability"]) >= 0.5
    assert counts["links"] == len(rows) == 2

    # A threshold above every pair's probability leaves only the identifier's link.
    resolve_file(spark, people, mapping, output, threshold=0.999999, evidence_path=evidence)
    assert [r["rule"] for r in csv.DictReader(evidence.open(encoding="utf-8"))] == ["exact_personal_id"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--threshold", "1.5"], "--threshold is a match probability strictly between 0 and 1"),
        (["--threshold", "0"], "--threshold is a match probability strictly between 0 and 1"),
    ],
)
def test_cli_refuses_a_threshold_outside_zero_and_one(tmp_path, capsys, argv, message):
    from spark_jobs.identity.__main__ import main

    (tmp_path / "p.csv").write_text("id\n1\n", encoding="utf-8")
    (tmp_path / "m.yml").write_text("record_id: id\n", encoding="utf-8")
    code = main(
        [
            "resolve",
            "--input",
            str(tmp_path / "p.csv"),
            "--mapping",
            str(tmp_path / "m.yml"),
            "--output",
            str(tmp_path / "out.csv"),
            *argv,
        ]
    )
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()
