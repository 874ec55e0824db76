"""The sync engine: what changed since the last successful sync, sent once, reconciled.

A sync compares its model (``gold.sync_*``) with the state it left last time
(``activation.sync_state``: one row per record with the hash of what was sent) and plans:

- ``insert`` a record the destination does not have yet (or had been skipped);
- ``update`` a record whose mapped fields changed (not in ``append`` mode);
- ``remove`` a record that left the audience (``mirror`` mode), or that was sent and is now
  suppressed (``mirror`` mode, and ``upsert`` with ``remove_on_suppression``, the CRM's default);
- ``skip``   a record that is in the audience but must not be sent: no consent for the sync's
  purpose in ``gold.customer_consent`` (``no_consent``, ``consent_withdrawn``), the model's
  ``suppression_reason`` (unsubscribed, bounced), the suppression list
  ``activation.suppressions`` (erased, do not contact; it applies to every id the customer
  ever had: a suppressed id merged into another suppresses that one, through
  ``silver.customer_id_lineage``), or an empty field the API requires and the definition
  gives no fallback for (``missing_required_field``), with that reason.

The plan is written to ``activation.sync_plans`` (so a dry run shows what would be sent) and
streamed to the destination in batches. Only what the destination accepted advances the state.
A record the destination could not take now (throttled past the retries, unreachable) goes to
``activation.sync_errors`` as ``failed``; its state does not move, so the next run plans it
again. A record it refuses for what it is (a required field missing, an invalid value, a
compliance state) goes there as ``rejected`` with the API's code, and its state remembers the
rejected version: it is not sent again until it changes. State is committed every ``checkpoint_rows`` records,
after the destination made what it got durable, so a crash loses at most the records since the
last checkpoint, and the re-run sends them again (destinations are idempotent by identifier,
webhook events carry stable ids). Every run adds one row to ``activation.sync_log`` where
planned = sent + skipped + failed + rejected.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.activation.definitions import SyncDefinition
from spark_jobs.activation.destinations import Change, Destination, DestinationRefusedAccess, Outcome
from spark_jobs.ingest.apply import merge_from

log = logging.getLogger(__name__)

DATABASE = "activation"
STATE_TABLE, PLANS_TABLE = f"{DATABASE}.sync_state", f"{DATABASE}.sync_plans"
ERRORS_TABLE, LOG_TABLE, SUPPRESSIONS_TABLE = (
    f"{DATABASE}.sync_errors",
    f"{DATABASE}.sync_log",
    f"{DATABASE}.suppressions",
)
SUPPRESSION_COLUMN = "suppression_reason"
LINEAGE_TABLE = "silver.customer_id_lineage"  # every id identity resolution issued -> today's id
CONSENT_TABLE = "gold.customer_consent"  # the consent ledger: customer x purpose -> is_granted
NO_CONSENT, CONSENT_WITHDRAWN = "no_consent", "consent_withdrawn"
MISSING_REQUIRED = "missing_required_field"
ERASED = "erased"  # the suppression reason of an erasure request

TABLES = {
    STATE_TABLE: "sync_name string, record_key string, row_hash string, status string, destination_id string, "
    "run_id string, synced_at timestamp",
    PLANS_TABLE: "sync_name string, run_id string, op string, record_key string, row_hash string, reason string, "
    "payload string, destination_id string, previous_status string",
    ERRORS_TABLE: "sync_name string, run_id string, record_key string, op string, error string, occurred_at timestamp, "
    "kind string",
    LOG_TABLE: "sync_name string, run_id string, destination string, mode string, dry_run boolean, status string, "
    "started_at timestamp, finished_at timestamp, planned bigint, sent bigint, inserted bigint, "
    "updated bigint, removed bigint, skipped bigint, failed bigint, skipped_by_reason map<string,bigint>, "
    "error string, rejected bigint",
    SUPPRESSIONS_TABLE: "customer_id string, reason string, requested_at timestamp",
}
PARTITIONED_BY_SYNC = {STATE_TABLE, PLANS_TABLE}


class SyncModelError(ValueError):
    """The sync's model lacks a column the definition maps (the message lists them)."""


def ensure_tables(spark: SparkSession) -> None:
    """Create the tables, and add the columns a newer version declares to ones an older made
    (new columns are appended last, so rows are written by name)."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    for table, schema in TABLES.items():
        partitioning = " PARTITIONED BY (sync_name)" if table in PARTITIONED_BY_SYNC else ""
        spark.sql(f"CREATE TABLE IF NOT EXISTS {table} ({schema}) USING delta{partitioning}")
        existing = set(spark.table(table).columns)
        declared = [column.strip().split(" ", 1) for column in _split_schema(schema)]
        missing = [f"{name} {kind}" for name, kind in declared if name not in existing]
        if missing:
            spark.sql(f"ALTER TABLE {table} ADD COLUMNS ({', '.join(missing)})")


def _split_schema(schema: str) -> list[str]:
    """Top-level ``name type`` items of a DDL schema (commas inside map<...> stay)."""
    items, depth, current = [], 0, ""
    for char in schema:
        depth += {"<": 1, ">": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    return [*items, current]


def current_rows(spark: SparkSession, sync: SyncDefinition) -> DataFrame:
    """The model's rows as the destination will see them: key, payload (destination field
    names, JSON), the reason not to send (or null) and a hash of both."""
    model = spark.table(sync.table)
    missing = [c for c in [*sync.source_columns, "customer_id", SUPPRESSION_COLUMN] if c not in model.columns]
    if missing:
        raise SyncModelError(f"{sync.table} lacks column(s) {missing} that sync '{sync.name}' needs")
    # Every mapped field, nulls included: both APIs read a missing field as "unchanged", so a
    # value the customer no longer has must be sent as null to be cleared (and hashed, so that
    # clearing it is a change).
    # A required field the definition gives a fallback for is sent as that value when empty;
    # one without a fallback makes the row a skip (the API would refuse it on every run).
    required = sync.required_fields
    empty = {column: F.col(column).isNull() | (F.trim(F.col(column).cast("string")) == "") for column in sync.fields}

    def value(column: str, name: str):
        return (
            F.when(empty[column], F.lit(required[name])).otherwise(F.col(column))
            if required.get(name)
            else F.col(column)
        )

    payload = F.to_json(
        F.struct(*[value(column, name).alias(name) for column, name in sync.fields.items()]),
        {"ignoreNullFields": "false"},
    )
    missing_required = F.lit(None).cast("string")
    for column, name in sync.fields.items():
        if name in required and required[name] is None:
            missing_required = F.when(empty[column], F.lit(MISSING_REQUIRED)).otherwise(missing_required)
    rows = model.select(
        F.col(sync.source_key).cast("string").alias("record_key"),
        payload.alias("payload"),
        F.coalesce(F.col(SUPPRESSION_COLUMN), missing_required).alias("model_reason"),
        F.col("customer_id"),
    )
    listed = suppressed_customer_ids(spark)
    consent = consent_reasons(spark, sync.purpose)
    return (
        rows.join(listed, "customer_id", "left")
        .join(consent, "customer_id", "left")
        .select(
            "record_key",
            "payload",
            F.coalesce(
                "listed_reason",
                F.when(F.col("in_ledger").isNull(), F.lit(NO_CONSENT)).otherwise(F.col("consent_reason")),
                "model_reason",
            ).alias("reason"),
        )
        .withColumn("row_hash", F.sha2(F.concat_ws("|", "payload", F.coalesce("reason", F.lit(""))), 256))
    )


def consent_reasons(spark: SparkSession, purpose: str) -> DataFrame:
    """customer_id -> ``consent_reason`` for the purpose: null when the ledger grants it,
    ``consent_withdrawn`` or ``no_consent`` otherwise; ``in_ledger`` tells a customer the ledger
    does not know (not in dim_customers), who gets ``no_consent`` too."""
    if not spark.catalog.tableExists(CONSENT_TABLE):
        raise SyncModelError(f"{CONSENT_TABLE} does not exist: build the dbt project (the consent ledger) first")
    ledger = spark.table(CONSENT_TABLE).where(F.col("purpose") == purpose)
    reason = (
        F.when(F.bool_and("is_granted"), F.lit(None).cast("string"))
        .when(F.bool_or(F.col("consent_status") == "withdrawn"), F.lit(CONSENT_WITHDRAWN))
        .otherwise(F.lit(NO_CONSENT))
    )
    return ledger.groupBy("customer_id").agg(reason.alias("consent_reason"), F.lit(True).alias("in_ledger"))


def suppressed_customer_ids(spark: SparkSession) -> DataFrame:
    """``activation.suppressions`` on today's ids: a suppression names an id the customer had
    when it was requested, and that id may since have been merged into another (the lineage
    maps it to the id that carries its records now). One row per id: customer_id, listed_reason."""
    listed = spark.table(SUPPRESSIONS_TABLE).select("customer_id", "reason")
    if spark.catalog.tableExists(LINEAGE_TABLE):
        lineage = spark.table(LINEAGE_TABLE).where(F.col("current_customer_id").isNotNull())
        followed = listed.join(lineage, "customer_id").select(
            F.col("current_customer_id").alias("customer_id"), "reason"
        )
        listed = listed.unionByName(followed)
    return listed.groupBy("customer_id").agg(F.min("reason").alias("listed_reason"))


def erased_keys(spark: SparkSession) -> DataFrame:
    """Record keys (customer ids, every one the person ever had) of erased people: one that
    left the model (its rows deleted by the erasure) is still removed from the destination."""
    erased = suppressed_customer_ids(spark).where(F.col("listed_reason") == ERASED).select("customer_id")
    listed = spark.table(SUPPRESSIONS_TABLE).where(F.col("reason") == ERASED).select("customer_id")
    return erased.unionByName(listed).distinct().select(F.col("customer_id").alias("erased_key"))


def plan(spark: SparkSession, sync: SyncDefinition) -> DataFrame:
    """Every record with something to do, with its op; unchanged records are not in it."""
    current = current_rows(spark, sync).alias("c")
    state = spark.table(STATE_TABLE).where(F.col("sync_name") == sync.name)
    state = state.join(erased_keys(spark), state.record_key == F.col("erased_key"), "left").alias("s")
    joined = current.join(state, F.col("c.record_key") == F.col("s.record_key"), "full_outer")
    gone, suppressed = F.col("c.record_key").isNull(), F.col("c.reason").isNotNull()
    erased_and_gone = F.col("s.erased_key").isNotNull() & F.lit(sync.mode != "append")
    synced, unchanged = F.col("s.status") == "synced", F.col("s.row_hash") == F.col("c.row_hash")
    mirror = F.lit(sync.mode == "mirror")
    # An erased person leaves every destination that can remove; other suppressions only
    # leave those that mirror the audience or ask for it (remove_on_suppression).
    removes_suppressed = F.lit(sync.remove_on_suppression) | (
        (F.col("c.reason") == ERASED) & F.lit(sync.mode != "append")
    )
    rejected = F.col("s.status") == "rejected"  # refused for what it was: not again until it changes
    op = (
        F.when(gone, F.when(synced & (mirror | erased_and_gone), "remove").otherwise("forget"))
        .when(suppressed, F.when(synced & removes_suppressed, "remove").when(unchanged, None).otherwise("skip"))
        .when(rejected & unchanged, None)
        .when(rejected, F.when(F.col("s.destination_id").isNull(), "insert").otherwise("update"))
        .when(F.col("s.record_key").isNull() | (F.col("s.status") == "skipped"), "insert")
        .when(unchanged | F.lit(sync.mode == "append"), None)
        .otherwise("update")
    )
    return joined.select(
        op.alias("op"),
        F.coalesce("c.record_key", "s.record_key").alias("record_key"),
        F.col("c.row_hash").alias("row_hash"),
        F.when(gone & erased_and_gone, F.lit(ERASED))
        .when(gone, "left the audience")
        .otherwise(F.col("c.reason"))
        .alias("reason"),
        F.col("c.payload").alias("payload"),
        F.col("s.destination_id").alias("destination_id"),
        F.col("s.status").alias("previous_status"),
    ).where(F.col("op").isNotNull())


@dataclass
class RunStats:
    planned: int = 0
    inserted: int = 0
    updated: int = 0
    removed: int = 0
    failed: int = 0
    rejected: int = 0
    skipped_by_reason: Counter = field(default_factory=Counter)

    @property
    def skipped(self) -> int:
        return sum(self.skipped_by_reason.values())

    @property
    def sent(self) -> int:
        return self.inserted + self.updated + self.removed


def event_id(sync: SyncDefinition, op: str, key: str, row_hash: str | None) -> str:
    return hashlib.sha256(f"{sync.name}|{op}|{key}|{row_hash or ''}".encode()).hexdigest()[:32]


class SyncRun:
    """One run of one sync: plan, send in batches, checkpoint state, log."""

    def __init__(
        self,
        spark: SparkSession,
        sync: SyncDefinition,
        destination_factory,
        *,
        dry_run: bool = False,
        checkpoint_rows: int = 100_000,
        run_id: str | None = None,
        erasures_only: bool = False,
    ) -> None:
        """``erasures_only``: plan and send only the removes of erased people (an erasure runs
        the syncs outside the pipeline, where no quality check has passed for anything else)."""
        self.spark, self.sync, self.dry_run = spark, sync, dry_run
        self.erasures_only = erasures_only
        self.destination_factory, self.checkpoint_rows = destination_factory, checkpoint_rows
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.stats = RunStats()
        self._state_updates: list[tuple] = []
        self._errors: list[tuple] = []

    def run(self) -> dict[str, Any]:
        started, clock = datetime.now(UTC), time.monotonic()
        ensure_tables(self.spark)
        self._write_plan()
        planned = self.spark.table(PLANS_TABLE).where(
            (F.col("sync_name") == self.sync.name) & (F.col("op") != "forget")
        )
        by_op = (
            planned.groupBy("op")
            .agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("record_key").alias("keys"))
            .collect()
        )
        if any(r.rows != r.keys for r in by_op):
            raise SyncModelError(
                f"{self.sync.table} has more than one row for some {self.sync.source_key}: "
                f"a sync needs one row per identifier (dbt test its grain)"
            )
        counts = {r.op: r.rows for r in by_op}
        self.stats.planned = sum(counts.values())
        if self.dry_run:  # what would be skipped, and why
            self.stats.skipped_by_reason.update(
                {r.reason: r["count"] for r in planned.where("op = 'skip'").groupBy("reason").count().collect()}
            )
        log.info("sync %s (%s, run %s): planned %s", self.sync.name, self.sync.mode, self.run_id, counts or "nothing")
        status, error, destination_meta = "dry_run" if self.dry_run else "succeeded", None, {}
        try:
            if not self.dry_run:
                destination_meta = self._send()
                status = (
                    "partial"
                    if self.stats.failed
                    else "succeeded_with_rejections"
                    if self.stats.rejected
                    else "succeeded"
                )
        except BaseException as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"[:1000]
            raise
        finally:
            self._log(started, status, error)
        elapsed = time.monotonic() - clock
        return {
            "run_id": self.run_id,
            "status": status,
            "dry_run": self.dry_run,
            "mode": self.sync.mode,
            "planned": self.stats.planned,
            "sent": self.stats.sent,
            "inserted": self.stats.inserted,
            "updated": self.stats.updated,
            "removed": self.stats.removed,
            "skipped": self.stats.skipped,
            "skipped_by_reason": dict(self.stats.skipped_by_reason),
            "failed": self.stats.failed,
            "rejected": self.stats.rejected,
            "planned_by_op": counts,
            "seconds": round(elapsed, 1),
            "rows_per_second": round(self.stats.planned / elapsed, 1) if elapsed else None,
            **destination_meta,
        }

    def _write_plan(self) -> None:
        planned = plan(self.spark, self.sync)
        if self.erasures_only:
            planned = planned.where((F.col("op") == "remove") & (F.col("reason") == ERASED))
        planned.select(
            F.lit(self.sync.name).alias("sync_name"),
            F.lit(self.run_id).alias("run_id"),
            "op",
            "record_key",
            "row_hash",
            "reason",
            "payload",
            "destination_id",
            "previous_status",
        ).writeTo(PLANS_TABLE).overwrite(F.col("sync_name") == self.sync.name)

    def _send(self) -> dict[str, Any]:
        destination: Destination = self.destination_factory(self.sync, self.run_id)
        try:
            self._send_plan(destination)
        except DestinationRefusedAccess:
            # The destination refused our credentials or permission: every other request would
            # be refused too. What it accepted before is there, so the state keeps it.
            self._checkpoint(destination, flush=False)
            destination.close()
            raise
        meta = destination.close()  # files: the last parts and the manifest
        self._checkpoint(destination, flush=False)
        return meta

    def _send_plan(self, destination: Destination) -> None:
        rows = (
            self.spark.table(PLANS_TABLE)
            .where(F.col("sync_name") == self.sync.name)
            .select("op", "record_key", "row_hash", "reason", "payload", "destination_id")
            .toLocalIterator()
        )
        batches: dict[str, list] = {"insert": [], "update": [], "remove": []}
        since_checkpoint = 0
        for row in rows:
            if row.op in ("forget", "skip"):
                self._settle_unsent(row)
                since_checkpoint += 1
                continue
            batch = batches[row.op]
            batch.append(row)
            if len(batch) >= destination.batch_size:
                since_checkpoint += self._deliver(destination, row.op, batch)
                batches[row.op] = []
            if since_checkpoint >= self.checkpoint_rows:
                self._checkpoint(destination)
                since_checkpoint = 0
        for op, batch in batches.items():
            if batch:
                self._deliver(destination, op, batch)

    def _settle_unsent(self, row) -> None:
        if row.op == "skip":
            self.stats.skipped_by_reason[row.reason] += 1
            self._state_updates.append((row.record_key, row.row_hash, "skipped", row.destination_id, "upsert"))
        else:
            self._state_updates.append((row.record_key, None, None, None, "delete"))

    def _deliver(self, destination: Destination, op: str, rows: list) -> int:
        changes = [
            Change(
                "remove" if op == "remove" else "upsert",
                r.record_key,
                json.loads(r.payload) if r.payload else {},
                r.destination_id,
                event_id(self.sync, op, r.record_key, r.row_hash),
                r.reason if op == "remove" else None,
            )
            for r in rows
        ]
        outcomes: list[Outcome] = destination.remove(changes) if op == "remove" else destination.upsert(changes)
        by_key = {r.record_key: r for r in rows}
        if len(outcomes) != len(rows) or {o.key for o in outcomes} != set(by_key):
            raise RuntimeError(
                f"{type(destination).__name__} answered {len(outcomes)} outcome(s) for {len(rows)} change(s)"
            )
        now = datetime.now(UTC)
        for outcome in outcomes:
            row = by_key[outcome.key]
            if not outcome.ok and outcome.permanent and op != "remove":
                self.stats.rejected += 1
                self._errors.append((self.sync.name, self.run_id, outcome.key, op, outcome.error, now, "rejected"))
                destination_id = outcome.destination_id or row.destination_id
                self._state_updates.append((row.record_key, row.row_hash, "rejected", destination_id, "upsert"))
            elif not outcome.ok:
                self.stats.failed += 1
                self._errors.append((self.sync.name, self.run_id, outcome.key, op, outcome.error, now, "failed"))
            elif op == "remove":
                self.stats.removed += 1
                # Still in the model but suppressed: remember it as skipped; gone: forget it.
                self._state_updates.append(
                    (row.record_key, row.row_hash, "skipped", None, "upsert")
                    if row.row_hash
                    else (row.record_key, None, None, None, "delete")
                )
            else:
                if op == "insert":
                    self.stats.inserted += 1
                else:
                    self.stats.updated += 1
                self._state_updates.append((row.record_key, row.row_hash, "synced", outcome.destination_id, "upsert"))
        return len(rows)

    def _checkpoint(self, destination: Destination, flush: bool = True) -> None:
        """Destination first (its parts become durable), then the state that says so."""
        if flush:
            destination.flush()
        if self._state_updates:
            updates = self.spark.createDataFrame(
                self._state_updates,
                "record_key string, row_hash string, status string, destination_id string, action string",
            )
            merge_from(
                self.spark,
                updates.select(F.lit(self.sync.name).alias("sync_name"), "*"),
                STATE_TABLE,
                f"t.sync_name = s.sync_name AND t.sync_name = '{self.sync.name}' AND t.record_key = s.record_key",
                f"""WHEN MATCHED AND s.action = 'delete' THEN DELETE
                WHEN MATCHED THEN UPDATE SET row_hash = s.row_hash, status = s.status,
                    destination_id = s.destination_id, run_id = '{self.run_id}', synced_at = current_timestamp()
                WHEN NOT MATCHED AND s.action <> 'delete' THEN INSERT
                    (sync_name, record_key, row_hash, status, destination_id, run_id, synced_at)
                    VALUES (s.sync_name, s.record_key, s.row_hash, s.status, s.destination_id, '{self.run_id}',
                            current_timestamp())""",
            )
            done = self.stats.sent + self.stats.failed + self.stats.rejected + self.stats.skipped
            log.info(
                "sync %s: %d of %d planned record(s) done (%d sent, %d failed); state checkpointed",
                self.sync.name,
                done,
                self.stats.planned,
                self.stats.sent,
                self.stats.failed,
            )
            self._state_updates = []
        if self._errors:
            self.spark.createDataFrame(self._errors, TABLES[ERRORS_TABLE]).write.format("delta").mode(
                "append"
            ).saveAsTable(ERRORS_TABLE)
            self._errors = []

    def _log(self, started: datetime, status: str, error: str | None) -> None:
        s = self.stats
        row = (
            self.sync.name,
            self.run_id,
            self.sync.destination_type,
            self.sync.mode,
            self.dry_run,
            status,
            started,
            datetime.now(UTC),
            s.planned,
            s.sent,
            s.inserted,
            s.updated,
            s.removed,
            s.skipped,
            s.failed,
            dict(s.skipped_by_reason),
            error,
            s.rejected,
        )
        self.spark.createDataFrame([row], TABLES[LOG_TABLE]).write.format("delta").mode("append").saveAsTable(LOG_TABLE)
        log.info(
            "sync %s %s: planned %d = sent %d + skipped %d + failed %d + rejected %d",
            self.sync.name,
            status,
            s.planned,
            s.sent,
            s.skipped,
            s.failed,
            s.rejected,
        )
