"""The cluster check: no customer may hold two records that contradict each other.

Connected components are transitive: A-B and B-C put A and C together even when A and C
are clearly two people (a father and his son, both John Smith at one address, joined
through an order that carries neither birth date). After the components, every pair of
named records inside one component is compared; a pair whose first names or birth dates
clearly differ and that the model, comparing the two directly, finds very unlikely to be one
person *contradicts*.
A component holding a contradicting pair is rebuilt from its links, strongest first (personal
ids and directives, then shared identifiers, then Fellegi-Sunter links by match weight); a
link that would join two records that contradict is dropped: it is the weakest bridge
between them. Personal ids and directives are never dropped.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs.identity.comparisons import compare, level, with_sides
from spark_jobs.identity.probabilistic import Model, comparable, score_pairs

# A pair contradicts when a person field clearly differs and the model, comparing the two
# records directly, gives them less than this chance of being one person.
CONTRADICTION_PROBABILITY = 0.01

DECISIONS = "kind string, record_id string, linked_to string, rule string, component string, kept boolean"


def contradicting_pairs(records: DataFrame, clusters: DataFrame, model: Model | None) -> DataFrame:
    """``(component, id_l, id_r)``: pairs of named records in one component that contradict:
    their first names or birth dates clearly differ, and the model scores the pair below
    CONTRADICTION_PROBABILITY (so a typo, or one field replaced while the rest agrees, is no
    contradiction). Without a model, both the first names and the birth dates must differ."""
    named = comparable(records).select("record_id").join(clusters, "record_id")
    pairs = (
        named.select(F.col("record_id").alias("id_l"), "component")
        .join(named.select(F.col("record_id").alias("id_r"), "component"), "component")
        .where("id_l < id_r")
    )
    compared = compare(with_sides(pairs, records))
    first_differs = F.coalesce(F.col("gamma_first_name") == level("first_name", "different"), F.lit(False))
    dob_differs = F.coalesce(F.col("gamma_birth_date") == level("birth_date", "different"), F.lit(False))
    if model is None:
        return compared.where(first_differs & dob_differs).select("component", "id_l", "id_r")
    clashing = compared.where(first_differs | dob_differs)
    return (
        score_pairs(clashing, model)
        .where(F.col("match_probability") < CONTRADICTION_PROBABILITY)
        .select("component", "id_l", "id_r")
    )


def _rebuild(frame: pd.DataFrame) -> pd.DataFrame:
    """One component: keep links strongest first unless they join two contradicting records."""
    component = frame["component"].iloc[0]
    conflicts: dict[str, set[str]] = {}
    for row in frame[frame["kind"] == "conflict"].itertuples():
        conflicts.setdefault(row.record_id, set()).add(row.linked_to)
        conflicts.setdefault(row.linked_to, set()).add(row.record_id)
    links = frame[frame["kind"] == "link"].sort_values(
        ["strength", "weight", "record_id", "linked_to"], ascending=[False, False, True, True]
    )
    parent: dict[str, str] = {}
    members: dict[str, set[str]] = {}

    def find(x: str) -> str:
        if x not in parent:
            parent[x], members[x] = x, {x}
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    out = []
    for row in links.itertuples():
        a, b = find(row.record_id), find(row.linked_to)
        joins_conflict = a != b and any(conflicts.get(x, set()) & members[b] for x in members[a])
        keep = a == b or row.strength >= 2 or not joins_conflict
        if keep and a != b:
            small, large = sorted((a, b), key=lambda r: len(members[r]))
            parent[small] = large
            members[large] |= members.pop(small)
        out.append(("link", row.record_id, row.linked_to, row.rule, component, keep))
    for group in members.values():
        label = min(group)
        out.extend(("member", record_id, None, None, label, True) for record_id in group)
    return pd.DataFrame(out, columns=["kind", "record_id", "linked_to", "rule", "component", "kept"])


def split_contradictions(
    records: DataFrame, links: DataFrame, clusters: DataFrame, model: Model | None, strong_rules: tuple[str, ...]
) -> tuple[DataFrame, DataFrame, int]:
    """(clusters, links kept, number of links dropped). ``links`` in the evidence shape."""
    conflicts = contradicting_pairs(records, clusters, model).localCheckpoint(eager=True)
    if conflicts.isEmpty():
        return clusters, links, 0
    flagged = conflicts.select("component").distinct()
    inside = links.join(clusters, "record_id").join(flagged, "component", "left_semi")
    strength = (
        F.when(F.col("rule").isin(*strong_rules), F.lit(2))
        .when(F.col("rule") != "fellegi_sunter", F.lit(1))
        .otherwise(F.lit(0))
    )
    rows = inside.select(
        F.lit("link").alias("kind"),
        "component",
        "record_id",
        "linked_to",
        "rule",
        strength.alias("strength"),
        F.coalesce("match_weight", F.lit(0.0)).alias("weight"),
    ).unionByName(
        conflicts.select(
            F.lit("conflict").alias("kind"),
            "component",
            F.col("id_l").alias("record_id"),
            F.col("id_r").alias("linked_to"),
            F.lit(None).cast("string").alias("rule"),
            F.lit(0).alias("strength"),
            F.lit(0.0).alias("weight"),
        )
    )
    decisions = rows.groupBy("component").applyInPandas(_rebuild, DECISIONS).localCheckpoint(eager=True)
    dropped = decisions.where("kind = 'link' AND NOT kept").select("record_id", "linked_to", "rule").distinct()
    relabelled = decisions.where("kind = 'member'").select("record_id", F.col("component").alias("rebuilt"))
    # One join, not a union of two differently partitioned frames: downstream joins of a union
    # of checkpoints failed with "Can't zip RDDs with unequal numbers of partitions" at 100k.
    new_clusters = (
        clusters.join(relabelled, "record_id", "left")
        .select("record_id", F.coalesce("rebuilt", "component").alias("component"))
        .localCheckpoint(eager=True)
    )
    kept = links.join(dropped, ["record_id", "linked_to", "rule"], "left_anti")
    return new_clusters, kept, dropped.count()
