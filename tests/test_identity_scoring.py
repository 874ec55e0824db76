"""Scores computed by hand on a small resolution."""

from __future__ import annotations

import pytest

from spark_jobs.identity.scoring import identifier_bound, score

TRUTH = [("r1", "P1", "H1"), ("r2", "P1", "H1"), ("r3", "P1", "H1"), ("r4", "P2", "H1"), ("r5", "P3", "H2")]


def _score(spark, predicted, truth=TRUTH):
    return score(
        spark.createDataFrame(predicted, "record_id string, customer_id string"),
        spark.createDataFrame(truth, "record_id string, person_id string, household_id string"),
    )


def test_pairwise_bcubed_and_household_merges(spark):
    # r3 is split from its person and merged with r4, another member of the household.
    s = _score(spark, [("r1", "A"), ("r2", "A"), ("r3", "B"), ("r4", "B"), ("r5", "C")])
    assert s.records == 5
    assert (s.pairwise_precision, s.pairwise_recall) == (0.5, pytest.approx(1 / 3))
    assert s.pairwise_f1 == pytest.approx(0.4)
    assert s.bcubed_precision == pytest.approx(0.8)
    assert s.bcubed_recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5)
    assert s.household_pairs_merged == 1
    assert s.household_false_merge_rate == pytest.approx(1 / 3)  # of r1-r4, r2-r4, r3-r4


def test_a_perfect_resolution_and_unresolved_records(spark):
    perfect = _score(spark, [("r1", "A"), ("r2", "A"), ("r3", "A"), ("r4", "B"), ("r5", "C")])
    assert (perfect.pairwise_precision, perfect.pairwise_recall, perfect.bcubed_f1, perfect.household_pairs_merged) == (
        1.0,
        1.0,
        1.0,
        0,
    )
    # r2 and r3 missing from the prediction: each is its own customer.
    partial = _score(spark, [("r1", "A"), ("r4", "B"), ("r5", "C")])
    assert (partial.pairwise_precision, partial.pairwise_recall) == (1.0, 0.0)


def test_a_link_between_two_files_counts_only_pairs_across_them(spark):
    # P1 has a1 (file a), b1 and b2 (file b): 2 true cross pairs; a1-b1 found, b2 alone.
    truth = spark.createDataFrame(
        [("a1", "P1", "a"), ("b1", "P1", "b"), ("b2", "P1", "b"), ("a2", "P2", "a"), ("b3", "P2", "b")],
        "record_id string, person_id string, file string",
    )
    predicted = spark.createDataFrame(
        [("a1", "X"), ("b1", "X"), ("b2", "Y"), ("a2", "Z"), ("b3", "Z")], "record_id string, customer_id string"
    )
    s = score(predicted, truth)
    assert (s.pairwise_precision, s.pairwise_recall) == (1.0, pytest.approx(2 / 3))


def test_the_identifier_bound_links_one_persons_records_that_share_a_value_and_nothing_else(spark):
    truth = spark.createDataFrame(
        [("a", "P1"), ("b", "P1"), ("c", "P1"), ("d", "P1"), ("e", "P2"), ("f", "P2")],
        "record_id string, person_id string",
    )
    identifiers = spark.createDataFrame(
        [
            ("a", "email", "x@example.org"),
            ("b", "email", "x@example.org"),  # a-b: one email
            ("b", "phone", "+441"),
            ("c", "phone", "+441"),  # b-c: one phone, so a-b-c by transitivity
            ("d", "email", "d@example.org"),  # d: nothing shared with its person
            ("e", "phone", "+441"),  # e shares P1's phone: another person, never joined
            ("f", "email", "X@EXAMPLE.ORG"),  # values are compared as given (the job normalises)
            ("e", "crm_contact_id", "C1"),
            ("f", "crm_contact_id", "C1"),  # e-f: one CRM id
        ],
        "record_id string, kind string, value string",
    )
    bound = identifier_bound(identifiers, truth)
    clusters = {}
    for row in bound.collect():
        clusters.setdefault(row.customer_id, set()).add(row.record_id)
    assert sorted(map(sorted, clusters.values())) == [["a", "b", "c"], ["d"], ["e", "f"]]
    scores = score(bound, truth)  # true pairs: 6 of P1 + 1 of P2; found: 3 + 1
    assert (scores.pairwise_precision, scores.pairwise_recall) == (1.0, pytest.approx(4 / 7))
