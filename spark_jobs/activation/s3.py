"""S3 for the audience files (boto3): the client, atomic uploads, the formula guard.

The endpoint comes from settings, so the local S3-compatible server and real AWS S3 differ only
in configuration; credentials come from boto3's usual chain (environment, profile, instance
role), never from code. An object is uploaded whole under a temporary key and then copied to its
final key, so readers never see a half-written file.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from spark_jobs.settings import Settings

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value: object) -> object:
    """Spreadsheet formula-injection guard: a cell that starts like a formula is quoted with '."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


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
