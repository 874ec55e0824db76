"""The identity-resolution job: bronze person records -> silver identity tables.

    python -m spark_jobs.identity.resolve [--size-limit N] [--full [--reuse-model]]

A run is incremental when the last run left its state (``silver._identity_*``): only the
records that are new, changed or gone since then are re-linked, with the last full run's
Fellegi-Sunter weights (incremental.py). ``--full`` re-links everything and re-estimates the
weights (``--reuse-model`` keeps them, so a full run can be compared with an incremental one).

Reads every person-bearing bronze table (persons.SOURCES), the CRM's contact history (every
email and phone a contact ever had) and the web/email events (anonymous visitors that logged in or
clicked a tracked link), resolves them (resolution.py), keeps customer ids stable across
runs (persistent_ids.py) and writes, in this order so that a crash part-way leaves the
identity map of the previous run in place and the next run completes:

- ``silver.identity_evidence``   every accepted link: rule, match weight, per-field levels
- ``silver.household_members`` / ``silver.households``
- ``silver.customer_id_history`` old id -> new id, reason (merged, split, removed), merged
  idempotently on the identity-map version the run started from
- ``silver.customer_id_lineage`` every id ever issued -> the id that carries its records now
- ``silver.anonymous_ids``       anonymous web/app id -> customer
- ``silver.identity_map``        source record -> customer id (the table downstream reads), with
  the record's standardised email and E.164 phone for the golden record
- ``silver.identity_runs``       one row of metrics per run; ``silver.identity_models`` the
  Fellegi-Sunter weights of each full run
- ``silver._identity_records`` / ``_identity_identifiers`` / ``_identity_links``: the state
  the next incremental run starts from

The steward's directives are read from ``silver.identity_directives`` (created empty).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import uuid
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import plots
from spark_jobs.identity.households import household_members, households
from spark_jobs.identity.incremental import LinkState
from spark_jobs.identity.persistent_ids import assign_ids
from spark_jobs.identity.persons import (
    SOURCES,
    VISITOR_SOURCE,
    crm_identifier_history,
    identifiers,
    person_records,
    visitors,
)
from spark_jobs.identity.probabilistic import DEFAULT_THRESHOLD, Model
from spark_jobs.identity.resolution import DEFAULT_SIZE_LIMIT, resolve_records, strongest_rule
from spark_jobs.ingest.apply import merge_from
from spark_jobs.jobspec import Check, JobSpec, Output
from spark_jobs.plots import Markdown
from spark_jobs.reporting import spark_job

log = logging.getLogger(__name__)

IDENTITY_MAP_TABLE = "silver.identity_map"
EVIDENCE_TABLE = "silver.identity_evidence"
HISTORY_TABLE = "silver.customer_id_history"
CRM_HISTORY_TABLE = "bronze.crm_contacts_history"  # written by ingestion for the cdc source
LINEAGE_TABLE = "silver.customer_id_lineage"
HOUSEHOLDS_TABLE = "silver.households"
HOUSEHOLD_MEMBERS_TABLE = "silver.household_members"
ANONYMOUS_IDS_TABLE = "silver.anonymous_ids"
DIRECTIVES_TABLE = "silver.identity_directives"
RUNS_TABLE = "silver.identity_runs"
MODELS_TABLE = "silver.identity_models"
STATE_TABLES = ("silver._identity_records", "silver._identity_identifiers", "silver._identity_links")
OUTPUT_TABLES = (
    EVIDENCE_TABLE,
    HOUSEHOLDS_TABLE,
    HOUSEHOLD_MEMBERS_TABLE,
    HISTORY_TABLE,
    LINEAGE_TABLE,
    ANONYMOUS_IDS_TABLE,
    RUNS_TABLE,
)
DIRECTIVES_SCHEMA = (
    "directive_id string, action string, record_id string, other_record_id string, "
    "reason string, created_by string, created_at timestamp"
)
MAPPED_EXACTLY_ONCE = Check(
    "mapped_exactly_once",
    "silver/identity_map",
    "every bronze person record appears once in the identity map",
    blocking=True,
)
NO_OVERSIZED_CUSTOMER = Check(
    "no_oversized_customer", "silver/identity_map", "no customer holds more records than the size limit", blocking=True
)
SPEC = JobSpec(
    module="spark_jobs.identity.resolve",
    outputs=(
        Output(
            IDENTITY_MAP_TABLE,
            "Every bronze person record -> its persistent customer id and the strongest rule that linked it.",
        ),
        Output(
            EVIDENCE_TABLE, "Every accepted link: rule, identifier kind, match weight and per-field comparison levels."
        ),
        Output(HOUSEHOLDS_TABLE, "Addresses shared by customers: one row per household."),
        Output(
            HOUSEHOLD_MEMBERS_TABLE,
            "Customer -> household, with the relationship the data shows (family, co_resident).",
        ),
        Output(
            HISTORY_TABLE, "Customer-id changes: old id -> new id, merged / split / removed, when and in which run."
        ),
        Output(LINEAGE_TABLE, "Every customer id ever issued -> the id that carries its records now."),
        Output(
            ANONYMOUS_IDS_TABLE, "Anonymous web/app ids stitched to a customer by a login or a tracked email click."
        ),
        Output(RUNS_TABLE, "Resolution metrics per run: records, links by rule, cluster sizes, flagged clusters."),
    ),
    checks=(MAPPED_EXACTLY_ONCE, NO_OVERSIZED_CUSTOMER),
)
SIZE_BUCKETS = [(1, "1"), (2, "2"), (5, "3-5"), (10, "6-10"), (50, "11-50"), (None, ">50")]


def _table(spark: SparkSession, name: str) -> DataFrame | None:
    return spark.table(name) if spark.catalog.tableExists(name) else None


def _overwrite(df: DataFrame, name: str) -> None:
    df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").saveAsTable(name)


def directives(spark: SparkSession) -> DataFrame:
    if not spark.catalog.tableExists(DIRECTIVES_TABLE):
        spark.createDataFrame([], DIRECTIVES_SCHEMA).write.format("delta").saveAsTable(DIRECTIVES_TABLE)
    return spark.table(DIRECTIVES_TABLE)


def crm_history_identifiers(spark: SparkSession) -> DataFrame | None:
    """Every email and phone each CRM contact ever had: from ``bronze.crm_contacts_history``
    (every change record ingestion applied). A lakehouse older than that table has them in
    the change data feed of ``bronze.crm_contacts`` only: that is read instead. (Not both: the
    feed's files of older versions are vacuumed by retention and erasure, so reading it from
    version 0 would fail once they are.)"""
    if spark.catalog.tableExists(CRM_HISTORY_TABLE):
        return crm_identifier_history(spark.table(CRM_HISTORY_TABLE))
    log.warning("no %s yet: the CRM's earlier emails and phones come from the change data feed", CRM_HISTORY_TABLE)
    try:
        feed = (
            spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", 0)
            .table("bronze.crm_contacts")
        )
        return crm_identifier_history(feed).localCheckpoint(eager=True)  # fails here if files are gone
    except Exception as error:
        log.warning("no change feed on bronze.crm_contacts (%s)", str(error).splitlines()[0])
        return None


def last_model(spark: SparkSession) -> Model | None:
    models = _table(spark, MODELS_TABLE)
    row = models.orderBy(F.desc("created_at")).select("model_json").first() if models is not None else None
    return Model.from_json(row.model_json) if row else None


def size_distribution(sizes: DataFrame) -> dict[str, int]:
    """Customers per size bucket, from ``(customer_id, count)``."""
    bucket = F.lit(SIZE_BUCKETS[-1][1])
    for limit, label in reversed(SIZE_BUCKETS[:-1]):
        bucket = F.when(F.col("count") <= limit, F.lit(label)).otherwise(bucket)
    counts = {r.bucket: r["count"] for r in sizes.groupBy(bucket.alias("bucket")).count().collect()}
    return {label: counts.get(label, 0) for _, label in SIZE_BUCKETS}


def _elapsed(since: datetime) -> float:
    return (datetime.now(UTC) - since).total_seconds()


def last_state(spark: SparkSession) -> LinkState | None:
    if not all(spark.catalog.tableExists(t) for t in STATE_TABLES):
        return None
    return LinkState(*[spark.table(t) for t in STATE_TABLES])


def run(
    spark: SparkSession, size_limit: int = DEFAULT_SIZE_LIMIT, full: bool = False, reuse_model: bool = False
) -> dict:
    """Resolve the bronze tables into the silver identity tables; return the run's metrics."""
    spark.sql("CREATE DATABASE IF NOT EXISTS silver")
    run_id, started = uuid.uuid4().hex[:12], datetime.now(UTC)
    tables = {name: t for name in SOURCES if (t := _table(spark, f"bronze.{name}")) is not None}
    # Standardised once: the identifiers read the records in one branch per kind of identifier.
    records = person_records(tables).localCheckpoint(eager=True)
    ids = identifiers(records)
    history_ids = crm_history_identifiers(spark) if "crm_contacts" in tables else None
    if history_ids is not None:  # of the contacts that still exist (a deleted one is no record)
        ids = ids.unionByName(history_ids.join(records.select("record_id"), "record_id", "left_semi")).distinct()
    stitched = visitors(_table(spark, "bronze.web_events"), _table(spark, "bronze.email_events"))
    if stitched is not None:
        records, ids = records.unionByName(stitched[0]), ids.unionByName(stitched[1])
    records = records.localCheckpoint(eager=True)
    ids = ids.localCheckpoint(eager=True)
    log.info("identity run %s: %d record(s), %d identifier(s)", run_id, records.count(), ids.count())

    state = None if full else last_state(spark)
    model = last_model(spark) if (reuse_model or state is not None) else None
    resolved = resolve_records(records, ids, directives(spark), size_limit, model, state if model else None)
    log.info("identity run %s: resolved in %.0f s", run_id, _elapsed(started))

    # Visitors only bridge people; a cluster of visitors alone is nobody we know.
    clusters = resolved.clusters.withColumn("is_visitor", F.col("record_id").startswith(f"{VISITOR_SOURCE}:"))
    known = clusters.groupBy("component").agg(F.min("is_visitor").alias("only_visitors")).where("NOT only_visitors")
    clusters = clusters.join(known.select("component"), "component", "left_semi")
    people = clusters.where("NOT is_visitor").select("record_id", "component")

    previous_map = _table(spark, IDENTITY_MAP_TABLE)
    based_on = (
        spark.sql(f"DESCRIBE HISTORY {IDENTITY_MAP_TABLE}").agg(F.max("version")).first()[0]
        if previous_map is not None
        else -1
    )
    previous = (
        previous_map.select(F.concat_ws(":", "source_table", "source_record_id").alias("record_id"), "customer_id")
        if previous_map is not None
        else None
    )
    assigned = assign_ids(people, previous, _table(spark, LINEAGE_TABLE), run_id)
    identity = assigned.identity.localCheckpoint(eager=True)
    log.info("identity run %s: persistent ids assigned after %.0f s", run_id, _elapsed(started))
    customer_of_component = clusters.join(identity, "record_id").select("component", "customer_id").distinct()

    evidence = (
        resolved.links.join(clusters.select("record_id", "component"), "record_id")
        .join(customer_of_component, "component")
        .drop("component")
        .withColumn("run_id", F.lit(run_id))
    )
    _overwrite(evidence, EVIDENCE_TABLE)

    members = household_members(records, identity).localCheckpoint(eager=True)
    _overwrite(members, HOUSEHOLD_MEMBERS_TABLE)
    _overwrite(households(members, tables.get("enrichment_demographics")), HOUSEHOLDS_TABLE)

    history = (
        assigned.history.withColumn("based_on_version", F.lit(based_on))
        .withColumn("run_id", F.lit(run_id))
        .withColumn("changed_at", F.lit(started))
    )
    if not spark.catalog.tableExists(HISTORY_TABLE):
        history.limit(0).write.format("delta").saveAsTable(HISTORY_TABLE)
    merge_from(
        spark,
        history,
        HISTORY_TABLE,
        "t.based_on_version = s.based_on_version AND t.old_customer_id = s.old_customer_id"
        " AND t.new_customer_id <=> s.new_customer_id AND t.reason = s.reason",
        "WHEN NOT MATCHED THEN INSERT *",
    )
    _overwrite(assigned.lineage.localCheckpoint(eager=True), LINEAGE_TABLE)
    for frame, table in zip(
        (resolved.state.records, resolved.state.identifiers, resolved.state.links), STATE_TABLES, strict=True
    ):
        _overwrite(frame, table)

    anonymous = (
        clusters.where("is_visitor")
        .join(customer_of_component, "component")
        .select(F.expr(f"substring(record_id, {len(VISITOR_SOURCE) + 2})").alias("anonymous_id"), "customer_id")
    )
    _overwrite(anonymous, ANONYMOUS_IDS_TABLE)

    rules = strongest_rule(resolved.links)
    identity_map = (
        identity.join(
            records.select(
                "record_id",
                "source_table",
                "source_record_id",
                F.col("email").alias("email_normalised"),
                F.col("phone").alias("phone_e164"),
            ),
            "record_id",
        )
        .join(rules, "record_id", "left")
        .select(
            "source_table",
            "source_record_id",
            "customer_id",
            F.coalesce("match_rule", F.lit("no_link")).alias("match_rule"),
            "email_normalised",
            "phone_e164",
            F.lit(run_id).alias("run_id"),
        )
    )
    _overwrite(identity_map, IDENTITY_MAP_TABLE)

    log.info("identity run %s: silver tables written after %.0f s", run_id, _elapsed(started))
    per_customer = spark.table(IDENTITY_MAP_TABLE).groupBy("customer_id").count().localCheckpoint(eager=True)
    totals = per_customer.agg(
        F.sum("count").alias("records"), F.count(F.lit(1)).alias("customers"), F.max("count").alias("largest")
    ).first()
    by_rule = {r.rule: r["count"] for r in resolved.links.groupBy("rule").count().collect()}
    by_reason = {r.reason: r["count"] for r in assigned.history.groupBy("reason").count().collect()}
    person_records_now = records.where(~F.col("record_id").startswith(f"{VISITOR_SOURCE}:"))
    metrics = {
        "run_id": run_id,
        "records": totals.records or 0,
        "customers": totals.customers,
        "links_by_rule": by_rule,
        "cluster_sizes": size_distribution(per_customer),
        "largest_cluster": totals.largest or 0,
        "flagged_clusters": resolved.flagged.count(),
        "size_limit": size_limit,
        "links_dropped_by_cluster_check": resolved.links_dropped,
        "ids_merged": by_reason.get("merged", 0),
        "ids_split": by_reason.get("split", 0),
        "ids_removed": by_reason.get("removed", 0),
        "anonymous_ids_stitched": anonymous.count(),
        "households": members.select("household_id").distinct().count(),
        "match_weight_bins": match_weight_bins(resolved.links),
        "mode": "full" if resolved.changed is None else "incremental",
        "changed_records": resolved.changed,
        "model_reused": model is not None,
        **mapped_exactly_once(spark.table(IDENTITY_MAP_TABLE), person_records_now),
    }
    if resolved.model is not None and model is None:
        spark.createDataFrame(
            [(run_id, started, resolved.model.to_json())], "run_id string, created_at timestamp, model_json string"
        ).write.format("delta").mode("append").saveAsTable(MODELS_TABLE)
    spark.createDataFrame(
        [(run_id, started, json.dumps(metrics, sort_keys=True))], "run_id string, run_at timestamp, metrics_json string"
    ).write.format("delta").mode("append").saveAsTable(RUNS_TABLE)
    return metrics


WEIGHT_BIN = 0.5  # match weight (log2 odds) per histogram bar


def match_weight_bins(links: DataFrame) -> dict[str, int]:
    """Accepted Fellegi-Sunter links per match-weight bin (lower edge, WEIGHT_BIN wide)."""
    edge = (F.floor(F.col("match_weight") / WEIGHT_BIN) * WEIGHT_BIN).alias("edge")
    rows = links.where(F.col("rule") == "fellegi_sunter").groupBy(edge).count().orderBy("edge").collect()
    return {f"{r.edge:g}": r["count"] for r in rows}


def identity_charts(metrics: dict) -> dict[str, Markdown]:
    """The run's charts for the identity map's page: link weights against the threshold, cluster
    sizes, links by rule."""
    threshold_weight = math.log2(DEFAULT_THRESHOLD / (1 - DEFAULT_THRESHOLD))  # probability -> log2 odds
    charts = {
        "chart_match_weights": plots.histogram(
            "Accepted Fellegi-Sunter links by match weight",
            {float(edge): n for edge, n in metrics["match_weight_bins"].items()},
            WEIGHT_BIN,
            threshold_weight,
            "match weight (log2 odds; the threshold is probability 0.5)",
        ),
        "chart_cluster_sizes": plots.bars(
            "Customers by number of records", metrics["cluster_sizes"], "records per customer", "customers"
        ),
        "chart_links_by_rule": plots.bars(
            "Links by rule", dict(sorted(metrics["links_by_rule"].items())), "links", horizontal=True
        ),
    }
    return {name: chart for name, chart in charts.items() if chart is not None}


def mapped_exactly_once(mapped: DataFrame, person_records: DataFrame) -> dict:
    """Records the identity map holds more than once, and person records it lacks."""
    keys = ["source_table", "source_record_id"]
    duplicated = mapped.groupBy(*keys).count().where("count > 1").count()
    missing = person_records.select(*keys).join(mapped, keys, "left_anti").count()
    return {"duplicated_records": duplicated, "missing_records": missing}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Resolve the bronze person records into silver identity tables.")
    parser.add_argument(
        "--size-limit",
        type=int,
        default=DEFAULT_SIZE_LIMIT,
        help="records above which a cluster is flagged and split on strong links (default %(default)s)",
    )
    parser.add_argument(
        "--full", action="store_true", help="re-link every record and re-estimate the Fellegi-Sunter weights"
    )
    parser.add_argument(
        "--reuse-model",
        action="store_true",
        help="with --full: keep the last full run's weights instead of estimating them again",
    )
    args = parser.parse_args(argv)
    with spark_job("cdp-identity-resolve") as (spark, _, reporter):
        metrics = run(spark, args.size_limit, args.full, args.reuse_model)
        for output in SPEC.outputs:
            reporter.materialized(
                output.asset,
                {**metrics, **identity_charts(metrics)}
                if output.table == IDENTITY_MAP_TABLE
                else {"run_id": metrics["run_id"]},
            )
        once = {k: metrics[k] for k in ("duplicated_records", "missing_records")}
        reporter.checked(
            MAPPED_EXACTLY_ONCE.asset,
            MAPPED_EXACTLY_ONCE.name,
            once["duplicated_records"] == 0 and once["missing_records"] == 0,
            once,
        )
        reporter.checked(
            NO_OVERSIZED_CUSTOMER.asset,
            NO_OVERSIZED_CUSTOMER.name,
            metrics["largest_cluster"] <= args.size_limit,
            {
                "largest_cluster": metrics["largest_cluster"],
                "size_limit": args.size_limit,
                "flagged_clusters": metrics["flagged_clusters"],
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
