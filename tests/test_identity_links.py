"""Deterministic links: strong identifiers link people, never households."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from spark_jobs.identity.links import deterministic_links

PEOPLE_SCHEMA = "record_id string, first_name string, birth_date date"


def _links(spark, identifiers, people):
    ids = spark.createDataFrame(identifiers, "record_id string, kind string, value string")
    persons = spark.createDataFrame(people, PEOPLE_SCHEMA)
    return deterministic_links(ids, persons).select("record_id", "linked_to", "rule")


def test_personal_ids_link_every_record_that_carries_them_as_a_star(spark):
    links = _links(
        spark,
        [
            ("crm:1", "crm_contact_id", "C1"),
            ("ord:7", "crm_contact_id", "C1"),
            ("ord:9", "crm_contact_id", "C1"),
            ("pos:3", "loyalty_card_id", "L5"),
            ("crm:1", "loyalty_card_id", "L5"),
            ("web:4", "user_id", None),
        ],
        [("crm:1", "robert", None)],
    )
    assertDataFrameEqual(
        links,
        [
            Row(record_id="ord:7", linked_to="crm:1", rule="exact_personal_id"),
            Row(record_id="ord:9", linked_to="crm:1", rule="exact_personal_id"),
            Row(record_id="pos:3", linked_to="crm:1", rule="exact_personal_id"),
        ],
    )


def test_a_household_sharing_a_phone_and_an_email_is_not_merged(spark):
    # Same landline and family mailbox, different first names and birth dates: two people.
    people = [("crm:1", "anna", date(1970, 1, 2)), ("crm:2", "jonas", date(2001, 5, 6))]
    identifiers = [
        ("crm:1", "phone", "+441234567890"),
        ("crm:2", "phone", "+441234567890"),
        ("crm:1", "email", "smiths@example.org"),
        ("crm:2", "email", "smiths@example.org"),
        ("ord:5", "email", "smiths@example.org"),
    ]  # an order on the family email: ambiguous
    assert _links(spark, identifiers, [*people, ("ord:5", None, None)]).collect() == []


def test_a_shared_email_links_the_same_first_name_and_an_unnamed_order_to_that_person(spark):
    people = [("crm:2", "robert", date(1980, 3, 4)), ("sup:8", "robert", None), ("ord:5", None, None)]
    identifiers = [("crm:2", "email", "bob@x.com"), ("sup:8", "email", "bob@x.com"), ("ord:5", "email", "bob@x.com")]
    assertDataFrameEqual(
        _links(spark, identifiers, people),
        [
            Row(record_id="sup:8", linked_to="crm:2", rule="exact_shared_id_same_name"),
            Row(record_id="ord:5", linked_to="crm:2", rule="exact_shared_id_unnamed"),
        ],
    )


def test_father_and_son_with_one_name_and_one_phone_split_on_birth_date(spark):
    people = [
        ("a", "john", date(1950, 1, 1)),
        ("b", "john", date(1980, 1, 1)),
        ("c", "john", date(1980, 1, 1)),
        ("d", "john", None),
        ("e", None, None),
    ]
    identifiers = [(r, "phone", "+15125550147") for r in "abcde"]
    # d (no birth date) and e (no name) could be either John: not linked.
    assertDataFrameEqual(
        _links(spark, identifiers, people), [Row(record_id="c", linked_to="b", rule="exact_shared_id_same_name_dob")]
    )


def test_an_unknown_identifier_kind_is_refused(spark):
    with pytest.raises(ValueError, match=r"unknown identifier kind\(s\) \['surname'\]"):
        _links(spark, [("a", "surname", "smith")], [])
