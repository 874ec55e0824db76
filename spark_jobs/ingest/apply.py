"""Apply accepted rows to a bronze Delta table, idempotently, by the contract's kind.

A ``cdc`` source also keeps every change record it delivered in ``<table>_history``
(append-only): the main table holds each key's newest state, the history every state it had,
which identity resolution needs (an old email still identifies the person).

Every write is one Delta transaction (a MERGE, or the first write that creates the table), so
a crash leaves the table at its previous version and the next run applies the batch again;
because every write is keyed, applying it again changes nothing. For the same reason a MERGE
that lost a race with another writer of the table (two ingestion steps running side by side
both quarantine rows) is simply run again.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from spark_jobs.ingest.contracts import EVENT_DATE_COLUMN, Contract

EXTRA_FIELDS = "_extra_fields"  # new keys beyond the contract's max_new_columns (see parse.py)

DELETED = "_is_deleted"

log = logging.getLogger(__name__)
T = TypeVar("T")
# Delta's optimistic concurrency: another transaction committed first and touched what this one
# read (or created the table this one was creating, or is creating it right now: its data files
# are in the location, its first commit not yet). Nothing of this one was written; running it
# again against the new version is safe when the write is idempotent.
CONFLICT_ERROR_CLASSES = (
    "DELTA_CONCURRENT_",
    "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
    "TABLE_OR_VIEW_ALREADY_EXISTS",
    "DELTA_TABLE_ALREADY_EXISTS",
    "DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION",
)
CONFLICT_ATTEMPTS = 6


def is_write_conflict(error: BaseException) -> bool:
    text = str(error)
    return any(f"[{name}" in text for name in CONFLICT_ERROR_CLASSES) or "ConcurrentAppendException" in text


def retry_on_write_conflict(write: Callable[[], T], table: str, attempts: int = CONFLICT_ATTEMPTS) -> T:
    """Run an idempotent Delta write; on a transaction conflict, wait (jittered, growing) and
    run it again, up to ``attempts`` times."""
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except Exception as error:
            if attempt == attempts or not is_write_conflict(error):
                raise
            wait = random.uniform(0.2, 0.5) * 2 ** (attempt - 1)
            log.warning("%s: a concurrent write committed first; retrying in %.1f s (%d)", table, wait, attempt)
            time.sleep(wait)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class ApplyResult:
    inserted: int
    updated: int


def _op_rank(contract: Contract, prefix: str = "") -> Column:
    """At the same change timestamp a delete beats an update beats an insert."""
    cdc = contract.cdc
    op = F.col(f"{prefix}{cdc.operation_column}")
    return F.when(op == cdc.delete, 3).when(op == cdc.update, 2).otherwise(1)


def _op_rank_sql(contract: Contract, alias: str) -> str:
    cdc = contract.cdc
    op = f"{alias}.`{cdc.operation_column}`"
    return f"(CASE WHEN {op} = '{cdc.delete}' THEN 3 WHEN {op} = '{cdc.update}' THEN 2 ELSE 1 END)"


# Above this many repeated keys, sort the whole batch rather than broadcast the keys.
MAX_BROADCAST_KEYS = 1_000_000


def latest_per_key(df: DataFrame, contract: Contract) -> DataFrame:
    """One row per primary key: the newest by the contract's order column (then, for CDC, the
    stronger operation), ties broken by the later file and then the row hash, so the choice is
    deterministic whatever order files are read in.

    Most keys occur once in a batch. An aggregation of the key columns alone finds the repeated
    ones; only their rows go through the window's sort, joined by broadcast so that the batch
    itself is not shuffled. ``df`` is read several times, so it should be cached.
    """
    keys = list(contract.primary_key)
    order = []
    if contract.order_column:
        order.append(F.col(contract.order_column).desc_nulls_last())
    if contract.kind == "cdc":
        order.append(_op_rank(contract).desc())
    order += [F.col("_source_file").desc(), F.col("_row_hash").desc()]
    window = Window.partitionBy(*keys).orderBy(*order)

    def newest(rows: DataFrame) -> DataFrame:
        return rows.withColumn("_rank", F.row_number().over(window)).where("_rank = 1").drop("_rank")

    # A local checkpoint computes the (small) set once; Spark frees it with the frame.
    repeated = df.groupBy(*keys).count().where("count > 1").select(*keys).localCheckpoint(eager=True)
    n_repeated = repeated.count()
    if n_repeated == 0:
        return df
    if n_repeated > MAX_BROADCAST_KEYS:
        return newest(df)
    few = F.broadcast(repeated)
    return df.join(few, keys, "left_anti").unionByName(newest(df.join(few, keys, "left_semi")))


def row_hash(columns: list[str]) -> Column:
    """A digest of the row's data columns (names sorted; a null differs from any text), used to
    skip re-deliveries that change nothing and to break ties deterministically."""
    return F.md5(
        F.concat_ws("\u0001", *[F.coalesce(F.col(f"`{c}`").cast("string"), F.lit("\u0000")) for c in sorted(columns)])
    )


def add_metadata(df: DataFrame, contract: Contract, batch_id: str, ingested_at) -> DataFrame:
    data_columns = [c for c in df.columns if (c == EXTRA_FIELDS or not c.startswith("_")) and c != EVENT_DATE_COLUMN]
    out = (
        df.withColumn("_batch_id", F.lit(batch_id))
        .withColumn("_ingested_at", F.lit(ingested_at).cast("timestamp"))
        .withColumn("_row_hash", row_hash(data_columns))
    )
    if contract.kind == "cdc":
        out = out.withColumn(DELETED, F.col(contract.cdc.operation_column) == F.lit(contract.cdc.delete))
    return out


def merge_into(
    spark: SparkSession, source: DataFrame, table: str, on: str, update_when: str | None = None
) -> dict[str, int]:
    """Delta ``MERGE WITH SCHEMA EVOLUTION`` of ``source`` (alias ``s``) into ``table`` (alias
    ``t``): matched rows are updated where ``update_when`` holds (none without it), unmatched
    ones inserted. Returns the commit's row counts (num_inserted_rows, ...)."""
    updated = f"WHEN MATCHED AND ({update_when}) THEN UPDATE SET * " if update_when else ""
    return merge_from(spark, source, table, on, f"{updated}WHEN NOT MATCHED THEN INSERT *", schema_evolution=True)


def merge_from(
    spark: SparkSession, source: DataFrame, table: str, on: str, actions: str, schema_evolution: bool = False
) -> dict[str, int]:
    """``MERGE INTO table AS t USING source AS s ON on actions``, run again if another writer's
    commit conflicts with it. In SQL, not delta.tables.DeltaTable, so it runs the same in a
    local session and over Spark Connect; no value is written into the statement (so none into
    the Delta log's record of it). The source gets a temporary view of its own: threads of one
    session run merges side by side, and a shared view name would let one thread merge another's
    rows. Returns the commit's row counts (num_inserted_rows, ...)."""
    view = f"_cdp_merge_{uuid.uuid4().hex}"
    source.createOrReplaceTempView(view)
    try:
        evolution = " WITH SCHEMA EVOLUTION" if schema_evolution else ""
        statement = f"MERGE{evolution} INTO {table} AS t USING {view} AS s ON {on} {actions}"
        metrics = retry_on_write_conflict(lambda: spark.sql(statement).first(), table)
    finally:
        spark.catalog.dropTempView(view)
    return {key: int(value or 0) for key, value in metrics.asDict().items()} if metrics else {}


def _last_commit_counts(spark: SparkSession, table: str) -> ApplyResult:
    metrics = spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").select("operationMetrics").first()[0] or {}
    inserted = metrics.get("numTargetRowsInserted", metrics.get("numOutputRows", 0))
    return ApplyResult(int(inserted), int(metrics.get("numTargetRowsUpdated", 0)))


def _create(spark: SparkSession, df: DataFrame, contract: Contract) -> ApplyResult:
    if contract.kind == "event":
        df = df.repartition(EVENT_DATE_COLUMN)  # one file per event date, not one per (task, date)
    writer = df.write.format("delta").option("delta.enableChangeDataFeed", "true")
    if contract.kind == "event":
        writer = writer.partitionBy(EVENT_DATE_COLUMN)
    writer.saveAsTable(contract.table)
    return _last_commit_counts(spark, contract.table)


def apply_to_bronze(spark: SparkSession, df: DataFrame, contract: Contract) -> ApplyResult:
    """MERGE the batch (already one row per key) into ``contract.table``, creating it if needed."""
    if not spark.catalog.tableExists(contract.table):
        return _create(spark, df, contract)
    key_match = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in contract.primary_key)
    if contract.kind == "event":
        # Matched on the key alone, across every event date: an event re-delivered with another
        # timestamp (even another day) replaces the stored row, it is never a second one.
        changed = "s._row_hash <> t._row_hash"
    else:
        order = contract.order_column
        if contract.kind == "cdc":
            newer = (
                f"s.`{order}` > t.`{order}` OR (s.`{order}` = t.`{order}` AND "
                f"{_op_rank_sql(contract, 's')} > {_op_rank_sql(contract, 't')})"
            )
        elif order:
            newer = f"t.`{order}` IS NULL OR s.`{order}` >= t.`{order}`"
        else:
            newer = "true"  # no version: the latest delivery wins
        changed = f"s._row_hash <> t._row_hash AND ({newer})"
    metrics = merge_into(spark, df, contract.table, key_match, update_when=changed)
    return ApplyResult(metrics["num_inserted_rows"], metrics["num_updated_rows"])


def history_table(contract: Contract) -> str:
    return f"{contract.table}_history"


def record_history(spark: SparkSession, df: DataFrame, contract: Contract) -> int:
    """Insert every change record of the batch (with metadata) into the contract's history
    table, once: a change re-delivered or re-applied after a crash (same key, same row hash)
    is not inserted again. Returns the number of records inserted."""
    keys = [*contract.primary_key, "_row_hash"]
    changes = df.dropDuplicates(keys)
    table = history_table(contract)
    if not spark.catalog.tableExists(table):
        changes.write.format("delta").saveAsTable(table)
        return _last_commit_counts(spark, table).inserted
    match = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    return merge_into(spark, changes, table, match)["num_inserted_rows"]
