"""Ingest landing-zone files into bronze Delta tables, one table per source entity.

For every entity and batch: rows that cannot be parsed against the declared schema or lack
their primary key go to ``bronze._quarantine`` with the raw record and a reason; the rest are
MERGEd on the primary key (the newest ``version_column`` wins, so re-running the same files
changes nothing); ``bronze._ingestion_log`` records received = accepted + quarantined.

    python -m spark_jobs.ingest.bronze --entities crm_contacts shop_orders --batch-id b1
"""

from __future__ import annotations

import argparse
import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from spark_jobs.ingest.sources import SOURCES, SourceEntity, get_source
from spark_jobs.reporting import spark_job

log = logging.getLogger(__name__)

CORRUPT_COLUMN = "_corrupt_record"
QUARANTINE_TABLE = "bronze._quarantine"
INGESTION_LOG_TABLE = "bronze._ingestion_log"
METADATA_COLUMNS = ("_source_file", "_batch_id", "_ingested_at", "_row_hash")


@dataclass(frozen=True)
class BatchStats:
    batch_id: str
    entity: str
    files: int
    received: int
    accepted: int
    quarantined: int
    inserted: int
    updated: int
    started_at: datetime
    finished_at: datetime

    def metadata(self) -> dict[str, int | str]:
        return {k: v for k, v in asdict(self).items() if isinstance(v, (int, str))}


def landing_files(landing_dir: Path, entity: SourceEntity) -> list[Path]:
    folder = landing_dir / entity.landing_subdir
    return sorted(p for p in folder.glob("*") if p.is_file() and not p.name.startswith((".", "_")))


def read_landing(spark: SparkSession, entity: SourceEntity, files: list[Path]) -> DataFrame:
    """Parse files with the declared schema; malformed rows keep their raw text in CORRUPT_COLUMN."""
    # StructType.add mutates in place: build a copy so the registry's schema stays as declared.
    schema = StructType([*entity.schema.fields, StructField(CORRUPT_COLUMN, StringType())])
    reader = (
        spark.read.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
    )
    if entity.file_format == "csv":
        reader = reader.option("header", True).option("multiLine", False)
    df = reader.format(entity.file_format).load([str(p) for p in files])
    return df.withColumn("_source_file", F.col("_metadata.file_path"))


def rejection_reason(entity: SourceEntity) -> Column:
    """Why a parsed row is not accepted, or null when it is."""
    missing_key = F.lit(None).cast("string")
    for key in reversed(entity.primary_key):
        missing_key = F.when(F.col(key).isNull() | (F.trim(F.col(key)) == ""),
                             F.lit(f"missing primary key column {key}")).otherwise(missing_key)
    return F.when(
        F.col(CORRUPT_COLUMN).isNotNull(),
        F.lit(f"row does not match the declared {entity.file_format} schema of {entity.name}"),
    ).otherwise(missing_key)


def split_valid(df: DataFrame, entity: SourceEntity) -> tuple[DataFrame, DataFrame]:
    """(accepted rows with the entity's columns, quarantine rows with raw record and reason)."""
    flagged = df.withColumn("_reason", rejection_reason(entity))
    data_columns = [f.name for f in entity.schema.fields]
    accepted = flagged.where(F.col("_reason").isNull()).select(*data_columns, "_source_file")
    raw = F.coalesce(F.col(CORRUPT_COLUMN), F.to_json(F.struct(*data_columns)))
    quarantined = flagged.where(F.col("_reason").isNotNull()).select(
        F.lit(entity.name).alias("entity"),
        F.col("_source_file").alias("source_file"),
        raw.alias("raw_record"),
        F.col("_reason").alias("reason"),
    )
    return accepted, quarantined


def add_ingestion_metadata(df: DataFrame, entity: SourceEntity, batch_id: str, ingested_at: datetime) -> DataFrame:
    data_columns = [f.name for f in entity.schema.fields]
    return (
        df.withColumn("_batch_id", F.lit(batch_id))
        .withColumn("_ingested_at", F.lit(ingested_at).cast("timestamp"))
        .withColumn("_row_hash", F.sha2(F.to_json(F.struct(*data_columns)), 256))
    )


def latest_per_key(df: DataFrame, entity: SourceEntity) -> DataFrame:
    """One row per primary key: the newest version; ties go to the later file name."""
    order = [F.col(entity.version_column).desc_nulls_last(), F.col("_source_file").desc()]
    window = Window.partitionBy(*entity.primary_key).orderBy(*order)
    return df.withColumn("_rank", F.row_number().over(window)).where("_rank = 1").drop("_rank")


def merge_into_bronze(spark: SparkSession, df: DataFrame, entity: SourceEntity) -> tuple[int, int]:
    """MERGE on the primary key; returns (inserted, updated) from the Delta commit's metrics."""
    from delta.tables import DeltaTable

    if not spark.catalog.tableExists(entity.table):
        df.write.format("delta").saveAsTable(entity.table)
        return df.count(), 0
    key_match = " AND ".join(f"t.{k} = s.{k}" for k in entity.primary_key)
    version = entity.version_column
    newer = f"s._row_hash <> t._row_hash AND (t.{version} IS NULL OR s.{version} >= t.{version})"
    target = DeltaTable.forName(spark, entity.table)
    (
        target.alias("t").merge(df.alias("s"), key_match)
        .whenMatchedUpdateAll(condition=newer)
        .whenNotMatchedInsertAll()
        .execute()
    )
    metrics = target.history(1).select("operationMetrics").first()["operationMetrics"] or {}
    return int(metrics.get("numTargetRowsInserted", 0)), int(metrics.get("numTargetRowsUpdated", 0))


def record_quarantine(spark: SparkSession, quarantined: DataFrame, batch_id: str, at: datetime) -> None:
    """Insert-only MERGE: the same bad record from the same file is kept once across re-runs."""
    from delta.tables import DeltaTable

    rows = quarantined.withColumn(
        "quarantine_id", F.sha2(F.concat_ws("\u0001", "entity", "source_file", "raw_record"), 256)
    ).withColumn("batch_id", F.lit(batch_id)).withColumn("quarantined_at", F.lit(at).cast("timestamp"))
    rows = rows.dropDuplicates(["quarantine_id"])
    if not spark.catalog.tableExists(QUARANTINE_TABLE):
        rows.write.format("delta").saveAsTable(QUARANTINE_TABLE)
        return
    (
        DeltaTable.forName(spark, QUARANTINE_TABLE).alias("t")
        .merge(rows.alias("s"), "t.quarantine_id = s.quarantine_id")
        .whenNotMatchedInsertAll()
        .execute()
    )


def record_batch(spark: SparkSession, stats: BatchStats) -> None:
    spark.createDataFrame([asdict(stats)]).write.format("delta").mode("append").saveAsTable(INGESTION_LOG_TABLE)


def ingest_entity(spark: SparkSession, entity: SourceEntity, landing_dir: Path, batch_id: str) -> BatchStats:
    started = datetime.now(timezone.utc)
    files = landing_files(landing_dir, entity)
    if not files:
        log.warning("%s: no files under %s", entity.name, landing_dir / entity.landing_subdir)
        stats = BatchStats(batch_id, entity.name, 0, 0, 0, 0, 0, 0, started, datetime.now(timezone.utc))
        record_batch(spark, stats)
        return stats

    log.info("%s: reading %d file(s)", entity.name, len(files))
    parsed = read_landing(spark, entity, files).cache()  # cached: Spark forbids filtering on the corrupt column otherwise
    try:
        accepted, quarantined = split_valid(parsed, entity)
        received, n_accepted, n_quarantined = parsed.count(), accepted.count(), quarantined.count()
        if received != n_accepted + n_quarantined:
            raise RuntimeError(f"{entity.name}: received {received} != accepted {n_accepted} + quarantined {n_quarantined}")
        if n_quarantined:
            record_quarantine(spark, quarantined, batch_id, started)
            log.warning("%s: %d row(s) quarantined, see %s", entity.name, n_quarantined, QUARANTINE_TABLE)
        rows = latest_per_key(add_ingestion_metadata(accepted, entity, batch_id, started), entity)
        inserted, updated = merge_into_bronze(spark, rows, entity)
    finally:
        parsed.unpersist()

    stats = BatchStats(batch_id, entity.name, len(files), received, n_accepted, n_quarantined,
                       inserted, updated, started, datetime.now(timezone.utc))
    record_batch(spark, stats)
    log.info("%s: received=%d accepted=%d quarantined=%d inserted=%d updated=%d",
             entity.name, received, n_accepted, n_quarantined, inserted, updated)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ingest landing files into bronze Delta tables.")
    parser.add_argument("--entities", nargs="+", default=sorted(SOURCES), choices=sorted(SOURCES))
    parser.add_argument("--batch-id", default=None, help="default: a new UUID")
    args = parser.parse_args(argv)
    batch_id = args.batch_id or uuid.uuid4().hex
    with spark_job("cdp-ingest-bronze") as (spark, settings, reporter):
        spark.sql("CREATE DATABASE IF NOT EXISTS bronze")
        for name in args.entities:
            stats = ingest_entity(spark, get_source(name), settings.landing_dir, batch_id)
            reporter.materialized(f"bronze/{name}", stats.metadata())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
