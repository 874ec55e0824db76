"""Export an audience model (a gold ``sync_s3__*`` table) as a CSV object on S3 with boto3.

The endpoint and bucket come from settings, so the local S3-compatible server and real AWS
S3 differ only in configuration; credentials come from boto3's usual chain (environment,
profile, instance role), never from code. The object is uploaded whole under a temporary key
and then copied to its final key, so readers never see a half-written file.

    python -m spark_jobs.activation.s3_export --audience repeat_buyers
"""

from __future__ import annotations

import argparse
import csv
import logging
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from spark_jobs.reporting import spark_job
from spark_jobs.settings import Settings

log = logging.getLogger(__name__)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportResult:
    bucket: str
    key: str
    rows: int
    bytes: int


def neutralise_formula(value: object) -> object:
    """Spreadsheet formula-injection guard: a cell that starts like a formula is quoted with '."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if v is None else neutralise_formula(v) for v in row])
            count += 1
    return count


def s3_client(settings: Settings):
    import boto3

    return boto3.client("s3", endpoint_url=settings.s3_endpoint_url or None)


def upload_atomically(client, local_file: Path, bucket: str, key: str) -> None:
    temp_key = f"{key}.tmp-{uuid.uuid4().hex}"
    client.upload_file(str(local_file), bucket, temp_key, ExtraArgs={"ContentType": "text/csv"})
    try:
        client.copy_object(
            Bucket=bucket,
            Key=key,
            CopySource={"Bucket": bucket, "Key": temp_key},
            ContentType="text/csv",
            MetadataDirective="REPLACE",
        )
    finally:
        client.delete_object(Bucket=bucket, Key=temp_key)


def export_model(audience: str) -> str:
    """The gold table an audience export reads (its dbt model)."""
    return f"gold.sync_s3__{audience}"


def export_asset(audience: str) -> str:
    """The asset an audience export reports under."""
    return f"activation/s3_{audience}"


def audience_key(settings: Settings, audience: str) -> str:
    return f"{settings.export_prefix.strip('/')}/{audience}/{audience}.csv"


def export_audience(spark, settings: Settings, audience: str) -> ExportResult:
    table = export_model(audience)
    df = spark.table(table).orderBy("customer_id")  # stable order: same data, same bytes
    bucket, key = settings.export_bucket, audience_key(settings, audience)
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.scratch_dir) as tmp:
        local = Path(tmp) / f"{audience}.csv"
        # toLocalIterator streams partition by partition: the driver never holds the audience.
        rows = write_csv(local, df.columns, (tuple(r) for r in df.toLocalIterator()))
        size = local.stat().st_size
        log.info("uploading %d rows (%d bytes) of %s to s3://%s/%s", rows, size, table, bucket, key)
        upload_atomically(s3_client(settings), local, bucket, key)
    return ExportResult(bucket, key, rows, size)


def report_export(reporter, audience: str, result: ExportResult) -> None:
    reporter.materialized(
        export_asset(audience),
        {
            "uri": f"s3://{result.bucket}/{result.key}",
            "rows": result.rows,
            "bytes": result.bytes,
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export a gold sync_s3__<audience> table to S3 as CSV.")
    parser.add_argument("--audience", default="repeat_buyers")
    args = parser.parse_args(argv)
    with spark_job(f"cdp-export-{args.audience}") as (spark, settings, reporter):
        report_export(reporter, args.audience, export_audience(spark, settings, args.audience))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
