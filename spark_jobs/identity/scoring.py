"""Score a resolution against the truth: pairwise precision/recall/F1 and B-cubed.

Both are computed from the counts of records per (predicted cluster, true person) cell, so
the cost grows with the number of records, never with the number of pairs:

- pairwise: true positives = sum over cells of C(n, 2); predicted pairs = sum over clusters
  of C(n, 2); true pairs = sum over people of C(n, 2);
- B-cubed: for each record, precision = |its cluster ∩ its person| / |its cluster| and recall
  = |its cluster ∩ its person| / |its person|, averaged over records.

``household_pairs_merged`` counts predicted pairs of two different people of one household:
the error the platform must never make; ``household_false_merge_rate`` divides it by the
pairs of different people who share a household.

For a link between files (FEBRL4: every record of file A has its duplicate in file B), a
``file`` column in the truth restricts the pairwise counts to pairs across two files:
C(n, 2) becomes (n² - sum over files of n_f²) / 2.

:func:`identifier_bound` is a yardstick for recall, not a matcher (it reads the truth): the
clusters of a resolution that links every two records of one person sharing an identifier
value, and nothing else. Its recall is what identifiers alone allow on a data set; what a
matcher finds beyond it comes from names, dates and addresses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs.identity.clusters import connected_components


@dataclass(frozen=True)
class Scores:
    records: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    household_pairs_merged: int
    household_false_merge_rate: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _pairs(n):
    return n * (n - 1) / 2


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _pair_count(joined: DataFrame, keys: list[str], cross_file: bool) -> DataFrame:
    """``keys`` + ``pairs``: record pairs inside each group (across two files with ``cross_file``)."""
    if not cross_file:
        return joined.groupBy(*keys).agg(_pairs(F.count(F.lit(1))).alias("pairs"))
    per_file = joined.groupBy(*keys, "file").agg(F.count(F.lit(1)).alias("n_f"))
    return per_file.groupBy(*keys).agg(
        ((F.sum("n_f") * F.sum("n_f") - F.sum(F.col("n_f") * F.col("n_f"))) / 2).alias("pairs")
    )


def score(predicted: DataFrame, truth: DataFrame) -> Scores:
    """``predicted(record_id, customer_id)`` and ``truth(record_id, person_id[, household_id][, file])``.
    Records missing from ``predicted`` count as their own singleton cluster."""
    joined = truth.join(predicted, "record_id", "left").withColumn(
        "customer_id", F.coalesce("customer_id", F.concat(F.lit("unresolved:"), "record_id"))
    )
    has_households = "household_id" in truth.columns
    cross_file = "file" in truth.columns
    cells = joined.groupBy("customer_id", "person_id").agg(F.count(F.lit(1)).alias("n"))
    clusters = joined.groupBy("customer_id").agg(F.count(F.lit(1)).alias("cluster_size"))
    people = joined.groupBy("person_id").agg(F.count(F.lit(1)).alias("person_size"))
    per_cell = cells.join(clusters, "customer_id").join(people, "person_id")
    sums = per_cell.agg(
        F.sum(F.col("n") * F.col("n") / F.col("cluster_size")).alias("b3_precision"),
        F.sum(F.col("n") * F.col("n") / F.col("person_size")).alias("b3_recall"),
        F.sum("n").alias("records"),
    ).first()
    tp = _pair_count(joined, ["customer_id", "person_id"], cross_file).agg(F.sum("pairs")).first()[0] or 0
    predicted_pairs = _pair_count(joined, ["customer_id"], cross_file).agg(F.sum("pairs")).first()[0] or 0
    true_pairs = _pair_count(joined, ["person_id"], cross_file).agg(F.sum("pairs")).first()[0] or 0
    records = int(sums["records"] or 0)
    precision = tp / predicted_pairs if predicted_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    b3_precision = (sums["b3_precision"] or 0) / records if records else 1.0
    b3_recall = (sums["b3_recall"] or 0) / records if records else 1.0

    household_pairs, household_rate = 0, 0.0
    if has_households:
        # Pairs inside a cluster and a household, minus those of the same person.
        same_person = _pair_count(joined, ["customer_id", "person_id"], False).agg(F.sum("pairs")).first()[0] or 0
        by_household = _pair_count(joined, ["customer_id", "household_id"], False).agg(F.sum("pairs")).first()[0] or 0
        household_pairs = int(by_household - same_person)
        # Pairs of records of two different people of one household.
        in_household = _pair_count(joined, ["household_id"], False).agg(F.sum("pairs")).first()[0] or 0
        person_pairs = _pair_count(joined, ["person_id"], False).agg(F.sum("pairs")).first()[0] or 0
        different_people = in_household - person_pairs
        household_rate = household_pairs / different_people if different_people else 0.0

    return Scores(
        records,
        precision,
        recall,
        _f1(precision, recall),
        b3_precision,
        b3_recall,
        _f1(b3_precision, b3_recall),
        household_pairs,
        household_rate,
    )


def identifier_bound(identifiers: DataFrame, truth: DataFrame) -> DataFrame:
    """``(record_id, customer_id)`` for every record of ``truth(record_id, person_id)``: two records
    of the same person that share an identifier value in ``identifiers(record_id, kind, value)``
    (the identity job's ``silver._identity_identifiers``) are one cluster, transitively. Records
    of different people are never joined, whatever they share."""
    same_person = identifiers.join(truth.select("record_id", "person_id"), "record_id")
    key = ["person_id", "kind", "value"]
    anchors = same_person.groupBy(*key).agg(F.min("record_id").alias("anchor"))
    edges = same_person.join(anchors, key).select(F.col("record_id").alias("src"), F.col("anchor").alias("dst"))
    components = connected_components(truth.select(F.col("record_id").alias("id")), edges)
    return components.select(F.col("id").alias("record_id"), F.col("component").alias("customer_id"))
