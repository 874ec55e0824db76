"""Scores computed by hand on a small resolution."""

from __future__ import annotations

import pytest

from spark_jobs.identity.scoring import score

TRUTH = [("r1", "P1", "H1"), ("r2", "P1", "H1"), ("r3", "P1", "H1"), ("r4", "P2", "H1"), ("r5", "P3", "H2")]


def _score(spark, predicted, truth=TRUTH):
    return score(spark.createDataFrame(predicted, "record_id string, customer_id string"),
                 spark.createDataFrame(truth, "record_id string, person_id string, household_id string"))


def test_pairwise_bcubed_and_household_merges(spark):
    # r3 is split from its person and merged with r4, another member of the household.
    s = _score(spark, [("r1", "A"), ("r2", "A"), ("r3", "B"), ("r4", "B"), ("r5", "C")])
    assert s.records == 5
    assert (s.pairwise_precision, s.pairwise_recall) == (0.5, pytest.approx(1 / 3))
    assert s.pairwise_f1 == pytest.approx(0.4)
    assert s.bcubed_precision == pytest.approx(0.8)
    assert s.bcubed_recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5)
    assert s.household_pairs_merged == 1


def test_a_perfect_resolution_and_unresolved_records(spark):
    perfect = _score(spark, [("r1", "A"), ("r2", "A"), ("r3", "A"), ("r4", "B"), ("r5", "C")])
    assert (perfect.pairwise_precision, perfect.pairwise_recall, perfect.bcubed_f1, perfect.household_pairs_merged) \
        == (1.0, 1.0, 1.0, 0)
    # r2 and r3 missing from the prediction: each is its own customer.
    partial = _score(spark, [("r1", "A"), ("r4", "B"), ("r5", "C")])
    assert (partial.pairwise_precision, partial.pairwise_recall) == (1.0, 0.0)
