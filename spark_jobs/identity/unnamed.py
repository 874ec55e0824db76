"""Unnamed records on a shared email or phone whose named holders all became one customer.

A record without a name (an order, a survey answer: an email and little else) joins the
person named on its email or phone only when that person is unambiguous (links.py): if the
named records on the value disagree on the first name ("Frederick" and "Frederck", two CRM
entries of one man) it is left alone, since it might be a family mailbox. Once clustering has
decided, that doubt is often settled: every named holder of the value is one customer. Then
the unnamed record is that customer's too (rule ``exact_shared_id_one_customer``).

It stays alone when its value's named holders are several customers (a household), when its
values point to different customers, or when its cluster already holds a named record.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from spark_jobs.identity.links import SHAREABLE_KINDS

RULE = "exact_shared_id_one_customer"


def one_customer_links(identifiers: DataFrame, records: DataFrame, clusters: DataFrame) -> DataFrame:
    """``(record_id, linked_to, rule, kind, value)``: a link from each unnamed record of an
    unnamed-only cluster to the smallest named record holding its value, when the named
    holders of all the values in that cluster are one (other) cluster."""
    named = records.where(F.col("first_name").isNotNull()).select("record_id")
    shared = (
        identifiers.where(F.col("kind").isin(*SHAREABLE_KINDS))
        .select("record_id", "kind", "value")
        .join(clusters, "record_id")
    )
    holders = (
        shared.join(named, "record_id", "left_semi")
        .groupBy("kind", "value")
        .agg(F.collect_set("component").alias("holder_clusters"), F.min("record_id").alias("linked_to"))
    )
    clusters_with_names = clusters.join(named, "record_id", "left_semi").select("component").distinct()
    unnamed = shared.join(named, "record_id", "left_anti").join(clusters_with_names, "component", "left_anti")
    candidates = unnamed.join(holders, ["kind", "value"])
    # Every value of the unnamed cluster that someone is named on must lead to the same customer.
    targets = F.array_distinct(F.flatten(F.collect_list("holder_clusters").over(Window.partitionBy("component"))))
    return (
        candidates.withColumn("targets", F.size(targets))
        .where("targets = 1")
        .select("record_id", "linked_to", F.lit(RULE).alias("rule"), "kind", "value")
    )


def attach(clusters: DataFrame, links: DataFrame) -> DataFrame:
    """``clusters(record_id, component)`` with each linked record's component merged into the
    component of what it links to; the merged component is named by its smallest record id."""
    target = links.select("record_id", "linked_to").join(
        clusters.select(F.col("record_id").alias("linked_to"), F.col("component").alias("target")), "linked_to"
    )
    moves = target.join(clusters, "record_id").select("component", "target").distinct()
    grouped = clusters.join(moves, "component", "left").withColumn("group", F.coalesce("target", "component"))
    return grouped.select("record_id", F.min("component").over(Window.partitionBy("group")).alias("component"))
