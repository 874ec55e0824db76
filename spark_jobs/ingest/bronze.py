"""Ingest new landing files into bronze Delta tables, one table per source contract.

For each contract and batch:
1. list the entity's landing files and keep those not yet in ``bronze._processed_files``
   (same path, size and modification time), so re-running over the same landing zone reads nothing;
2. read them as text and check every row against the contract; a file that cannot be read at
   all (truncated gzip, wrong format, a required CSV column missing) is recorded as failed
   with the error and the other files still load;
3. rows that break the contract go to ``bronze._quarantine`` with the raw record and every
   reason; the rest are applied to ``bronze.<entity>`` by the contract's kind (see apply.py);
   a ``cdc`` source also appends every change record to ``bronze.<entity>_history``;
4. ``bronze._processed_files`` records each file, ``bronze._ingestion_log`` the batch, with
   received = accepted + quarantined.

New columns in the files are added to the table (schema evolution) and reported.

    python -m spark_jobs.ingest.bronze [--entities crm_contacts web_events] [--from-date D --to-date D]
"""

from __future__ import annotations

import argparse
import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    LongType, StringType, StructField, StructType, TimestampType,
)

from spark_jobs.ingest.apply import (ApplyResult, add_metadata, apply_to_bronze, history_table, latest_per_key,
                                     record_history)
from spark_jobs.ingest.contracts import EVENT_DATE_COLUMN, Contract, get_contract, load_contracts
from spark_jobs.ingest.landing import LandingFile, list_landing_files, spark_literal
from spark_jobs.ingest.parse import (EXTRA_KEYS, REASON, add_new_columns, is_infrastructure_error, read_files,
                                     short_error, storable_names, validate)
from spark_jobs.reporting import spark_job

log = logging.getLogger(__name__)

QUARANTINE_TABLE = "bronze._quarantine"
INGESTION_LOG_TABLE = "bronze._ingestion_log"
PROCESSED_FILES_TABLE = "bronze._processed_files"

PROCESSED_FILES_SCHEMA = StructType([
    StructField("entity", StringType()), StructField("file_path", StringType()),
    StructField("file_size", LongType()), StructField("file_modified_ms", LongType()),
    StructField("status", StringType()), StructField("error", StringType()),
    StructField("received", LongType()), StructField("accepted", LongType()),
    StructField("quarantined", LongType()), StructField("batch_id", StringType()),
    StructField("processed_at", TimestampType()),
])


@dataclass(frozen=True)
class BatchStats:
    batch_id: str
    entity: str
    files: int
    failed_files: int
    received: int
    accepted: int
    quarantined: int
    inserted: int
    updated: int
    new_columns: str      # comma-separated; empty when the files match the contract
    started_at: datetime
    finished_at: datetime

    def metadata(self) -> dict[str, int | str]:
        return {k: v for k, v in asdict(self).items() if isinstance(v, (int, str))}


@dataclass(frozen=True)
class FileOutcome:
    file: LandingFile
    status: str           # loaded | failed
    error: str | None = None
    received: int = 0
    accepted: int = 0

    @property
    def quarantined(self) -> int:
        return self.received - self.accepted


FileKey = tuple[str, int, int]  # path, size, modification time: the identity of a delivered file


def processed_index(spark: SparkSession) -> dict[str, set[FileKey]]:
    """Every file already processed (loaded or failed), per entity: read once per job."""
    if not spark.catalog.tableExists(PROCESSED_FILES_TABLE):
        return {}
    index: dict[str, set[FileKey]] = {}
    for r in spark.table(PROCESSED_FILES_TABLE).select("entity", "file_path", "file_size", "file_modified_ms").collect():
        index.setdefault(r.entity, set()).add((r.file_path, r.file_size, r.file_modified_ms))
    return index


def pending_files(spark: SparkSession, contract: Contract, files: list[LandingFile],
                  processed: dict[str, set[FileKey]] | None = None) -> list[LandingFile]:
    """Files not yet processed (a file is the same file while path, size and mtime are)."""
    if not files:
        return files
    done = (processed_index(spark) if processed is None else processed).get(contract.name, set())
    return [f for f in files if (f.path, f.size, f.modified_ms) not in done]


def unreadable_files(spark: SparkSession, contract: Contract, files: list[LandingFile]) -> dict[str, str]:
    """Read each file on its own to find the ones that fail (only after a batch read failed)."""
    failed = {}
    for f in files:
        try:
            if contract.format == "jsonl":
                spark.read.text(spark_literal(f.path)).count()
            else:
                spark.read.option("header", True).csv(spark_literal(f.path)).count()
        except Exception as exc:  # noqa: BLE001 - any read error makes the file unreadable
            failed[f.path] = f"unreadable file: {short_error(exc)}"
    return failed


@dataclass
class ParsedBatch:
    rows: DataFrame | None          # every row of the readable files, with its _reason (None: no file read)
    cached: DataFrame | None        # the persisted frame behind ``rows``; release() frees it
    outcomes: list[FileOutcome]
    new_columns: list[str]

    def release(self) -> None:
        if self.cached is not None:
            self.cached.unpersist()


def failing_files(spark: SparkSession, contract: Contract, files: list[LandingFile]) -> dict[str, str]:
    """Read and check each file on its own, as the batch does, to find the ones that fail
    (only after the batch failed and the plain read probe found no culprit)."""
    failed = {}
    for f in files:
        try:
            raw = read_files(spark, contract, [f])
            failed.update(raw.failed)
            if raw.frame is not None:
                validate(raw.frame, contract, raw.new_columns).groupBy("_source_file").count().collect()
        except Exception as exc:  # noqa: BLE001 - classified below
            if is_infrastructure_error(exc):
                raise
            failed[f.path] = f"file could not be read or checked: {short_error(exc)}"
    return failed


def parse_batch(spark: SparkSession, contract: Contract, files: list[LandingFile]) -> ParsedBatch:
    """Read and check the files. A file that fails (unreadable, or an error that only reading
    or checking it triggers) is isolated and reported as failed; the rows of the other files
    are all in ``rows``, cached."""
    failed: dict[str, str] = {}
    for attempt in (1, 2, 3):
        readable = [f for f in files if f.path not in failed]
        flagged = None
        try:
            raw = read_files(spark, contract, readable)
            failed.update(raw.failed)
            if raw.frame is None:
                return ParsedBatch(None, None, [FileOutcome(f, "failed", failed[f.path]) for f in files], [])
            flagged = validate(raw.frame, contract, raw.new_columns).persist(StorageLevel.MEMORY_AND_DISK)
            extra_keys = (F.flatten(F.collect_set(EXTRA_KEYS)) if EXTRA_KEYS in flagged.columns
                          else F.array().cast("array<string>"))
            per_file = flagged.groupBy("_source_file").agg(
                F.count(F.lit(1)).alias("received"),
                F.count(F.when(F.col(REASON).isNull(), 1)).alias("accepted"),
                F.min(F.coalesce(F.col(REASON).startswith("unparseable"), F.lit(False))).alias("all_corrupt"),
                extra_keys.alias("extra_keys"),
            ).collect()
            break
        except Exception as exc:
            if flagged is not None:
                flagged.unpersist()
            if is_infrastructure_error(exc) or attempt == 3:
                raise
            log.warning("%s: the batch failed (%s); finding the file(s) that cause it", contract.name, short_error(exc))
            isolated = unreadable_files(spark, contract, readable) if attempt == 1 else {}
            isolated = isolated or failing_files(spark, contract, readable)
            if not isolated:
                raise
            failed.update(isolated)

    counts = {r["_source_file"]: (r["received"], r["accepted"]) for r in per_file}
    # A file none of whose rows parse is a wrong-format file, not a file of bad rows.
    corrupt_only = {r["_source_file"] for r in per_file if r["all_corrupt"]}
    wrong_format = f"no record of this file parses as {contract.format}: wrong format or not a {contract.name} file"
    outcomes = []
    for f in files:
        if f.path in failed:
            outcomes.append(FileOutcome(f, "failed", failed[f.path]))
        elif f.path in corrupt_only:
            outcomes.append(FileOutcome(f, "failed", wrong_format))
        else:
            received, accepted = counts.get(f.path, (0, 0))
            outcomes.append(FileOutcome(f, "loaded", None, received, accepted))
    json_keys = sorted({k for r in per_file if r["_source_file"] not in corrupt_only for k in r["extra_keys"]})
    renamed = storable_names(json_keys, [*contract.column_names, EVENT_DATE_COLUMN])
    if renamed:
        log.warning("%s: new key(s) renamed so that Delta can store them: %s", contract.name, renamed)
    new_columns = raw.new_columns or [renamed.get(k, k) for k in json_keys]
    rows = flagged
    if corrupt_only or (json_keys and EXTRA_KEYS in flagged.columns):
        # Rare (wrong-format files, undeclared JSON keys): one more pass to re-cache the batch.
        rows = add_new_columns(flagged.where(~F.col("_source_file").isin(list(corrupt_only))), json_keys, renamed)
        rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
        rows.count()
        flagged.unpersist()
        flagged = rows
    elif EXTRA_KEYS in flagged.columns:
        rows = flagged.drop(EXTRA_KEYS)  # still served by flagged's cache
    return ParsedBatch(rows, flagged, outcomes, new_columns)


def record_quarantine(spark: SparkSession, rejected: DataFrame, contract: Contract, batch_id: str,
                      at: datetime) -> None:
    """Insert-only MERGE: the same bad record from the same file is kept once across re-runs."""
    from delta.tables import DeltaTable

    # The n-th copy of an identical bad line in a file is its own record (nothing is lost), and
    # the same n-th copy on a re-run is the same record (nothing is doubled).
    occurrence = F.row_number().over(Window.partitionBy("_source_file", "_raw").orderBy("_raw"))
    rows = rejected.select(
        F.lit(contract.name).alias("entity"), F.col("_source_file").alias("source_file"),
        F.col("_raw").alias("raw_record"), F.col(REASON).alias("reason"), occurrence.alias("occurrence"),
    ).withColumn("quarantine_id", F.sha2(F.concat_ws("\u0001", "entity", "source_file", "raw_record",
                                                      F.col("occurrence").cast("string")), 256)) \
        .withColumn("batch_id", F.lit(batch_id)).withColumn("quarantined_at", F.lit(at).cast("timestamp"))
    if not spark.catalog.tableExists(QUARANTINE_TABLE):
        rows.write.format("delta").saveAsTable(QUARANTINE_TABLE)
        return
    (DeltaTable.forName(spark, QUARANTINE_TABLE).alias("t")
     .merge(rows.alias("s"), "t.quarantine_id = s.quarantine_id").whenNotMatchedInsertAll().execute())


def record_files(spark: SparkSession, contract: Contract, outcomes: list[FileOutcome], batch_id: str,
                 at: datetime) -> None:
    rows = [(contract.name, o.file.path, o.file.size, o.file.modified_ms, o.status, o.error,
             o.received, o.accepted, o.quarantined, batch_id, at) for o in outcomes]
    spark.createDataFrame(rows, PROCESSED_FILES_SCHEMA).write.format("delta").mode("append") \
        .saveAsTable(PROCESSED_FILES_TABLE)


def record_batch(spark: SparkSession, stats: BatchStats) -> None:
    spark.createDataFrame([Row(**asdict(stats))]).write.format("delta").mode("append") \
        .option("mergeSchema", "true").saveAsTable(INGESTION_LOG_TABLE)


def _apply(spark: SparkSession, contract: Contract, accepted: DataFrame, batch_id: str,
           started: datetime) -> ApplyResult:
    changes = add_metadata(accepted, contract, batch_id, started)
    if contract.kind == "cdc":
        log.info("%s: %d change record(s) added to %s", contract.name,
                 record_history(spark, changes, contract), history_table(contract))
    return apply_to_bronze(spark, latest_per_key(changes, contract), contract)


def apply_batch(spark: SparkSession, contract: Contract, rows: DataFrame, outcomes: list[FileOutcome],
                batch_id: str, started: datetime) -> tuple[list[FileOutcome], int, int]:
    """Apply the accepted rows of the loaded files in one MERGE. If that fails on the data
    (not the infrastructure), apply them file by file: a file whose rows cannot be applied
    fails with the reason, the others load. Returns (outcomes, inserted, updated)."""
    accepted = rows.where(F.col(REASON).isNull()).drop(REASON, "_raw")
    # A first batch with nothing accepted still creates the (empty) table, so that models over
    # bronze find every source once its files have been read.
    if not any(o.accepted for o in outcomes if o.status == "loaded") and spark.catalog.tableExists(contract.table):
        return outcomes, 0, 0
    try:
        result = _apply(spark, contract, accepted, batch_id, started)
        return outcomes, result.inserted, result.updated
    except Exception as exc:
        if is_infrastructure_error(exc):
            raise
        log.warning("%s: applying the batch failed (%s); applying it file by file", contract.name, short_error(exc))
    inserted = updated = 0
    retried = []
    for o in outcomes:
        if o.status != "loaded" or not o.accepted:
            retried.append(o)
            continue
        try:
            rows_of_file = accepted.where(F.col("_source_file") == o.file.path)
            undeclared = [c for c in rows_of_file.columns if not c.startswith("_") and c not in contract.column_names
                          and c != EVENT_DATE_COLUMN]
            if undeclared:   # a new column only another file has is no part of this file's rows
                filled = rows_of_file.agg(*[F.count(F.col(f"`{c}`")).alias(c) for c in undeclared]).first()
                rows_of_file = rows_of_file.drop(*[c for c in undeclared if filled[c] == 0])
            result = _apply(spark, contract, rows_of_file, batch_id, started)
            inserted, updated = inserted + result.inserted, updated + result.updated
            retried.append(o)
        except Exception as exc:
            if is_infrastructure_error(exc):
                raise
            retried.append(FileOutcome(o.file, "failed", f"rows could not be applied to {contract.table}: "
                                                         f"{short_error(exc)}"))
    return retried, inserted, updated


def ingest_contract(spark: SparkSession, contract: Contract, landing_root: str, batch_id: str,
                    dates: tuple[date, date] | None = None,
                    processed: dict[str, set[FileKey]] | None = None) -> BatchStats:
    """Ingest the contract's new files as one batch. ``processed`` is the processed-files index
    (read from the table when not given; a job ingesting many entities reads it once)."""
    started = datetime.now(timezone.utc)
    files = pending_files(spark, contract, list_landing_files(spark, landing_root, contract, dates), processed)
    inserted = updated = 0
    new_columns: list[str] = []
    outcomes: list[FileOutcome] = []
    if not files:
        log.info("%s: no new files", contract.name)
    else:
        log.info("%s: reading %d new file(s)", contract.name, len(files))
        batch = parse_batch(spark, contract, files)
        outcomes, new_columns = batch.outcomes, batch.new_columns
        for o in outcomes:
            if o.status == "failed":
                log.error("%s: file %s failed: %s", contract.name, o.file.path, o.error)
        if new_columns:
            log.warning("%s: new column(s) %s not in the contract; added to %s (schema evolution)",
                        contract.name, new_columns, contract.table)
        if batch.rows is not None:
            try:
                outcomes, inserted, updated = apply_batch(spark, contract, batch.rows, outcomes, batch_id, started)
                loaded = [o.file.path for o in outcomes if o.status == "loaded" and o.quarantined]
                if loaded:
                    rejected = batch.rows.where(F.col(REASON).isNotNull() & F.col("_source_file").isin(loaded))
                    record_quarantine(spark, rejected, contract, batch_id, started)
            finally:
                batch.release()
        record_files(spark, contract, outcomes, batch_id, started)

    loaded = [o for o in outcomes if o.status == "loaded"]
    stats = BatchStats(
        batch_id=batch_id, entity=contract.name, files=len(loaded),
        failed_files=len(outcomes) - len(loaded),
        received=sum(o.received for o in loaded), accepted=sum(o.accepted for o in loaded),
        quarantined=sum(o.quarantined for o in loaded), inserted=inserted, updated=updated,
        new_columns=",".join(new_columns), started_at=started, finished_at=datetime.now(timezone.utc),
    )
    record_batch(spark, stats)
    log.info("%s: files=%d failed=%d received=%d accepted=%d quarantined=%d inserted=%d updated=%d",
             contract.name, stats.files, stats.failed_files, stats.received, stats.accepted,
             stats.quarantined, stats.inserted, stats.updated)
    return stats


def reconciliation(spark: SparkSession, stats: BatchStats) -> tuple[bool, dict]:
    """received = accepted + quarantined for the batch, and the quarantine table really holds
    the batch's quarantined rows (read back, not taken from the counters)."""
    stored = 0
    if stats.quarantined and spark.catalog.tableExists(QUARANTINE_TABLE):
        files = spark.table(PROCESSED_FILES_TABLE).where(
            (F.col("entity") == stats.entity) & (F.col("batch_id") == stats.batch_id) & (F.col("status") == "loaded"))
        stored = spark.table(QUARANTINE_TABLE).where(F.col("entity") == stats.entity) \
            .join(files.select(F.col("file_path").alias("source_file")), "source_file", "left_semi").count()
    passed = stats.received == stats.accepted + stats.quarantined and stored == stats.quarantined
    return passed, {"received": stats.received, "accepted": stats.accepted, "quarantined": stats.quarantined,
                    "quarantine_rows_stored": stored, "failed_files": stats.failed_files}


def freshness(spark: SparkSession, contract: Contract, now: datetime) -> tuple[bool, dict]:
    """The newest successfully loaded file arrived within the contract's freshness_hours."""
    newest = spark.table(PROCESSED_FILES_TABLE).where(
        (F.col("entity") == contract.name) & (F.col("status") == "loaded")
    ).agg(F.max("file_modified_ms")).first()[0] if spark.catalog.tableExists(PROCESSED_FILES_TABLE) else None
    if newest is None:
        return False, {"newest_file_age_hours": None, "limit_hours": contract.freshness_hours}
    age_hours = (now.timestamp() * 1000 - newest) / 3_600_000
    limit = contract.freshness_hours
    return limit is None or age_hours <= limit, {"newest_file_age_hours": round(age_hours, 2), "limit_hours": limit}


def main(argv: list[str] | None = None) -> int:
    names = sorted(load_contracts())
    parser = argparse.ArgumentParser(description="Ingest new landing files into bronze Delta tables.")
    parser.add_argument("--entities", nargs="+", default=names, choices=names)
    parser.add_argument("--batch-id", default=None, help="default: a new UUID")
    parser.add_argument("--from-date", type=date.fromisoformat, help="only YYYY-MM-DD delivery folders from")
    parser.add_argument("--to-date", type=date.fromisoformat, help="... up to this date (inclusive)")
    args = parser.parse_args(argv)
    if (args.from_date is None) != (args.to_date is None):
        parser.error("--from-date and --to-date go together")
    dates = (args.from_date, args.to_date) if args.from_date else None
    batch_id = args.batch_id or uuid.uuid4().hex
    with spark_job("cdp-ingest-bronze") as (spark, settings, reporter):
        spark.sql("CREATE DATABASE IF NOT EXISTS bronze")
        processed = processed_index(spark)
        failed_sources = {}
        for name in args.entities:
            contract = get_contract(name)
            try:
                stats = ingest_contract(spark, contract, settings.landing_uri, batch_id, dates, processed)
            except Exception as exc:
                if is_infrastructure_error(exc):
                    log.error("%s: infrastructure error, stopping: %s", name, short_error(exc))
                    raise
                # A data error no file could be blamed for: this source fails, the next ones run.
                log.exception("%s: ingestion failed on a data error; the other sources go on", name)
                failed_sources[name] = short_error(exc)
                reporter.materialized(f"bronze/{name}", {"status": "failed", "error": failed_sources[name]})
                reporter.checked(f"bronze/{name}", "reconciliation", False,
                                 {"error": failed_sources[name], "error_kind": "data"})
                reporter.checked(f"bronze/{name}", "freshness", False, {"error": failed_sources[name]},
                                 severity="WARN")
                continue
            reporter.materialized(f"bronze/{name}", stats.metadata())
            passed, metadata = reconciliation(spark, stats)
            reporter.checked(f"bronze/{name}", "reconciliation", passed, metadata)
            passed, metadata = freshness(spark, contract, datetime.now(timezone.utc))
            reporter.checked(f"bronze/{name}", "freshness", passed, metadata, severity="WARN")
        if failed_sources:
            log.error("sources that failed on data errors (their checks say why): %s", failed_sources)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
