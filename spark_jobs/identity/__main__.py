"""Standalone identity resolution on any CSV of person records.

    python -m spark_jobs.identity resolve --input people.csv --mapping mapping.yml --output clusters.csv \
        [--evidence pairs.csv] [--threshold 0.5]

``mapping.yml`` maps the standard fields to the file's columns, one ``field: column`` per
line (see records.py for the fields; ``record_id`` is required; ``identifier_<name>: column``
adds a personal identifier). The output CSV has a header and the columns
``record_id,customer_id``, one row per input record, sorted by record id. ``--evidence``
writes every accepted link: the two records, the rule, the match weight and probability and
the level of every comparison (EVIDENCE_COLUMNS).
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

from spark_jobs.identity.comparisons import LEVELS
from spark_jobs.identity.persistent_ids import assign_ids
from spark_jobs.identity.persons import identifiers
from spark_jobs.identity.probabilistic import DEFAULT_THRESHOLD
from spark_jobs.identity.records import MappingError, load_mapping, standard_records
from spark_jobs.identity.resolution import DEFAULT_SIZE_LIMIT, resolve_records
from spark_jobs.reporting import configure_logging

log = logging.getLogger("spark_jobs.identity")


class InputError(ValueError):
    """The input file cannot be resolved as it is (the message says why)."""


EVIDENCE_COLUMNS = (
    "record_id",
    "linked_to",
    "rule",
    "identifier_kind",
    "match_weight",
    "match_probability",
    *LEVELS,
    "names_swapped",
)


def check_threshold(threshold: float) -> float:
    if not 0.0 < threshold < 1.0:
        raise InputError(f"--threshold is a match probability strictly between 0 and 1, not {threshold}")
    return threshold


def _write_atomically(path: Path, header: list[str], rows) -> int:
    """Write a CSV next to ``path`` and move it into place: the file appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", newline="", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        written = 0
        for row in rows:
            writer.writerow(row)
            written += 1
    Path(handle.name).replace(path)
    return written


def evidence_rows(links: DataFrame):
    """The accepted links as EVIDENCE_COLUMNS rows, comparison levels by name."""
    named = [
        F.element_at(F.array(*[F.lit(n) for n in names]), F.col(f"gamma_{c}") + 1).alias(c)
        for c, names in LEVELS.items()
    ]
    frame = links.select(
        "record_id",
        "linked_to",
        "rule",
        F.col("kind").alias("identifier_kind"),
        F.round("match_weight", 3).alias("match_weight"),
        F.round("match_probability", 6).alias("match_probability"),
        *named,
        "names_swapped",
    )
    for row in frame.orderBy("record_id", "linked_to", "rule", "identifier_kind").toLocalIterator():
        yield ["" if v is None else v for v in row]


def read_people(spark, path: Path) -> DataFrame:
    if not path.is_file():
        raise InputError(f"input {path} does not exist or is not a file")
    return (
        spark.read.option("header", True)
        .option("multiLine", True)
        .option("escape", '"')
        .option("inferSchema", False)
        .csv(str(path.resolve()))
    )


def check_record_ids(records: DataFrame) -> int:
    """The number of records; record ids must be present and unique, or nothing is resolved."""
    stats = records.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count("record_id").alias("with_id"),
        F.countDistinct("record_id").alias("distinct_ids"),
    ).first()
    if stats.with_id < stats.rows:
        raise InputError(f"{stats.rows - stats.with_id} row(s) have an empty record_id; every record needs one")
    if stats.distinct_ids < stats.rows:
        examples = [r.record_id for r in records.groupBy("record_id").count().where("count > 1").limit(5).collect()]
        raise InputError(f"record_id must be unique: {stats.rows - stats.distinct_ids} duplicate(s), e.g. {examples}")
    return stats.rows


def resolve_file(
    spark,
    input_path: Path,
    mapping_path: Path,
    output_path: Path,
    size_limit: int = DEFAULT_SIZE_LIMIT,
    threshold: float = DEFAULT_THRESHOLD,
    evidence_path: Path | None = None,
) -> dict[str, int]:
    """Resolve ``input_path`` into ``output_path`` (and the accepted links into ``evidence_path``);
    returns record, customer and link counts."""
    check_threshold(threshold)
    mapping = load_mapping(mapping_path)
    records = standard_records(read_people(spark, input_path), mapping).localCheckpoint(eager=True)
    total = check_record_ids(records)
    log.info("resolving %d record(s) from %s", total, input_path)
    resolved = resolve_records(records, identifiers(records), size_limit=size_limit, threshold=threshold)
    assigned = assign_ids(resolved.clusters, None, None, run_id="cli").identity.localCheckpoint(eager=True)
    mapped = assigned.count()
    if mapped != total:
        raise RuntimeError(f"resolved {mapped} record(s) of {total}: refusing to write a partial output")
    customers = assigned.select("customer_id").distinct().count()
    links = 0
    if evidence_path is not None:
        links = _write_atomically(evidence_path, list(EVIDENCE_COLUMNS), evidence_rows(resolved.links))
    _write_atomically(
        output_path,
        ["record_id", "customer_id"],
        ([r.record_id, r.customer_id] for r in assigned.orderBy("record_id").toLocalIterator()),
    )
    return {
        "records": total,
        "customers": customers,
        "flagged_clusters": resolved.flagged.count(),
        "links": links if evidence_path is not None else resolved.links.count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spark_jobs.identity", description="Identity resolution on a CSV of person records."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    resolve = commands.add_parser("resolve", help="cluster the records of a CSV into customers")
    resolve.add_argument("--input", required=True, type=Path, help="CSV with a header row")
    resolve.add_argument("--mapping", required=True, type=Path, help="YAML: one 'field: column' per line")
    resolve.add_argument("--output", required=True, type=Path, help="CSV to write: record_id,customer_id")
    resolve.add_argument(
        "--size-limit",
        type=int,
        default=DEFAULT_SIZE_LIMIT,
        help="records above which a cluster is split on strong links (default %(default)s)",
    )
    resolve.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="match probability at or above which two records are linked (default %(default)s: "
        "the model finds one person likelier than two)",
    )
    resolve.add_argument(
        "--evidence", type=Path, help="CSV to write every accepted link to: records, rule, weight, probability, levels"
    )
    args = parser.parse_args(argv)
    configure_logging()

    try:  # the cheap checks first, before a JVM starts
        check_threshold(args.threshold)
        load_mapping(args.mapping)
        if not args.input.is_file():
            raise InputError(f"input {args.input} does not exist or is not a file")
    except (MappingError, InputError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    from spark_jobs.settings import Settings
    from spark_jobs.spark import build_session, quiet

    spark = build_session(
        Settings.from_env(),
        "cdp-identity-cli",
        overrides={"spark.sql.catalogImplementation": "in-memory", "spark.ui.enabled": "false"},
    )
    quiet(spark)
    try:
        counts = resolve_file(
            spark, args.input, args.mapping, args.output, args.size_limit, args.threshold, args.evidence
        )
    except (MappingError, InputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    print(
        f"{counts['records']} record(s) -> {counts['customers']} customer(s) through {counts['links']} link(s); "
        f"{counts['flagged_clusters']} cluster(s) flagged over the size limit; wrote {args.output}"
        + (f" and {args.evidence}" if args.evidence else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
