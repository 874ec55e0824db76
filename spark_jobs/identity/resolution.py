"""From standardised person records to clusters: links, steward directives, the size guard.

One function, :func:`resolve_records`, is shared by the platform job (bronze -> silver) and
the standalone CLI (any CSV of people), so both resolve the same way:

1. deterministic links on strong identifiers (links.py);
2. Fellegi-Sunter links between named records that share no identifier (probabilistic.py);
3. the steward's directives: ``split`` takes a record out of matching (its identifiers and
   fields link it to nothing, so it stays alone unless a ``link`` directive attaches it);
   ``link`` adds a link between two records;
4. connected components over the links (clusters.py);
5. the over-merge guard: a component above ``size_limit`` records is flagged and re-clustered
   on its strongest links only (personal ids and directives), so a chain of weak links
   cannot build a giant customer; the flag stays in the run's metrics for review;
6. the cluster check (cluster_check.py): a component holding two records that contradict
   each other (clearly different first names or birth dates) is split on its weakest bridge;
7. unnamed records left alone because their email or phone named two first names join the
   customer when every named holder of it is that one customer (unnamed.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs.identity.cluster_check import split_contradictions
from spark_jobs.identity.clusters import connected_components
from spark_jobs.identity.incremental import LinkState, incremental_links, with_row_hash
from spark_jobs.identity.links import deterministic_links
from spark_jobs.identity.probabilistic import DEFAULT_THRESHOLD, FIELDS, Model, comparable, probabilistic_links
from spark_jobs.identity.unnamed import attach, one_customer_links

log = logging.getLogger(__name__)

DEFAULT_SIZE_LIMIT = 200
STRONG_RULES = ("exact_personal_id", "directive_link")
DIRECTIVE_ACTIONS = ("link", "split")
LINK_COLUMNS = (
    "record_id",
    "linked_to",
    "rule",
    "kind",
    "value",
    "match_weight",
    "match_probability",
    *[f"gamma_{f}" for f in FIELDS],
    "names_swapped",
)


@dataclass
class Resolved:
    clusters: DataFrame  # record_id, component (the component's smallest record id)
    links: DataFrame  # LINK_COLUMNS: the evidence for every accepted link
    flagged: DataFrame  # component, size: over the size limit before the guard split them
    model: Model | None  # the Fellegi-Sunter weights used
    state: LinkState  # what the next run needs to link incrementally
    changed: int | None = None  # records re-linked incrementally (None: a full run)
    links_dropped: int = 0  # links the cluster check dropped as the weakest bridge of a contradiction


def _uniform(links: DataFrame) -> DataFrame:
    """Every link frame in the evidence shape (columns a rule does not produce are null)."""
    return links.select(
        *[F.col(c) if c in links.columns else F.lit(None).cast(_link_type(c)).alias(c) for c in LINK_COLUMNS]
    )


def _link_type(column: str) -> str:
    if column.startswith("gamma_"):
        return "int"
    if column == "names_swapped":
        return "boolean"
    return "double" if column.startswith("match_") else "string"


def _check_directives(directives: DataFrame) -> None:
    bad = (
        directives.where(
            ~F.col("action").isin(*DIRECTIVE_ACTIONS)
            | ((F.col("action") == "link") & F.col("other_record_id").isNull())
        )
        .limit(5)
        .collect()
    )
    if bad:
        raise ValueError(
            f"invalid identity directive(s) {[r.asDict() for r in bad]}: action must be one of "
            f"{DIRECTIVE_ACTIONS}, and 'link' needs other_record_id"
        )


def detached(directives: DataFrame | None) -> DataFrame | None:
    """``(record_id)`` of the records a ``split`` directive takes out of matching."""
    if directives is None:
        return None
    _check_directives(directives)
    return directives.where(F.col("action") == "split").select("record_id").distinct()


def apply_directives(links: DataFrame, directives: DataFrame | None) -> DataFrame:
    """``directives(action, record_id, other_record_id)``: adds a ``directive_link`` for each
    ``link``. (``split`` acts before matching, see :func:`detached`.)"""
    if directives is None:
        return links
    _check_directives(directives)
    forced = directives.where(F.col("action") == "link").select(
        "record_id",
        F.col("other_record_id").alias("linked_to"),
        F.lit("directive_link").alias("rule"),
        F.lit("directive").alias("kind"),
    )
    return links.unionByName(_uniform(forced))


def _components(records: DataFrame, links: DataFrame) -> DataFrame:
    nodes = records.select(F.col("record_id").alias("id"))
    edges = links.select(F.col("record_id").alias("src"), F.col("linked_to").alias("dst"))
    return connected_components(nodes, edges).select(F.col("id").alias("record_id"), "component")


def guard_oversized(
    records: DataFrame, links: DataFrame, clusters: DataFrame, size_limit: int
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Re-cluster components above ``size_limit`` on their strong links only.
    Returns (clusters, links kept, flagged components)."""
    sizes = clusters.groupBy("component").agg(F.count(F.lit(1)).alias("size"))
    flagged = sizes.where(F.col("size") > size_limit).localCheckpoint(eager=True)
    if flagged.isEmpty():
        return clusters, links, flagged
    log.warning(
        "%d cluster(s) above the size limit of %d records: re-clustered on strong links only",
        flagged.count(),
        size_limit,
    )
    inside = clusters.join(flagged.select("component"), "component", "left_semi").select("record_id")
    weak_inside = links.join(inside, "record_id", "left_semi").where(~F.col("rule").isin(*STRONG_RULES))
    kept = links.join(
        weak_inside.select("record_id", "linked_to", "rule"), ["record_id", "linked_to", "rule"], "left_anti"
    )
    return _components(records, kept), kept, flagged


def link_records(
    records: DataFrame,
    identifiers: DataFrame,
    model: Model | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_block_size: int = 50,
) -> tuple[DataFrame, Model | None]:
    """Deterministic and Fellegi-Sunter links, in the evidence shape."""
    deterministic = _uniform(deterministic_links(identifiers, records))
    fuzzy, model = probabilistic_links(comparable(records), threshold, max_block_size, model)
    return deterministic.unionByName(_uniform(fuzzy.withColumn("kind", F.lit("fields")))), model


def resolve_records(
    records: DataFrame,
    identifiers: DataFrame,
    directives: DataFrame | None = None,
    size_limit: int = DEFAULT_SIZE_LIMIT,
    model: Model | None = None,
    state: LinkState | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_block_size: int = 50,
) -> Resolved:
    """Cluster standardised ``records`` (see persons.py / records.py) with their ``identifiers``.

    With the last run's ``state`` and its ``model``, only what changed is re-linked
    (incremental.py); otherwise every record is linked, with ``model`` or newly estimated weights.
    """
    split = detached(directives)
    matchable = records if split is None else records.join(split, "record_id", "left_anti")
    usable = identifiers if split is None else identifiers.join(split, "record_id", "left_anti")
    matchable = with_row_hash(matchable).localCheckpoint(eager=True)
    changed = None
    if state is not None and model is not None:
        deterministic, fuzzy, changed = incremental_links(matchable, usable, state, model, threshold, max_block_size)
        rule_links = _uniform(deterministic).unionByName(_uniform(fuzzy.withColumn("kind", F.lit("fields"))))
        log.info("identity: incremental, %d record(s) new, changed or removed since the last run", changed)
    else:
        rule_links, model = link_records(matchable, usable, model, threshold, max_block_size)
    rule_links = rule_links.localCheckpoint(eager=True)
    links = apply_directives(rule_links, directives).localCheckpoint(eager=True)
    log.info("identity: %d link(s) between %d record(s)", links.count(), records.count())
    clusters = _components(records, links)
    clusters, links, flagged = guard_oversized(records, links, clusters, size_limit)
    clusters, links, dropped = split_contradictions(records, links, clusters, model, STRONG_RULES)
    if dropped:
        log.info("identity: the cluster check dropped %d link(s) that joined contradicting records", dropped)
    clusters = clusters.localCheckpoint(eager=True)
    settled = one_customer_links(usable, records, clusters).localCheckpoint(eager=True)
    if not settled.isEmpty():
        log.info(
            "identity: %d unnamed record(s) joined the one customer named on their email or phone", settled.count()
        )
        clusters, links = attach(clusters, settled), links.unionByName(_uniform(settled))
    return Resolved(clusters, links, flagged, model, LinkState(matchable, usable, rule_links), changed, dropped)


RULE_STRENGTH = [
    "directive_link",
    "exact_personal_id",
    "exact_shared_id_same_name_dob",
    "exact_shared_id_same_name",
    "exact_shared_id_unnamed",
    "exact_shared_id_one_customer",
    "fellegi_sunter",
]


def strongest_rule(links: DataFrame) -> DataFrame:
    """``(record_id, match_rule)``: the strongest rule among the links that touch each record."""
    ends = links.select("record_id", "rule").unionByName(links.select(F.col("linked_to").alias("record_id"), "rule"))
    rank = F.array_position(F.array(*[F.lit(r) for r in RULE_STRENGTH]), F.col("rule"))
    return ends.groupBy("record_id").agg(
        F.min_by("rule", F.when(rank > 0, rank).otherwise(F.lit(99))).alias("match_rule")
    )
