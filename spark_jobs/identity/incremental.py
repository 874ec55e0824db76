"""Incremental linking: re-decide only what new, changed or removed records can affect.

Every link decision is local, which is what makes this exact:

- a deterministic link depends only on the records that share one identifier value (one
  ``(kind, value)`` group, see links.py);
- a Fellegi-Sunter link depends only on the two records, the model's weights and whether
  they share a blocking key held by at most ``max_block_size`` records.

So, against the state the last run kept (its matchable records with a hash of each, their
identifiers and its rule links), a run:

1. finds the *changed* records (new, different standardised fields, gone, or newly split
   or un-split by a directive);
2. re-decides every identifier group a changed record belongs to, now or before, and keeps
   the other groups' links as they were;
3. compares every candidate pair of every blocking key a changed record has, now or before,
   and keeps the earlier Fellegi-Sunter links between unchanged records that still share a
   small enough block.

With the same weights (the model of the last full run), the result is the link set a full
run computes, so the clusters are the same (tests/test_identity_incremental.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs.identity.links import deterministic_links
from spark_jobs.identity.probabilistic import (
    Model,
    block_keys,
    candidate_pairs,
    comparable,
    probabilistic_links,
    small_blocks,
)


@dataclass
class LinkState:
    """What a run keeps for the next: matchable records (with ``row_hash``), identifiers, rule links."""

    records: DataFrame
    identifiers: DataFrame
    links: DataFrame


def with_row_hash(records: DataFrame) -> DataFrame:
    fields = sorted(c for c in records.columns if c not in ("record_id", "row_hash"))
    return records.withColumn("row_hash", F.sha2(F.to_json(F.struct(*fields)), 256))


def changed_records(now: DataFrame, before: DataFrame) -> DataFrame:
    """``(record_id)`` of records added, removed or changed between two hashed record sets."""
    joined = now.select("record_id", F.col("row_hash").alias("now")).join(
        before.select("record_id", F.col("row_hash").alias("before")), "record_id", "full_outer"
    )
    return joined.where(~F.col("now").eqNullSafe(F.col("before"))).select("record_id")


def incremental_links(
    records: DataFrame,
    identifiers: DataFrame,
    state: LinkState,
    model: Model,
    threshold: float,
    max_block_size: int = 50,
) -> tuple[DataFrame, DataFrame, int]:
    """(deterministic links, Fellegi-Sunter links, number of changed records) for the hashed
    matchable ``records`` and their ``identifiers``, given the last run's ``state``."""
    changed = changed_records(records, state.records).localCheckpoint(eager=True)
    n_changed = changed.count()

    groups = (
        identifiers.join(changed, "record_id", "left_semi")
        .select("kind", "value")
        .unionByName(state.identifiers.join(changed, "record_id", "left_semi").select("kind", "value"))
        .distinct()
    )
    redecided = deterministic_links(identifiers.join(groups, ["kind", "value"], "left_semi"), records)
    kept = (
        state.links.where(F.col("rule") != "fellegi_sunter")
        .join(groups, ["kind", "value"], "left_anti")
        .select(*redecided.columns)
    )
    deterministic = kept.unionByName(redecided)

    # Standardised once and cut from its plan, and its blocking keys computed once: the block
    # sizes, the changed records' blocks and the pair search all read them.
    named = comparable(records).localCheckpoint(eager=True)
    keys = block_keys(named).localCheckpoint(eager=True)
    blocks = (
        keys.join(changed, "record_id", "left_semi")
        .select("block")
        .unionByName(block_keys(comparable(state.records).join(changed, "record_id", "left_semi")).select("block"))
        .distinct()
    )
    pairs = candidate_pairs(named, max_block_size, only_blocks=blocks, keys=keys)
    compared, _ = probabilistic_links(named, threshold, max_block_size, model, pairs=pairs)

    small = small_blocks(keys, max_block_size)
    earlier = (
        state.links.where(F.col("rule") == "fellegi_sunter")
        .join(changed, "record_id", "left_anti")
        .join(changed.withColumnRenamed("record_id", "linked_to"), "linked_to", "left_anti")
    )
    still_candidates = (
        earlier.select("record_id", "linked_to")
        .join(keys, "record_id")
        .join(keys.withColumnRenamed("record_id", "linked_to"), ["linked_to", "block"])
        .join(small, "block", "left_semi")
        .select("record_id", "linked_to")
        .distinct()
    )
    earlier = earlier.join(still_candidates, ["record_id", "linked_to"], "left_semi").join(
        compared.select("record_id", "linked_to"), ["record_id", "linked_to"], "left_anti"
    )
    fuzzy = earlier.select(*compared.columns).unionByName(compared)
    return deterministic, fuzzy, n_changed
