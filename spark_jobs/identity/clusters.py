"""Connected components of the record-link graph, in Spark (no graph library needed).

Records are nodes and accepted links are undirected edges. Every record starts labelled with
its own id; each round, a record takes the smallest label among itself and its neighbours.
A component's label is therefore its smallest record id, and the number of rounds is about
the longest shortest path inside a component. Match graphs are shallow, so a few rounds are
enough. Each round's labels are checkpointed locally, so the query plan does not grow with
the number of rounds.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

log = logging.getLogger(__name__)


class ComponentsDidNotConverge(RuntimeError):
    """More rounds than allowed: a very long chain of links, usually a sign of bad links."""


def connected_components(nodes: DataFrame, edges: DataFrame, max_rounds: int = 50) -> DataFrame:
    """``nodes(id)`` and ``edges(src, dst)`` (string ids) -> ``(id, component)`` for every node.

    Edges whose ends are not in ``nodes`` are ignored. A node without edges is its own
    component.
    """
    ids = nodes.select(F.col("id").cast("string").alias("id")).distinct()
    pairs = edges.select(F.col("src").cast("string").alias("a"), F.col("dst").cast("string").alias("b")).where(
        "a IS NOT NULL AND b IS NOT NULL AND a <> b"
    )
    neighbours = (
        pairs.unionByName(pairs.select(F.col("b").alias("a"), F.col("a").alias("b")))
        .distinct()
        .join(ids.withColumnRenamed("id", "a"), "a", "left_semi")
        .join(ids.withColumnRenamed("id", "b"), "b", "left_semi")
        .localCheckpoint(eager=True)
    )

    labels = ids.select("id", F.col("id").alias("component")).localCheckpoint(eager=True)
    for round_number in range(1, max_rounds + 1):
        offered = neighbours.join(labels.withColumnRenamed("id", "a"), "a").select(F.col("b").alias("id"), "component")
        updated = (
            labels.unionByName(offered)
            .groupBy("id")
            .agg(F.min("component").alias("component"))
            .localCheckpoint(eager=True)
        )
        changed = (
            updated.alias("n").join(labels.alias("o"), "id").where(F.col("n.component") != F.col("o.component")).count()
        )
        labels = updated
        log.info("connected components: round %d, %d label(s) changed", round_number, changed)
        if changed == 0:
            return labels
    raise ComponentsDidNotConverge(
        f"labels still changing after {max_rounds} rounds: a chain of links longer than that exists"
    )


def component_sizes(components: DataFrame) -> DataFrame:
    """``(component, size)``, largest first."""
    return components.groupBy("component").agg(F.count(F.lit(1)).alias("size")).orderBy(F.desc("size"), "component")


def oversized_components(components: DataFrame, limit: int) -> DataFrame:
    """Components with more than ``limit`` records: candidates for review or splitting."""
    return component_sizes(components).where(F.col("size") > limit)
