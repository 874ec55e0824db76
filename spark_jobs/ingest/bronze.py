"""Ingest new landing files into bronze Delta tables, one table per source contract.

For each contract and batch:
1. list the entity's landing files and keep those not yet in ``bronze._processed_files``
   (same path under the landing root, size and modification time), so re-running over the
   same landing zone reads nothing;
2. read them as text and check every row against the contract; a file that cannot be read at
   all (truncated gzip, wrong format, a required CSV column missing) is recorded as failed
   with the error and the other files still load;
3. rows that break the contract go to ``bronze._quarantine`` with the raw record and every
   reason; the rest are applied to ``bronze.<entity>`` by the contract's kind (see apply.py);
   a ``cdc`` source also appends every change record to ``bronze.<entity>_history``;
4. ``bronze._processed_files`` records each file, ``bronze._ingestion_log`` the batch, with
   received = accepted + quarantined + erased (rows of erased people, dropped: see
   spark_jobs/privacy/tombstones.py).

A file is the unit of failure; a source that fails on data no file can be blamed for is
reported and the next source runs; only an error of the platform stops the job. The commit
order and what a re-run after a crash does are described at :func:`ingest_contract`.

New columns in the files are added to the table (schema evolution) and reported.

    python -m spark_jobs.ingest.bronze [--entities crm_contacts web_events] [--from-date D --to-date D]
"""

from __future__ import annotations

import argparse
import logging
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from urllib.parse import quote, unquote, urlparse

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from spark_jobs import plots
from spark_jobs.ingest.apply import (
    ApplyResult,
    add_metadata,
    apply_to_bronze,
    history_table,
    latest_per_key,
    merge_into,
    record_history,
    retry_on_write_conflict,
)
from spark_jobs.ingest.contracts import EVENT_DATE_COLUMN, Contract, get_contract, load_contracts
from spark_jobs.ingest.landing import LandingFile, delivery_date, list_landing_files, spark_literal
from spark_jobs.ingest.parse import (
    EXTRA_FIELDS,
    EXTRA_KEYS,
    REASON,
    add_new_columns,
    cap_new_columns,
    is_infrastructure_error,
    read_files,
    short_error,
    storable_names,
    validate,
)
from spark_jobs.jobspec import Check
from spark_jobs.parallel import completed
from spark_jobs.privacy.tombstones import Tombstones, erasure_salt
from spark_jobs.reporting import spark_job
from spark_jobs.settings import Settings

log = logging.getLogger(__name__)

# The checks every bronze table gets (one per contract; Dagster declares them from these).
RECONCILIATION = Check(
    "reconciliation",
    "bronze/<source>",
    "received = accepted + quarantined + erased, and the quarantine holds them",
    blocking=True,
)
FRESHNESS = Check("freshness", "bronze/<source>", "the newest file arrived within the contract's freshness_hours")

QUARANTINE_TABLE = "bronze._quarantine"
INGESTION_LOG_TABLE = "bronze._ingestion_log"
PROCESSED_FILES_TABLE = "bronze._processed_files"

PROCESSED_FILES_SCHEMA = StructType(
    [
        StructField("entity", StringType()),
        StructField("file_path", StringType()),
        StructField("file_size", LongType()),
        StructField("file_modified_ms", LongType()),
        StructField("status", StringType()),
        StructField("error", StringType()),
        StructField("received", LongType()),
        StructField("accepted", LongType()),
        StructField("quarantined", LongType()),
        StructField("batch_id", StringType()),
        StructField("processed_at", TimestampType()),
        StructField("landing_path", StringType()),
        StructField("erased", LongType()),
    ]
)

# A quarantined record keeps this much of its raw text (a runaway line can be megabytes);
# raw_record_chars says how long it was.
MAX_RAW_RECORD_CHARS = 32_768


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
    new_columns: str  # comma-separated; empty when the files match the contract
    started_at: datetime
    finished_at: datetime
    erased: int = 0  # rows of erased people, dropped (privacy.erasure_tombstones); nothing else kept

    def metadata(self) -> dict[str, int | str]:
        return {k: v for k, v in asdict(self).items() if isinstance(v, (int, str))}


@dataclass(frozen=True)
class FileOutcome:
    file: LandingFile
    status: str  # loaded | failed
    error: str | None = None
    received: int = 0
    accepted: int = 0
    erased: int = 0  # of received: rows of erased people, dropped before the contract's outcome

    @property
    def quarantined(self) -> int:
        return self.received - self.accepted - self.erased


def _processed_keys(spark: SparkSession, landing_root: str) -> DataFrame:
    """(entity, landing_path, size, modification time) of every file processed (loaded or
    failed). Rows written before landing_path was recorded get it from their path."""
    processed = spark.table(PROCESSED_FILES_TABLE)
    if "landing_path" not in processed.columns:
        processed = processed.withColumn("landing_path", F.lit(None).cast("string"))
    root = unquote(urlparse(landing_root).path).rstrip("/") + "/"
    local = F.regexp_replace("file_path", r"^[A-Za-z][A-Za-z0-9+.-]*:(//[^/]*)?", "")
    derived = F.when(local.startswith(root), local.substr(F.lit(len(root) + 1), F.lit(1 << 30)))
    return processed.select(
        "entity", "file_size", "file_modified_ms", F.coalesce("landing_path", derived).alias("landing_path")
    )


def pending_files(
    spark: SparkSession, landing_root: str, contracts: list[Contract], dates: tuple[date, date] | None = None
) -> dict[str, list[LandingFile]]:
    """Each contract's landing files not yet processed (a file is the same file while its path
    under the landing root, size and modification time are): one anti-join against
    ``bronze._processed_files`` for every contract, so the bookkeeping table is never
    collected to the driver, only the pending files are."""
    listed = {c.name: list_landing_files(spark, landing_root, c, dates) for c in contracts}
    if not any(listed.values()) or not spark.catalog.tableExists(PROCESSED_FILES_TABLE):
        return listed
    rows = [
        (name, i, f.landing_path, f.size, f.modified_ms) for name, files in listed.items() for i, f in enumerate(files)
    ]
    listing = spark.createDataFrame(
        rows, "entity string, i long, landing_path string, file_size long, file_modified_ms long"
    )
    keys = ["entity", "landing_path", "file_size", "file_modified_ms"]
    pending = listing.join(_processed_keys(spark, landing_root), keys, "left_anti").select("entity", "i").collect()
    keep = {(r.entity, r.i) for r in pending}
    return {name: [f for i, f in enumerate(files) if (name, i) in keep] for name, files in listed.items()}


def _bisect_failures(files: list[LandingFile], probe, known_to_fail: bool = True) -> dict[str, str]:
    """The files that make ``probe`` raise, found by halving: k bad files among n cost about
    2k*log2(n) probes, not n (a source delivers hundreds of files a day)."""
    if not files:
        return {}
    if not known_to_fail or len(files) == 1:
        try:
            probe(files)
            return {}
        except Exception as exc:
            if is_infrastructure_error(exc):
                raise
            if len(files) == 1:
                return {files[0].path: short_error(exc)}
    middle = len(files) // 2
    return {**_bisect_failures(files[:middle], probe, False), **_bisect_failures(files[middle:], probe, False)}


def unreadable_files(spark: SparkSession, contract: Contract, files: list[LandingFile]) -> dict[str, str]:
    """The files that cannot even be read as text or CSV (only after a batch read failed)."""

    def read(group: list[LandingFile]) -> None:
        paths = [spark_literal(f.path) for f in group]
        if contract.format == "jsonl":
            spark.read.text(paths).count()
        else:
            spark.read.option("header", True).option("multiLine", True).option("escape", '"').option(
                "encoding", contract.encoding
            ).csv(paths).count()

    return {path: f"unreadable file: {error}" for path, error in _bisect_failures(files, read).items()}


def _named_file_fails(
    spark: SparkSession, contract: Contract, exc: Exception, files: list[LandingFile]
) -> dict[str, str]:
    """Spark names the file a read error came from (``Encountered error while reading file
    ...``): when that one file fails on its own, it is the culprit, found in one probe."""
    text = str(exc)
    named = [f for f in files if f.path in text or quote(f.path, safe="/:") in text]
    named = [f for f in named if not any(g.path != f.path and g.path.startswith(f.path) for g in named)]
    if len(named) != 1:
        return {}
    return unreadable_files(spark, contract, named)


@dataclass
class ParsedBatch:
    rows: DataFrame | None  # every row of the readable files, with its _reason (None: no file read)
    cached: DataFrame | None  # the persisted frame behind ``rows``; release() frees it
    outcomes: list[FileOutcome]
    new_columns: list[str]

    def release(self) -> None:
        if self.cached is not None:
            self.cached.unpersist()


def failing_files(spark: SparkSession, contract: Contract, files: list[LandingFile]) -> dict[str, str]:
    """The files that fail when read and checked as the batch does (only after the batch failed
    and the plain read found no culprit)."""

    def read_and_check(group: list[LandingFile]) -> None:
        raw = read_files(spark, contract, group)
        if raw.frame is not None:
            validate(raw.frame, contract, raw.new_columns).groupBy("_source_file").count().collect()

    return {
        path: f"file could not be read or checked: {error}"
        for path, error in _bisect_failures(files, read_and_check).items()
    }


def _table_columns(spark: SparkSession, contract: Contract) -> set[str]:
    return (
        {c.lower() for c in spark.table(contract.table).columns} if spark.catalog.tableExists(contract.table) else set()
    )


def parse_batch(spark: SparkSession, contract: Contract, files: list[LandingFile]) -> ParsedBatch:
    """Read and check the files. A file that fails (unreadable, or an error that only reading
    or checking it triggers) is isolated and reported as failed; the rows of the other files
    are all in ``rows``, cached."""
    failed: dict[str, str] = {}
    existing = _table_columns(spark, contract)
    for attempt in (1, 2, 3):
        readable = [f for f in files if f.path not in failed]
        flagged = None
        try:
            raw = read_files(spark, contract, readable, existing)
            failed.update(raw.failed)
            if raw.frame is None:
                return ParsedBatch(None, None, [FileOutcome(f, "failed", failed[f.path]) for f in files], [])
            flagged = validate(raw.frame, contract, raw.new_columns).persist(StorageLevel.MEMORY_AND_DISK)
            extra_keys = (
                F.flatten(F.collect_set(EXTRA_KEYS))
                if EXTRA_KEYS in flagged.columns
                else F.array().cast("array<string>")
            )
            per_file = (
                flagged.groupBy("_source_file")
                .agg(
                    F.count(F.lit(1)).alias("received"),
                    F.count(F.when(F.col(REASON).isNull(), 1)).alias("accepted"),
                    F.min(F.coalesce(F.col(REASON).startswith("unparseable"), F.lit(False))).alias("all_corrupt"),
                    extra_keys.alias("extra_keys"),
                )
                .collect()
            )
            break
        except Exception as exc:
            if flagged is not None:
                flagged.unpersist()
            if is_infrastructure_error(exc) or attempt == 3:
                raise
            log.warning("%s: the batch failed (%s); finding the file(s) that cause it", contract.name, short_error(exc))
            isolated = _named_file_fails(spark, contract, exc, readable) if attempt == 1 else {}
            isolated = isolated or (unreadable_files(spark, contract, readable) if attempt == 1 else {})
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
    columns, overflow = cap_new_columns(contract, json_keys, renamed, existing)
    if renamed:
        log.warning("%s: new key(s) renamed so that Delta can store them: %s", contract.name, renamed)
    new_columns = raw.new_columns or [renamed.get(k, k) for k in columns] + ([EXTRA_FIELDS] if overflow else [])
    rows = flagged
    if corrupt_only or (json_keys and EXTRA_KEYS in flagged.columns):
        # Rare (wrong-format files, undeclared JSON keys): one more pass to re-cache the batch.
        rows = add_new_columns(
            flagged.where(~F.col("_source_file").isin(list(corrupt_only))), columns, renamed, overflow
        )
        rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
        rows.count()
        flagged.unpersist()
        flagged = rows
    elif EXTRA_KEYS in flagged.columns:
        rows = flagged.drop(EXTRA_KEYS)  # still served by flagged's cache
    return ParsedBatch(rows, flagged, outcomes, new_columns)


def record_quarantine(
    spark: SparkSession,
    rejected: DataFrame,
    contract: Contract,
    outcomes: list[FileOutcome],
    batch_id: str,
    at: datetime,
) -> None:
    """MERGE: the same bad record from the same file is kept once across re-runs, wherever the
    landing zone is mounted (the id uses the file's path under the landing root). A record kept
    by a run that died before recording its files is taken over by the batch that does record
    them, so each batch's quarantine rows can be counted by batch id (see ``reconciliation``)."""
    files = spark.createDataFrame(
        [(o.file.path, o.file.landing_path) for o in outcomes], "_source_file string, landing_path string"
    )
    # The n-th copy of an identical bad line in a file is its own record (nothing is lost), and
    # the same n-th copy on a re-run is the same record (nothing is doubled).
    occurrence = F.row_number().over(Window.partitionBy("_source_file", "_raw").orderBy("_raw"))
    rows = (
        rejected.join(F.broadcast(files), "_source_file")
        .select(
            F.lit(contract.name).alias("entity"),
            F.col("_source_file").alias("source_file"),
            "landing_path",
            # bytes that are not UTF-8 are stored as U+FFFD: other readers of the table expect valid text
            F.substring(F.make_valid_utf8("_raw"), 1, MAX_RAW_RECORD_CHARS).alias("raw_record"),
            F.length("_raw").alias("raw_record_chars"),
            F.col(REASON).alias("reason"),
            F.sha2(
                F.concat_ws("\u0001", F.lit(contract.name), "landing_path", "_raw", occurrence.cast("string")), 256
            ).alias("quarantine_id"),
        )
        .withColumn("batch_id", F.lit(batch_id))
        .withColumn("quarantined_at", F.lit(at).cast("timestamp"))
    )

    def write() -> None:  # another ingestion step may create the table first: then MERGE
        if not spark.catalog.tableExists(QUARANTINE_TABLE):
            rows.write.format("delta").saveAsTable(QUARANTINE_TABLE)
        else:
            merge_into(
                spark,
                rows,
                QUARANTINE_TABLE,
                "t.quarantine_id = s.quarantine_id",
                update_when="t.batch_id <> s.batch_id",
            )

    retry_on_write_conflict(write, QUARANTINE_TABLE)


def record_files(
    spark: SparkSession, contract: Contract, outcomes: list[FileOutcome], batch_id: str, at: datetime
) -> None:
    rows = [
        (
            contract.name,
            o.file.path,
            o.file.size,
            o.file.modified_ms,
            o.status,
            o.error,
            o.received,
            o.accepted,
            o.quarantined,
            batch_id,
            at,
            o.file.landing_path,
            o.erased,
        )
        for o in outcomes
    ]
    frame = spark.createDataFrame(rows, PROCESSED_FILES_SCHEMA)
    retry_on_write_conflict(  # a blind append; only the table's creation can race another step
        lambda: (
            frame.write.format("delta").mode("append").option("mergeSchema", "true").saveAsTable(PROCESSED_FILES_TABLE)
        ),
        PROCESSED_FILES_TABLE,
    )


INGESTION_LOG_SCHEMA = StructType(
    [
        StructField("batch_id", StringType()),
        StructField("entity", StringType()),
        *[
            StructField(name, LongType())
            for name in ("files", "failed_files", "received", "accepted", "quarantined", "inserted", "updated")
        ],
        StructField("new_columns", StringType()),
        StructField("started_at", TimestampType()),
        StructField("finished_at", TimestampType()),
        StructField("erased", LongType()),
    ]
)


def record_batch(spark: SparkSession, stats: BatchStats) -> None:
    _append_log(spark, [Row(**asdict(stats))])


def _append_log(spark: SparkSession, rows: list[Row]) -> None:
    frame = spark.createDataFrame([tuple(r[f.name] for f in INGESTION_LOG_SCHEMA) for r in rows], INGESTION_LOG_SCHEMA)
    retry_on_write_conflict(
        lambda: (
            frame.write.format("delta").mode("append").option("mergeSchema", "true").saveAsTable(INGESTION_LOG_TABLE)
        ),
        INGESTION_LOG_TABLE,
    )


def _apply(
    spark: SparkSession, contract: Contract, accepted: DataFrame, batch_id: str, started: datetime
) -> ApplyResult:
    changes = add_metadata(accepted, contract, batch_id, started)
    if contract.kind == "cdc":
        log.info(
            "%s: %d change record(s) added to %s",
            contract.name,
            record_history(spark, changes, contract),
            history_table(contract),
        )
    return apply_to_bronze(spark, latest_per_key(changes, contract), contract)


def apply_batch(
    spark: SparkSession,
    contract: Contract,
    rows: DataFrame,
    outcomes: list[FileOutcome],
    batch_id: str,
    started: datetime,
) -> tuple[list[FileOutcome], int, int]:
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
            undeclared = [
                c
                for c in rows_of_file.columns
                if not c.startswith("_") and c not in contract.column_names and c != EVENT_DATE_COLUMN
            ]
            if undeclared:  # a new column only another file has is no part of this file's rows
                filled = rows_of_file.agg(*[F.count(F.col(f"`{c}`")).alias(c) for c in undeclared]).first()
                rows_of_file = rows_of_file.drop(*[c for c in undeclared if filled[c] == 0])
            result = _apply(spark, contract, rows_of_file, batch_id, started)
            inserted, updated = inserted + result.inserted, updated + result.updated
            retried.append(o)
        except Exception as exc:
            if is_infrastructure_error(exc):
                raise
            retried.append(
                FileOutcome(o.file, "failed", f"rows could not be applied to {contract.table}: {short_error(exc)}")
            )
    return retried, inserted, updated


def drop_erased(
    rows: DataFrame, contract: Contract, outcomes: list[FileOutcome], tombstones: Tombstones
) -> tuple[DataFrame, list[FileOutcome]]:
    """The batch without the rows of erased people, and each file's outcome with them counted
    as ``erased`` (taken out of accepted or quarantined, whichever they were): neither bronze
    nor the quarantine gets them, so a re-delivered file or a replay cannot bring a person back."""
    erased = tombstones.matches(rows, contract)
    if erased is None:
        return rows, outcomes
    per_file = {
        r["_source_file"]: (r["erased"], r["erased_accepted"])
        for r in rows.where(erased)
        .groupBy("_source_file")
        .agg(F.count(F.lit(1)).alias("erased"), F.count(F.when(F.col(REASON).isNull(), 1)).alias("erased_accepted"))
        .collect()
    }
    if not per_file:
        return rows, outcomes
    log.warning("%s: %d row(s) of erased people dropped", contract.name, sum(e for e, _ in per_file.values()))
    counted = []
    for o in outcomes:
        dropped, dropped_accepted = per_file.get(o.file.path, (0, 0))
        counted.append(replace(o, accepted=o.accepted - dropped_accepted, erased=dropped) if dropped else o)
    return rows.where(~erased), counted


def ingest_contract(
    spark: SparkSession,
    contract: Contract,
    landing_root: str,
    batch_id: str,
    dates: tuple[date, date] | None = None,
    pending: list[LandingFile] | None = None,
    tombstones: Tombstones | None = None,
) -> BatchStats:
    """Ingest the contract's new files as one batch. ``pending``: its files not yet processed
    (listed here when not given; a job ingesting many sources lists them all at once). Rows of
    an erased person (``tombstones``) are dropped first and only counted.

    Commit order, each step one Delta transaction: history and bronze MERGE, quarantine MERGE,
    ``_processed_files`` (the batch is done), ``_ingestion_log``. A crash before the processed
    files commit leaves the files pending, and the re-run applies them again, which changes
    nothing already applied (every write is keyed); a crash after it leaves a batch without a
    log row, which :func:`recover_batch_log` writes from the processed files."""
    started = datetime.now(UTC)
    files = pending if pending is not None else pending_files(spark, landing_root, [contract], dates)[contract.name]
    inserted = updated = 0
    new_columns: list[str] = []
    outcomes: list[FileOutcome] = []
    if not files:
        log.info("%s: no new files", contract.name)
    else:
        log.info("%s: reading %d new file(s)", contract.name, len(files))
        batch = parse_batch(spark, contract, files)
        outcomes, new_columns = batch.outcomes, batch.new_columns
        if tombstones is not None and batch.rows is not None:
            batch.rows, outcomes = drop_erased(batch.rows, contract, outcomes, tombstones)
        for o in outcomes:
            if o.status == "failed":
                log.error("%s: file %s failed: %s", contract.name, o.file.path, o.error)
        if new_columns:
            log.warning(
                "%s: new column(s) %s not in the contract; added to %s (schema evolution)",
                contract.name,
                new_columns,
                contract.table,
            )
        if batch.rows is not None:
            try:
                outcomes, inserted, updated = apply_batch(spark, contract, batch.rows, outcomes, batch_id, started)
                loaded = [o.file.path for o in outcomes if o.status == "loaded" and o.quarantined]
                if loaded:
                    rejected = batch.rows.where(F.col(REASON).isNotNull() & F.col("_source_file").isin(loaded))
                    record_quarantine(spark, rejected, contract, outcomes, batch_id, started)
            finally:
                batch.release()
        record_files(spark, contract, outcomes, batch_id, started)

    loaded = [o for o in outcomes if o.status == "loaded"]
    stats = BatchStats(
        batch_id=batch_id,
        entity=contract.name,
        files=len(loaded),
        failed_files=len(outcomes) - len(loaded),
        received=sum(o.received for o in loaded),
        accepted=sum(o.accepted for o in loaded),
        quarantined=sum(o.quarantined for o in loaded),
        erased=sum(o.erased for o in loaded),
        inserted=inserted,
        updated=updated,
        new_columns=",".join(new_columns),
        started_at=started,
        finished_at=datetime.now(UTC),
    )
    record_batch(spark, stats)
    log.info(
        "%s: files=%d failed=%d received=%d accepted=%d quarantined=%d erased=%d inserted=%d updated=%d",
        contract.name,
        stats.files,
        stats.failed_files,
        stats.received,
        stats.accepted,
        stats.quarantined,
        stats.erased,
        stats.inserted,
        stats.updated,
    )
    return stats


def reconciliation(spark: SparkSession, stats: BatchStats) -> tuple[bool, dict]:
    """received = accepted + quarantined + erased for the batch, and the quarantine table really
    holds the batch's quarantined rows (read back, not taken from the counters). By batch id,
    not by file path: a file delivered again under the same name with other content keeps the
    earlier delivery's rejected rows, which are not this batch's."""
    stored = 0
    if stats.quarantined and spark.catalog.tableExists(QUARANTINE_TABLE):
        stored = (
            spark.table(QUARANTINE_TABLE)
            .where((F.col("entity") == stats.entity) & (F.col("batch_id") == stats.batch_id))
            .count()
        )
    passed = stats.received == stats.accepted + stats.quarantined + stats.erased and stored == stats.quarantined
    return passed, {
        "received": stats.received,
        "accepted": stats.accepted,
        "quarantined": stats.quarantined,
        "erased": stats.erased,
        "quarantine_rows_stored": stored,
        "failed_files": stats.failed_files,
    }


def recover_batch_log(spark: SparkSession) -> int:
    """Write the ingestion-log row of every batch whose files were recorded but whose log row
    was not (the job died between the two commits), from its processed files; inserted and
    updated are unknown there (null). Returns the number of batches recovered."""
    if not spark.catalog.tableExists(PROCESSED_FILES_TABLE):
        return 0
    loaded = F.col("status") == "loaded"
    files = spark.table(PROCESSED_FILES_TABLE)
    if "erased" not in files.columns:  # written before erasure existed
        files = files.withColumn("erased", F.lit(0).cast("long"))
    if spark.catalog.tableExists(INGESTION_LOG_TABLE):
        files = files.join(
            spark.table(INGESTION_LOG_TABLE).select("entity", "batch_id"), ["entity", "batch_id"], "left_anti"
        )
    missing = (
        files.groupBy("batch_id", "entity").agg(
            F.count(F.when(loaded, 1)).alias("files"),
            F.count(F.when(~loaded, 1)).alias("failed_files"),
            *[
                F.coalesce(F.sum(F.when(loaded, F.col(c))), F.lit(0)).alias(c)
                for c in ("received", "accepted", "quarantined", "erased")
            ],
            F.lit(None).cast("long").alias("inserted"),
            F.lit(None).cast("long").alias("updated"),
            F.lit("").alias("new_columns"),
            F.min("processed_at").alias("started_at"),
            F.max("processed_at").alias("finished_at"),
        )
    ).collect()
    if missing:
        log.warning(
            "recovering the ingestion log of %d batch(es) whose job stopped after recording their files: %s",
            len(missing),
            sorted({(r.entity, r.batch_id) for r in missing}),
        )
        _append_log(spark, missing)
    return len(missing)


def freshness(spark: SparkSession, contract: Contract, now: datetime) -> tuple[bool, dict]:
    """The newest successfully loaded file arrived within the contract's freshness_hours. A source
    whose contract sets none (one that delivers on demand, such as erasure requests) passes, with
    its newest file's age for the record: no file for weeks is normal there."""
    newest = (
        spark.table(PROCESSED_FILES_TABLE)
        .where((F.col("entity") == contract.name) & (F.col("status") == "loaded"))
        .agg(F.max("file_modified_ms"))
        .first()[0]
        if spark.catalog.tableExists(PROCESSED_FILES_TABLE)
        else None
    )
    age_hours = None if newest is None else round((now.timestamp() * 1000 - newest) / 3_600_000, 2)
    limit = contract.freshness_hours
    if limit is None:
        return True, {"outcome": "no freshness limit in the contract", "newest_file_age_hours": age_hours}
    return age_hours is not None and age_hours <= limit, {"newest_file_age_hours": age_hours, "limit_hours": limit}


CHART_DAYS = 30  # delivery days the ingestion chart shows (the newest)


def delivery_chart(spark: SparkSession, entity: str):
    """Received, accepted and quarantined rows per delivery day of the source's processed files
    (the newest CHART_DAYS days), as a chart; None without files or without matplotlib."""
    if not spark.catalog.tableExists(PROCESSED_FILES_TABLE):  # nothing delivered anywhere yet
        return None
    files = (
        spark.table(PROCESSED_FILES_TABLE)
        .where(F.col("entity") == entity)
        .select("file_path", "file_modified_ms", "received", "accepted", "quarantined")
        .collect()
    )
    per_day: dict[date, list[int]] = {}
    for f in files:
        totals = per_day.setdefault(delivery_date(f.file_path, f.file_modified_ms or 0), [0, 0, 0])
        for i, value in enumerate((f.received, f.accepted, f.quarantined)):
            totals[i] += value or 0
    days = sorted(per_day)[-CHART_DAYS:]
    if not days:
        return None
    return plots.grouped_bars(
        f"{entity}: rows per delivery day",
        [d.isoformat() for d in days],
        {name: [per_day[d][i] for d in days] for i, name in enumerate(("received", "accepted", "quarantined"))},
        "rows",
    )


def ingest_sources(
    spark: SparkSession,
    contracts: list[Contract],
    landing_root: str,
    batch_id: str,
    dates: tuple[date, date] | None = None,
    reporter=None,
    tombstones: Tombstones | None = None,
    threads: int | None = None,
) -> dict[str, BatchStats | str]:
    """Ingest the sources, ``threads`` at a time (default ``CDP_TABLE_PARALLELISM``): each
    writes its own bronze table, and the bookkeeping writes they share are retried on a Delta
    conflict. A source that fails on a data error no file could be blamed for is reported and
    the others go on; an infrastructure error stops the job. Returns each source's stats or
    error."""
    spark.sql("CREATE DATABASE IF NOT EXISTS bronze")
    recover_batch_log(spark)
    pending = pending_files(spark, landing_root, contracts, dates)

    def ingest(contract: Contract) -> BatchStats | str:
        try:
            return ingest_contract(spark, contract, landing_root, batch_id, dates, pending[contract.name], tombstones)
        except Exception as exc:
            if is_infrastructure_error(exc):
                log.error("%s: infrastructure error, stopping: %s", contract.name, short_error(exc))
                raise
            # A data error no file could be blamed for: this source fails, the next ones run.
            log.exception("%s: ingestion failed on a data error; the other sources go on", contract.name)
            return short_error(exc)

    threads = Settings.from_env().table_parallelism if threads is None else threads
    results: dict[str, BatchStats | str] = {}
    for contract, result in completed(ingest, contracts, threads):
        results[contract.name] = result
        if reporter is not None:
            report(spark, reporter, contract, result)
    failed = {name: r for name, r in results.items() if isinstance(r, str)}
    if failed:
        log.error("sources that failed on data errors (their checks say why): %s", failed)
    return {contract.name: results[contract.name] for contract in contracts}


def report(spark: SparkSession, reporter, contract: Contract, result: BatchStats | str) -> None:
    """The source's materialisation and its checks: reconciliation, and freshness (a warning)."""
    asset = f"bronze/{contract.name}"
    if isinstance(result, str):
        reporter.materialized(asset, {"status": "failed", "error": result})
        reporter.checked(asset, RECONCILIATION.name, False, {"error": result, "error_kind": "data"})
        reporter.checked(asset, FRESHNESS.name, False, {"error": result}, severity="WARN")
        return
    try:
        chart = delivery_chart(spark, contract.name)
    except Exception:  # a chart is a picture: it never fails an ingestion
        log.warning("%s: no deliveries chart", contract.name, exc_info=True)
        chart = None
    reporter.materialized(asset, {**result.metadata(), **({"chart_deliveries": chart} if chart else {})})
    passed, metadata = reconciliation(spark, result)
    reporter.checked(asset, RECONCILIATION.name, passed, metadata)
    passed, metadata = freshness(spark, contract, datetime.now(UTC))
    reporter.checked(asset, FRESHNESS.name, passed, metadata, severity="WARN")


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
        tombstones = Tombstones.load(spark, lambda: erasure_salt(settings.home))
        contracts = [get_contract(n) for n in args.entities]
        ingest_sources(
            spark, contracts, settings.landing_uri, batch_id, dates, reporter, tombstones, settings.table_parallelism
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
