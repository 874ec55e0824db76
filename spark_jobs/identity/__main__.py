"""Standalone identity resolution on any CSV of person records.

    python -m spark_jobs.identity resolve --input people.csv --mapping mapping.yml --output clusters.csv

``mapping.yml`` maps the standard fields to the file's columns, one ``field: column`` per
line (see records.py for the fields; ``record_id`` is required). The output CSV has a header
and the columns ``record_id,customer_id``, one row per input record, sorted by record id.
The resolution is the platform's (resolution.py): the same standardisers, deterministic
rules, Fellegi-Sunter weights estimated on the file itself, household guard and clustering.
It runs on Spark ``local[*]`` with an in-memory catalog; nothing is written but the output.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import tempfile
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs.identity.persistent_ids import assign_ids
from spark_jobs.identity.persons import identifiers
from spark_jobs.identity.records import MappingError, load_mapping, standard_records
from spark_jobs.identity.resolution import DEFAULT_SIZE_LIMIT, resolve_records

log = logging.getLogger("spark_jobs.identity")


class InputError(ValueError):
    """The input file cannot be resolved as it is (the message says why)."""


def read_people(spark, path: Path) -> DataFrame:
    if not path.is_file():
        raise InputError(f"input {path} does not exist or is not a file")
    return spark.read.option("header", True).option("multiLine", True).option("escape", '"') \
        .option("inferSchema", False).csv(str(path.resolve()))


def check_record_ids(records: DataFrame) -> int:
    """The number of records; record ids must be present and unique, or nothing is resolved."""
    stats = records.agg(F.count(F.lit(1)).alias("rows"), F.count("record_id").alias("with_id"),
                        F.countDistinct("record_id").alias("distinct_ids")).first()
    if stats.with_id < stats.rows:
        raise InputError(f"{stats.rows - stats.with_id} row(s) have an empty record_id; every record needs one")
    if stats.distinct_ids < stats.rows:
        examples = [r.record_id for r in records.groupBy("record_id").count().where("count > 1").limit(5).collect()]
        raise InputError(f"record_id must be unique: {stats.rows - stats.distinct_ids} duplicate(s), e.g. {examples}")
    return stats.rows


def resolve_file(spark, input_path: Path, mapping_path: Path, output_path: Path,
                 size_limit: int = DEFAULT_SIZE_LIMIT) -> dict[str, int]:
    """Resolve ``input_path`` into ``output_path``; returns record and customer counts."""
    mapping = load_mapping(mapping_path)
    records = standard_records(read_people(spark, input_path), mapping).localCheckpoint(eager=True)
    total = check_record_ids(records)
    log.info("resolving %d record(s) from %s", total, input_path)
    resolved = resolve_records(records, identifiers(records), size_limit=size_limit)
    assigned = assign_ids(resolved.clusters, None, None, run_id="cli")
    rows = assigned.identity.orderBy("record_id").toLocalIterator()
    output_path.parent.mkdir(parents=True, exist_ok=True)
    customers: set[str] = set()
    with tempfile.NamedTemporaryFile("w", newline="", encoding="utf-8", dir=output_path.parent,
                                     prefix=f".{output_path.name}.", delete=False) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["record_id", "customer_id"])
        written = 0
        for row in rows:
            writer.writerow([row.record_id, row.customer_id])
            customers.add(row.customer_id)
            written += 1
    if written != total:
        Path(handle.name).unlink(missing_ok=True)
        raise RuntimeError(f"resolved {written} record(s) of {total}: refusing to write a partial output")
    Path(handle.name).replace(output_path)   # all or nothing: the output appears complete or not at all
    return {"records": total, "customers": len(customers), "flagged_clusters": resolved.flagged.count()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark_jobs.identity",
                                     description="Identity resolution on a CSV of person records.")
    commands = parser.add_subparsers(dest="command", required=True)
    resolve = commands.add_parser("resolve", help="cluster the records of a CSV into customers")
    resolve.add_argument("--input", required=True, type=Path, help="CSV with a header row")
    resolve.add_argument("--mapping", required=True, type=Path, help="YAML: one 'field: column' per line")
    resolve.add_argument("--output", required=True, type=Path, help="CSV to write: record_id,customer_id")
    resolve.add_argument("--size-limit", type=int, default=DEFAULT_SIZE_LIMIT,
                         help="records above which a cluster is split on strong links (default %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:   # the cheap checks first, before a JVM starts
        load_mapping(args.mapping)
        if not args.input.is_file():
            raise InputError(f"input {args.input} does not exist or is not a file")
    except (MappingError, InputError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    from spark_jobs.settings import Settings
    from spark_jobs.spark import build_session

    spark = build_session(Settings.from_env(), "cdp-identity-cli", overrides={
        "spark.sql.catalogImplementation": "in-memory", "spark.ui.enabled": "false"})
    spark.sparkContext.setLogLevel("ERROR")
    try:
        counts = resolve_file(spark, args.input, args.mapping, args.output, args.size_limit)
    except (MappingError, InputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    print(f"{counts['records']} record(s) -> {counts['customers']} customer(s); "
          f"{counts['flagged_clusters']} cluster(s) flagged over the size limit; wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
