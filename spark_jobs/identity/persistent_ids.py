"""Persistent customer ids: a customer keeps its id across runs; merges and splits are recorded.

The rule, applied to this run's clusters and the previous run's identity map:

1. every previous id has a *home*: the new cluster holding most of its records (ties: the
   cluster with the smallest label);
2. a cluster keeps, among the previous ids whose home it is, the one with most records there
   (ties: the smallest id). The other ids homed there are **retired into it** (``merged``);
3. a cluster no previous id calls home gets a new id, ``cus_`` + 16 hex digits of the SHA-256
   of its smallest record id (of that and the run id if that id was ever issued before);
4. records of an id that now sit outside its home went to another customer (``split``);
5. a previous id none of whose records is left (all deleted at source) is ``removed``.

Every change is a row of the id history: ``(old_customer_id, new_customer_id, reason,
records, run_id, changed_at)``. The lineage table maps every id ever issued to the id that
carries its records now (itself while it lives, null once removed), so downstream tables
can follow a retired id to its successor in one join, however many merges happened since.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

CUSTOMER_ID_PREFIX = "cus_"


def new_id(seed: Column) -> Column:
    return F.concat(F.lit(CUSTOMER_ID_PREFIX), F.substring(F.sha2(seed, 256), 1, 16))


@dataclass
class Assigned:
    identity: DataFrame  # record_id, customer_id
    history: DataFrame  # old_customer_id, new_customer_id, reason, records
    lineage: DataFrame  # customer_id, current_customer_id


def _first(frame: DataFrame, partition: str, *order: Column) -> DataFrame:
    rank = F.row_number().over(Window.partitionBy(partition).orderBy(*order))
    return frame.withColumn("_rank", rank).where("_rank = 1").drop("_rank")


def assign_ids(clusters: DataFrame, previous: DataFrame | None, lineage: DataFrame | None, run_id: str) -> Assigned:
    """``clusters(record_id, component)``, ``previous(record_id, customer_id)`` (None on the
    first run), ``lineage(customer_id, current_customer_id)`` of earlier runs."""
    spark = clusters.sparkSession
    previous = previous if previous is not None else spark.createDataFrame([], "record_id string, customer_id string")
    lineage = (
        lineage if lineage is not None else spark.createDataFrame([], "customer_id string, current_customer_id string")
    )

    overlap = (
        clusters.join(previous, "record_id")
        .groupBy("customer_id", "component")
        .agg(F.count(F.lit(1)).alias("records"))
        .localCheckpoint(eager=True)
    )
    homes = _first(overlap, "customer_id", F.desc("records"), "component")
    survivors = _first(homes, "component", F.desc("records"), "customer_id").select(
        "component", F.col("customer_id").alias("survivor")
    )

    # New ids for clusters nobody calls home; re-seeded with the run id if the id was issued before.
    issued = lineage.select("customer_id").unionByName(previous.select("customer_id")).distinct()
    orphans = (
        clusters.groupBy("component")
        .agg(F.min("record_id").alias("seed_record"))
        .join(survivors, "component", "left_anti")
        .withColumn("candidate", new_id(F.col("seed_record")))
    )
    reused = orphans.join(issued.withColumnRenamed("customer_id", "candidate"), "candidate", "left_semi")
    fresh = (
        orphans.join(reused.select("component"), "component", "left_anti")
        .select("component", "candidate")
        .unionByName(
            reused.select("component", new_id(F.concat_ws("|", "seed_record", F.lit(run_id))).alias("candidate"))
        )
    )
    id_of_component = (
        survivors.select("component", F.col("survivor").alias("customer_id"))
        .unionByName(fresh.select("component", F.col("candidate").alias("customer_id")))
        .localCheckpoint(eager=True)
    )
    identity = clusters.join(id_of_component, "component").select("record_id", "customer_id")

    merged = (
        homes.join(survivors, "component")
        .where(F.col("customer_id") != F.col("survivor"))
        .select(
            F.col("customer_id").alias("old_customer_id"),
            F.col("survivor").alias("new_customer_id"),
            F.lit("merged").alias("reason"),
            "records",
        )
    )
    moved = (
        overlap.join(homes.select("customer_id", F.col("component").alias("home")), "customer_id")
        .where(F.col("component") != F.col("home"))
        .join(id_of_component.withColumnRenamed("customer_id", "new_customer_id"), "component")
        .select(
            F.col("customer_id").alias("old_customer_id"), "new_customer_id", F.lit("split").alias("reason"), "records"
        )
    )
    removed = (
        previous.select("customer_id")
        .distinct()
        .join(homes.select("customer_id"), "customer_id", "left_anti")
        .select(
            F.col("customer_id").alias("old_customer_id"),
            F.lit(None).cast("string").alias("new_customer_id"),
            F.lit("removed").alias("reason"),
            F.lit(0).cast("long").alias("records"),
        )
    )
    history = merged.unionByName(moved).unionByName(removed).localCheckpoint(eager=True)

    # Lineage: where each earlier id's current id went this run, plus the new ids themselves.
    retired = history.where(F.col("reason").isin("merged", "removed")).select(
        F.col("old_customer_id").alias("current_customer_id"),
        F.col("new_customer_id").alias("successor"),
        F.lit(True).alias("retired"),
    )
    known = lineage.unionByName(
        previous.select("customer_id", F.col("customer_id").alias("current_customer_id"))
    ).dropDuplicates(["customer_id"])
    followed = known.join(retired, "current_customer_id", "left").select(
        "customer_id",
        F.when(F.col("retired"), F.col("successor"))
        .otherwise(F.col("current_customer_id"))
        .alias("current_customer_id"),
    )
    current = id_of_component.select("customer_id", F.col("customer_id").alias("current_customer_id"))
    new_lineage = followed.join(current.select("customer_id"), "customer_id", "left_anti").unionByName(current)
    return Assigned(identity, history, new_lineage)
