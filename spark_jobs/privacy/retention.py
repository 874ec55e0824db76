"""Retention: delete what the platform keeps longer than it needs (spark_jobs/privacy/retention.yml).

    python -m spark_jobs.privacy.retention [--dry-run] [--rules path.yml]

Three kinds of rule, each logged to ``privacy.retention_log`` (one row per target per run:
what, the cutoff, how much was removed; never a removed value):

- ``landing``: delivered files older than ``landing_files_days`` by delivery day are deleted
  from the landing zone (a local folder, or an ``s3a://`` prefix through boto3);
- ``rows``: rows of a table older than its rule (``bronze._quarantine`` keeps raw records that
  failed a contract, which may hold personal data) are deleted;
- ``vacuum``: every Delta table of the listed databases is vacuumed (LITE: what to remove
  comes from the Delta log), so files that only older versions use (a deleted row lives on in
  them) are removed once older than ``vacuum_retention_hours``.

A dry run computes the same cutoffs and counts and deletes nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from spark_jobs.ingest.landing import delivery_date, is_hidden, walk_local
from spark_jobs.spark import table_names

log = logging.getLogger(__name__)

RULES_FILE = Path(__file__).with_name("retention.yml")
LOG_TABLE = "privacy.retention_log"
LOG_SCHEMA = (
    "run_id string, kind string, target string, cutoff timestamp, removed bigint, dry_run boolean, "
    "finished_at timestamp, detail string"
)
DELTA_MINIMUM_HOURS = 168


class RetentionRulesError(ValueError):
    """A retention file that cannot be applied as written (the message names the setting)."""


@dataclass(frozen=True)
class Rules:
    landing_files_days: int | None
    tables: dict[str, tuple[str, int]]  # table -> (timestamp column, days)
    vacuum_retention_hours: int
    vacuum_databases: tuple[str, ...]
    erased_data_retention_hours: int = DELTA_MINIMUM_HOURS


def load_rules(path: Path = RULES_FILE) -> Rules:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}

    def days(value, where: str) -> int:
        if not isinstance(value, int) or value < 1:
            raise RetentionRulesError(f"{path.name}: {where} must be a whole number of days >= 1, got {value!r}")
        return value

    landing = raw.get("landing_files_days")
    tables = {}
    for table, rule in (raw.get("tables") or {}).items():
        if not isinstance(rule, dict) or not rule.get("column"):
            raise RetentionRulesError(f"{path.name}: tables.{table} needs a timestamp column and days")
        tables[table] = (str(rule["column"]), days(rule.get("days"), f"tables.{table}.days"))
    hours = raw.get("vacuum_retention_hours", DELTA_MINIMUM_HOURS)
    if not isinstance(hours, int) or hours < DELTA_MINIMUM_HOURS:
        raise RetentionRulesError(
            f"{path.name}: vacuum_retention_hours must be at least {DELTA_MINIMUM_HOURS} (Delta's safety minimum: a "
            f"reader or writer still working on an older version would lose its files), got {hours!r}"
        )
    erased = raw.get("erased_data_retention_hours", DELTA_MINIMUM_HOURS)
    if not isinstance(erased, int) or not 0 <= erased <= 30 * 24:
        raise RetentionRulesError(
            f"{path.name}: erased_data_retention_hours must be 0 to 720 (the law allows a month), got {erased!r}"
        )
    return Rules(
        erased_data_retention_hours=erased,
        landing_files_days=None if landing is None else days(landing, "landing_files_days"),
        tables=tables,
        vacuum_retention_hours=hours,
        vacuum_databases=tuple(raw.get("vacuum_databases") or ()),
    )


def _old_landing_files(landing_uri: str, cutoff: date, s3) -> list[str]:
    """Files delivered before ``cutoff`` (paths as the store names them); ``s3`` makes the
    boto3 client for an object-store landing zone."""
    parsed = urlparse(landing_uri)
    if parsed.scheme in ("", "file"):
        files, _ = walk_local(unquote(parsed.path) or landing_uri)
        return sorted(f.path for f in files if delivery_date(f.path, f.modified_ms) < cutoff)
    if parsed.scheme in ("s3", "s3a"):
        client = s3()
        prefix = parsed.path.lstrip("/").rstrip("/") + "/"
        old = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=parsed.netloc, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :]
                modified_ms = int(item["LastModified"].timestamp() * 1000)
                if not is_hidden(relative) and delivery_date(item["Key"], modified_ms) < cutoff:
                    old.append(f"s3://{parsed.netloc}/{item['Key']}")
        return sorted(old)
    raise RetentionRulesError(f"landing zone {landing_uri}: only local folders and s3a:// prefixes are supported")


def _delete_files(paths: list[str], s3) -> None:
    by_bucket: dict[str, list[str]] = {}
    for path in paths:
        parsed = urlparse(path)
        if parsed.scheme == "s3":
            by_bucket.setdefault(parsed.netloc, []).append(parsed.path.lstrip("/"))
        else:
            os.remove(path)
    for bucket, keys in by_bucket.items():
        client = s3()
        for start in range(0, len(keys), 1000):  # the DeleteObjects limit
            client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]]})


def vacuum(spark: SparkSession, name: str, hours: int, *, dry_run: bool = False) -> int:
    """VACUUM one table; returns the files removed (or, dry, that would be). LITE reads what to
    remove from the Delta log (seconds, where a FULL vacuum lists the table's folder: a minute
    per small table here); it needs the log entries of the removals, so when they were cleaned
    up already, FULL runs instead. A real VACUUM runs once and its count is read from the
    VACUUM END entry it writes to the table's history (a DRY RUN first cost as much again)."""
    spark.conf.set("spark.databricks.delta.vacuum.logging.enabled", "true")  # on every store
    for mode in ("LITE", "FULL"):
        query = f"VACUUM {name} {mode} RETAIN {hours} HOURS"
        try:
            if dry_run:
                return spark.sql(f"{query} DRY RUN").count()  # the files it would delete
            spark.sql(query).collect()
            return _files_vacuumed(spark, name)
        except Exception as error:
            if mode == "FULL" or "VACUUM_LITE" not in str(error).upper().replace(" ", "_"):
                raise
            log.info("%s: the log no longer holds every removal; vacuuming in FULL mode", name)
    raise AssertionError("unreachable")


def _files_vacuumed(spark: SparkSession, name: str) -> int:
    """numDeletedFiles of the newest VACUUM END in the table's history (a write that committed
    right after it may come first)."""
    for entry in spark.sql(f"DESCRIBE HISTORY {name} LIMIT 10").collect():
        if entry.operation == "VACUUM END":
            return int((entry.operationMetrics or {}).get("numDeletedFiles", 0))
    log.warning("%s: vacuumed, but no VACUUM END entry in its history to count the files", name)
    return 0


class RetentionRun:
    def __init__(self, spark: SparkSession, rules: Rules, landing_uri: str, *, dry_run: bool = False, s3=None) -> None:
        self.spark, self.rules, self.landing_uri, self.dry_run = spark, rules, landing_uri, dry_run
        self.s3 = s3  # a boto3 S3 client factory, for a landing zone on an object store
        self.run_id = uuid.uuid4().hex[:12]
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.entries: list[tuple] = []

    def _note(self, kind: str, target: str, cutoff: datetime | None, removed: int, detail: str = "") -> None:
        self.entries.append((self.run_id, kind, target, cutoff, removed, self.dry_run, datetime.now(UTC), detail))
        verb = "would remove" if self.dry_run else "removed"
        log.info("retention %s %s: %s %d (cutoff %s) %s", kind, target, verb, removed, cutoff, detail)

    def landing(self) -> None:
        if self.rules.landing_files_days is None:
            return
        cutoff = (self.now - timedelta(days=self.rules.landing_files_days)).date()
        old = _old_landing_files(self.landing_uri, cutoff, self.s3)
        if not self.dry_run:
            _delete_files(old, self.s3)
        self._note("landing", self.landing_uri, datetime.combine(cutoff, datetime.min.time(), UTC), len(old))

    def rows(self) -> None:
        for table, (column, days) in sorted(self.rules.tables.items()):
            if not self.spark.catalog.tableExists(table):
                self._note("rows", table, None, 0, "table does not exist (yet)")
                continue
            cutoff = self.now - timedelta(days=days)
            older = F.col(column) < F.lit(cutoff.replace(tzinfo=None)).cast("timestamp")
            count = self.spark.table(table).where(older).count()
            if count and not self.dry_run:
                self.spark.sql(f"DELETE FROM {table} WHERE {column} < timestamp'{cutoff:%Y-%m-%d %H:%M:%S}'")
            self._note("rows", table, cutoff, count, f"{column} older than {days} days")

    def vacuum(self) -> None:
        hours = self.rules.vacuum_retention_hours
        cutoff = self.now - timedelta(hours=hours)
        for database in self.rules.vacuum_databases:
            if not self.spark.catalog.databaseExists(database):
                continue
            for table in table_names(self.spark, database):
                name = f"{database}.{table}"
                if not self._is_delta(name):
                    continue
                removed = self._vacuum(name, hours)
                self._note("vacuum", name, cutoff, removed, f"files only versions older than {hours} h used")

    def _vacuum(self, name: str, hours: int) -> int:
        return vacuum(self.spark, name, hours, dry_run=self.dry_run)

    def _is_delta(self, name: str) -> bool:
        detail = self.spark.sql(f"DESCRIBE DETAIL {name}").select("format").first()
        return bool(detail and detail.format == "delta")

    def run(self) -> list[tuple]:
        self.landing()
        self.rows()
        self.vacuum()
        self.spark.sql("CREATE DATABASE IF NOT EXISTS privacy")
        self.spark.createDataFrame(self.entries, LOG_SCHEMA).write.format("delta").mode("append").saveAsTable(LOG_TABLE)
        return self.entries


def main(argv: list[str] | None = None) -> int:
    from spark_jobs.activation.s3 import s3_client
    from spark_jobs.reporting import spark_job

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="count what would be removed; remove nothing")
    parser.add_argument("--rules", type=Path, default=RULES_FILE)
    args = parser.parse_args(argv)
    rules = load_rules(args.rules)
    with spark_job("cdp-retention") as (spark, settings, reporter):
        entries = RetentionRun(
            spark, rules, settings.landing_uri, dry_run=args.dry_run, s3=lambda: s3_client(settings)
        ).run()
        by_kind: dict[str, int] = {}
        for entry in entries:
            by_kind[entry[1]] = by_kind.get(entry[1], 0) + entry[4]
        reporter.materialized(
            "privacy/retention_log",
            {
                "dry_run": args.dry_run,
                "targets": len(entries),
                **{f"removed_{k}": v for k, v in sorted(by_kind.items())},
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
