"""Erasure (GDPR art. 17, CCPA deletion): make a person gone from the lakehouse, the landing
zone and every destination, and keep them gone.

    python -m spark_jobs.privacy.erasure                       # every open request
    python -m spark_jobs.privacy.erasure --email ann@example.com --request-id DSR-42
    ./cdp erase --email ann@example.com --request-id DSR-42    (the local stack)

Requests come from the contracted source ``erasure_requests`` (bronze), from the command line,
and from earlier runs that are not complete yet (a destination that could not confirm). One
run carries them all out together:

1. **resolve** each person through identity: the customer ids they have and every id they ever
   had (``silver.customer_id_lineage``), their source records (``silver.identity_map``), their
   anonymous ids, and every identifier those records hold (the columns contracts declare with
   ``identifies:``), plus the ids of their orders;
2. **tombstone** them: salted hashes of the standardised identifiers to
   ``privacy.erasure_tombstones`` (spark_jobs/privacy/tombstones.py), never the values. From
   here on ingestion drops their re-delivered rows, and the steps below find the rows to delete
   by these hashes, so a run that dies half-way is finished by the next one;
3. **destinations**: the customer ids go to ``activation.suppressions`` as ``erased`` and every
   sync runs: the CRM deletes the contact, the email platform deletes the member permanently,
   the audience files get a removal entry, the webhook gets ``customer.erased``. A destination
   that does not confirm keeps its state row (so the next run, or the next pipeline run, sends
   the delete again) and the request stays ``destinations_pending``;
4. **quarantine and landing**: quarantined raw records and lines of landed files that hold any
   of the identifiers are deleted (a rewritten file keeps its place in
   ``bronze._processed_files``, so it is not ingested again);
5. **delete** the person's rows from every Delta table of bronze, silver, gold, intermediate,
   snapshots and activation (``activation.suppressions`` keeps the bare customer id, which is
   what keeps a destination from being sent the person again), then rewrite the files that
   held them (``REORG ... APPLY (PURGE)``: no deletion vector left pointing at a live file);
6. **purge**: once ``erased_data_retention_hours`` (retention.yml, default 168) have passed,
   the touched tables are vacuumed, so the files of older versions that still held the person
   (and the change data feed's copies) are physically deleted; until then time travel works.
   Each run purges what is due, so the daily run finishes what earlier runs started.

Every request gets a row in ``privacy.erasure_log`` (request id, when received and completed,
what was deleted where, which destinations confirmed, when the purge is due and was done),
without any personal data. Nothing this job logs holds an identifier.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import reduce
from urllib.parse import unquote, urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.identity import standardise
from spark_jobs.identity.comparisons import TF_FIELDS
from spark_jobs.identity.resolve import IDENTITY_MAP_TABLE, LINEAGE_TABLE, MODELS_TABLE
from spark_jobs.ingest.apply import history_table, merge_from
from spark_jobs.ingest.bronze import PROCESSED_FILES_TABLE, QUARANTINE_TABLE
from spark_jobs.ingest.contracts import IDENTIFIER_KINDS, Contract, load_contracts
from spark_jobs.parallel import completed
from spark_jobs.privacy.retention import RULES_FILE, load_rules, vacuum
from spark_jobs.privacy.tombstones import (
    TOMBSTONES_SCHEMA,
    TOMBSTONES_TABLE,
    column_hash,
    identifier_hash,
    record_kind,
    standardised,
)
from spark_jobs.spark import table_names

log = logging.getLogger(__name__)

REQUESTS_SOURCE = "erasure_requests"
LOG_TABLE = "privacy.erasure_log"
LOG_SCHEMA = (
    "request_id string, run_id string, received_at timestamp, started_at timestamp, completed_at timestamp, "
    "status string, customer_ids bigint, source_records bigint, identifiers bigint, "
    "rows_deleted map<string,bigint>, rows_rewritten map<string,bigint>, table_versions map<string,bigint>, "
    "quarantine_rows_deleted bigint, "
    "landing_files_rewritten bigint, landing_lines_removed bigint, export_files_rewritten bigint, "
    "export_lines_removed bigint, destinations map<string,string>, "
    "purge_due_at timestamp, purged_at timestamp"
)
LOG_COLUMNS = [column.split(" ")[0] for column in LOG_SCHEMA.split(", ")]
COMPLETED, DESTINATIONS_PENDING = "completed", "destinations_pending"
ERASED = "erased"  # the suppression reason (spark_jobs.activation.engine.ERASED)
IDENTITY_RECORDS_TABLE = "silver._identity_records"
ANONYMOUS_IDS_TABLE = "silver.anonymous_ids"
SUPPRESSIONS_TABLE, STATE_TABLE = "activation.suppressions", "activation.sync_state"
DATABASES = ("bronze", "silver", "gold", "intermediate", "snapshots", "activation")
# Tables that hold no personal data (or that erasure itself must keep, see step 5).
KEPT = {"bronze._ingestion_log", "bronze._processed_files", "activation.sync_log", SUPPRESSIONS_TABLE}
# Outside the contracts' own tables, a column holds an identifier by its name.
COLUMN_KINDS = {
    **dict.fromkeys(("customer_id", "current_customer_id", "old_customer_id", "new_customer_id"), "customer_id"),
    "record_key": "customer_id",  # the syncs' record key: every shipped sync is keyed by customer id
    **dict.fromkeys(("email", "customer_email", "email_normalised", "email_standardised", "email_raw"), "email"),
    **dict.fromkeys(("phone", "phone_e164"), "phone"),
    **dict.fromkeys(("crm_contact_id", "user_id"), "crm_contact_id"),
    **{k: k for k in ("loyalty_card_id", "anonymous_id", "email_sha256", "social_handle", "order_id")},
    **dict.fromkeys(("record_id", "linked_to", "other_record_id"), "identity_record"),
}
IDENTITY_RECORD_TABLES = ("silver.",)  # record_id means identity's record id only in silver
DERIVED_KINDS = ("order_id",)  # found from the person's rows (their orders), not from identity
TEXT_KINDS = IDENTIFIER_KINDS  # every kind of identifier is searched for in free text
MIN_NEEDLE = 6  # shorter values are not searched for in free text (too many false hits)


@dataclass(frozen=True)
class ErasureRequest:
    request_id: str
    email: str | None = None
    phone: str | None = None
    customer_id: str | None = None
    received_at: datetime | None = None


class RequestError(ValueError):
    pass


@dataclass
class RunReport:
    run_id: str
    started_at: datetime
    rows_deleted: dict[str, int] = field(default_factory=dict)
    rows_rewritten: dict[str, int] = field(default_factory=dict)  # rows changed, not deleted
    versions: dict[str, int] = field(default_factory=dict)
    quarantine_rows: int = 0
    files_rewritten: int = 0
    lines_removed: int = 0
    export_files_rewritten: int = 0
    export_lines_removed: int = 0


def _exists(spark: SparkSession, table: str) -> bool:
    return spark.catalog.tableExists(table)


# --- 1. resolve -----------------------------------------------------------------------------


def _union(frames: Iterable[DataFrame]) -> DataFrame | None:
    frames = list(frames)
    return reduce(DataFrame.unionByName, frames) if frames else None


def resolve(spark: SparkSession, requests: list[ErasureRequest]) -> list[tuple[str, str, str, str]]:
    """(request_id, kind, standardised value, value as stored) of every identifier of each
    request's person, in one Spark query per step rather than per request.

    An email or phone that identity maps to someone else too (a household's landline, a shared
    family address) is the other person's as well: it is left out, and the person's own rows
    are still found by their customer ids and source records."""
    contracts = load_contracts()
    columns = ["request_id", "kind", "raw"]
    asked = spark.createDataFrame(
        [(r.request_id, r.email, r.phone, r.customer_id) for r in requests],
        "request_id string, email string, phone string, asked_id string",
    )
    found = [
        asked.select("request_id", F.lit("email"), "email").toDF(*columns),
        asked.select("request_id", F.lit("phone"), "phone").toDF(*columns),
    ]
    ids = asked.select("request_id", F.trim("asked_id").alias("customer_id"))
    if _exists(spark, IDENTITY_MAP_TABLE):
        identity = spark.table(IDENTITY_MAP_TABLE)
        keys = asked.select(
            "request_id",
            standardise.email(F.col("email")).alias("_email"),
            standardise.phone(F.col("phone")).alias("_phone"),
        )
        by_email = keys.join(identity, keys._email == identity.email_normalised).select("request_id", "customer_id")
        by_phone = keys.join(identity, keys._phone == identity.phone_e164).select("request_id", "customer_id")
        ids = ids.unionByName(by_email).unionByName(by_phone)
    if _exists(spark, LINEAGE_TABLE):  # a retired id leads to today's, and today's to every earlier one
        lineage = spark.table(LINEAGE_TABLE)
        today = ids.join(lineage, "customer_id", "left").select(
            "request_id", F.coalesce("current_customer_id", "customer_id").alias("customer_id")
        )
        earlier = today.join(
            lineage.select(F.col("customer_id").alias("earlier_id"), F.col("current_customer_id").alias("customer_id")),
            "customer_id",
        ).select("request_id", F.col("earlier_id").alias("customer_id"))
        ids = ids.unionByName(today).unionByName(earlier)
    ids = _small(spark, ids.where(F.col("customer_id").isNotNull()).distinct())
    found.append(ids.select("request_id", F.lit("customer_id"), "customer_id").toDF(*columns))

    if _exists(spark, IDENTITY_MAP_TABLE):
        records = _small(
            spark,
            spark.table(IDENTITY_MAP_TABLE)
            .join(ids, "customer_id")
            .select("request_id", "source_table", "source_record_id")
            .distinct(),
        )
        found.append(
            records.select("request_id", F.concat(F.lit("record:"), "source_table"), "source_record_id").toDF(*columns)
        )
        if _exists(spark, IDENTITY_RECORDS_TABLE):
            internal = spark.table(IDENTITY_RECORDS_TABLE).join(records, ["source_table", "source_record_id"])
            found.append(internal.select("request_id", F.lit("identity_record"), "record_id").toDF(*columns))
        for contract in contracts.values():  # every identifier the person's own records hold
            if len(contract.primary_key) != 1 or not contract.identifying_columns:
                continue
            mine = records.where(F.col("source_table") == contract.name).select(
                F.col("request_id").alias("_request_id"), F.col("source_record_id").alias("_record_id")
            )  # renamed: a source may have columns of these names
            for table in (contract.table, history_table(contract) if contract.kind == "cdc" else None):
                if table is None or not _exists(spark, table):
                    continue
                rows = spark.table(table).join(
                    mine, F.col(contract.primary_key[0]).cast("string") == F.col("_record_id")
                )
                for column, kind in contract.identifying_columns.items():
                    found.append(rows.select("_request_id", F.lit(kind), F.col(column)).toDF(*columns))
    if _exists(spark, ANONYMOUS_IDS_TABLE):
        anonymous = spark.table(ANONYMOUS_IDS_TABLE).join(ids, "customer_id")
        found.append(anonymous.select("request_id", F.lit("anonymous_id"), "anonymous_id").toDF(*columns))
    person = _small(spark, _without_shared(spark, _standardised(_union(found)), ids))
    # Enrichment vendors match on the email's SHA-256; orders are found from the person's rows.
    hashed = person.where(F.col("kind") == "email").select(
        "request_id", F.lit("email_sha256").alias("kind"), F.sha2("value", 256).alias("raw")
    )
    derived = []
    for contract in contracts.values():
        identifying = contract.identifying_columns
        outputs = [c for c, k in identifying.items() if k in DERIVED_KINDS]
        if not outputs or not _exists(spark, contract.table):
            continue
        for column, kind in identifying.items():
            if kind in DERIVED_KINDS:
                continue
            table = spark.table(contract.table).withColumn("_key", standardised(kind, F.col(column)))
            keys = person.where(F.col("kind") == kind).select(
                F.col("request_id").alias("_request_id"), F.col("value").alias("_key")
            )
            matched = table.join(keys, "_key")
            derived += [matched.select("_request_id", F.lit(identifying[o]), F.col(o)).toDF(*columns) for o in outputs]
    rows = _union([person.select(*columns), hashed, *derived])
    result = _standardised(rows).collect()
    return sorted((r.request_id, r.kind, r.value, r.raw) for r in result)


def _small(spark: SparkSession, frame: DataFrame) -> DataFrame:
    """A few people's rows, collected and handed back as data. The union that finds them has
    a branch per source and identifying column, and every later step reads it several times:
    as a plan, Spark analysed and optimised the whole union again for each (1-3 minutes for one
    person over Spark Connect); as data, it is one small local relation."""
    return spark.createDataFrame(frame.collect(), frame.schema)


def _standardised(rows: DataFrame) -> DataFrame:
    """(request_id, kind, raw) -> with ``value``, the form tombstones hash (as
    tombstones.standardised does by kind), without empty and repeated ones."""
    value = (
        F.when(F.col("kind") == "email", standardise.email(F.col("raw")))
        .when(F.col("kind") == "phone", standardise.phone(F.col("raw")))
        .otherwise(standardised("id", F.col("raw")))
    )
    return rows.withColumn("value", value).where(F.col("value").isNotNull()).distinct()


def _without_shared(spark: SparkSession, person: DataFrame, ids: DataFrame) -> DataFrame:
    """The person's identifiers less the emails and phones identity maps to another customer."""
    if not _exists(spark, IDENTITY_MAP_TABLE):
        return person
    identity = spark.table(IDENTITY_MAP_TABLE)
    others = identity.join(ids.select("customer_id").distinct(), "customer_id", "left_anti")
    shared = others.select(F.lit("email").alias("kind"), F.col("email_normalised").alias("value")).unionByName(
        others.select(F.lit("phone").alias("kind"), F.col("phone_e164").alias("value"))
    )
    kept = person.join(shared.where(F.col("value").isNotNull()).distinct(), ["kind", "value"], "left_anti")
    return kept


# --- 2. tombstones --------------------------------------------------------------------------


def write_tombstones(spark: SparkSession, salt: str, identifiers: list[tuple[str, str, str, str]]) -> None:
    spark.sql("CREATE DATABASE IF NOT EXISTS privacy")
    spark.sql(f"CREATE TABLE IF NOT EXISTS {TOMBSTONES_TABLE} ({TOMBSTONES_SCHEMA}) USING delta")
    if not identifiers:
        return
    values = spark.createDataFrame(
        [(r, k, v) for r, k, v, _ in identifiers], "request_id string, kind string, v string"
    )
    rows = values.select(
        "request_id",
        "kind",
        identifier_hash(salt, F.col("kind"), F.col("v")).alias("identifier_hash"),
        F.current_timestamp().alias("created_at"),
    ).distinct()
    merge_from(
        spark,
        rows,
        TOMBSTONES_TABLE,
        "t.request_id = s.request_id AND t.kind = s.kind AND t.identifier_hash = s.identifier_hash",
        "WHEN NOT MATCHED THEN INSERT *",
    )


def load_tombstones(spark: SparkSession, request_ids: list[str]) -> dict[str, set[str]]:
    """kind -> hashes of the requests' identifiers."""
    hashes: dict[str, set[str]] = defaultdict(set)
    if request_ids and _exists(spark, TOMBSTONES_TABLE):
        rows = (
            spark.table(TOMBSTONES_TABLE).where(F.col("request_id").isin(request_ids)).select("kind", "identifier_hash")
        )
        for row in rows.distinct().collect():
            hashes[row.kind].add(row.identifier_hash)
    return hashes


# --- 3. destinations ------------------------------------------------------------------------


def suppress(spark: SparkSession, customer_ids: set[str]) -> None:
    from spark_jobs.activation.engine import ensure_tables

    ensure_tables(spark)
    if not customer_ids:
        return
    rows = spark.createDataFrame([(c, ERASED) for c in sorted(customer_ids)], "customer_id string, reason string")
    rows = rows.withColumn("requested_at", F.current_timestamp())
    merge_from(
        spark,
        rows,
        SUPPRESSIONS_TABLE,
        "t.customer_id = s.customer_id AND t.reason = s.reason",
        "WHEN NOT MATCHED THEN INSERT *",
    )


def remove_from_destinations(
    spark: SparkSession, settings, syncs_factory: Callable[[], list], threads: int = 1
) -> dict[str, str]:
    """Run every sync for its removes of erased people only (the engine removes a record whose
    customer id is suppressed as erased), ``threads`` syncs at a time; sync -> error for those
    that could not run."""
    from spark_jobs.activation.destinations import open_destination
    from spark_jobs.activation.engine import SyncRun, ensure_tables

    ensure_tables(spark)  # before the syncs start side by side, so that no two create them

    def remove(sync) -> str | None:
        try:
            SyncRun(spark, sync, lambda s, run_id: open_destination(s, run_id, settings), erasures_only=True).run()
        except Exception as error:  # one destination down does not hold back the others
            log.warning("erasure: sync %s could not run: %s", sync.name, type(error).__name__)
            return f"{type(error).__name__}: {str(error)[:300]}"
        return None

    built = [sync for sync in syncs_factory() if _exists(spark, sync.table)]  # never built: never sent
    return {sync.name: error for sync, error in completed(remove, built, threads) if error is not None}


# --- 4. quarantine and landing --------------------------------------------------------------


def needles(identifiers: list[tuple[str, str, str, str]]) -> list[str]:
    """The texts to look for in free text: each identifier as stored and standardised."""
    found = set()
    for _, kind, value, raw in identifiers:
        if kind in TEXT_KINDS or kind.startswith("record:"):
            found |= {v.strip() for v in (value, raw) if v and len(v.strip()) >= MIN_NEEDLE}
    return sorted(found)


TOKEN = re.compile(rb"[a-z0-9][a-z0-9_.%+@-]*[a-z0-9]|[a-z0-9]")


class TextMatcher:
    """Finds any of many texts in a line, case-insensitively and only as a whole (``C10`` is not
    in ``C100``): texts that are one token (an email, an id, an E.164 phone, a hash) are looked
    up in a set, per token of the line, so the time does not grow with the number of texts;
    the few others (a phone written with spaces) go to one regular expression."""

    def __init__(self, texts: list[str]) -> None:
        lowered = {t.strip().lower().encode("utf-8") for t in texts if t and t.strip()}
        self.tokens = {t for t in lowered if TOKEN.fullmatch(t)}
        others = sorted(lowered - self.tokens, key=len, reverse=True)
        self.pattern = (
            re.compile(rb"(?<![a-z0-9])(?:" + b"|".join(re.escape(t) for t in others) + rb")(?![a-z0-9])")
            if others
            else None
        )

    def search(self, line: bytes) -> bool:
        lowered = line.lower()
        if self.tokens and any(token in self.tokens for token in TOKEN.findall(lowered)):
            return True
        return bool(self.pattern and self.pattern.search(lowered))


def _java_pattern(texts: list[str]) -> str:
    quoted = "|".join("\\Q" + t.replace("\\E", "\\E\\\\E\\Q") + "\\E" for t in texts)
    return f"(?i)(?<![A-Za-z0-9])(?:{quoted})(?![A-Za-z0-9])"


def scrub_quarantine(spark: SparkSession, texts: list[str]) -> tuple[int, dict[str, set[str]]]:
    """Delete the quarantined raw records that hold any of ``texts``; returns how many, and
    their landed files (contract -> paths)."""
    if not texts or not _exists(spark, QUARANTINE_TABLE):
        return 0, {}
    hits = spark.table(QUARANTINE_TABLE).where(F.col("raw_record").rlike(_java_pattern(texts)))
    found = hits.select("quarantine_id", "entity", "source_file").distinct().collect()
    if not found:
        return 0, {}
    files: dict[str, set[str]] = defaultdict(set)
    for row in found:
        files[row.entity].add(row.source_file)
    keys = spark.createDataFrame([(r.quarantine_id,) for r in found], "quarantine_id string")
    metrics = merge_from(spark, keys, QUARANTINE_TABLE, "t.quarantine_id = s.quarantine_id", "WHEN MATCHED THEN DELETE")
    return metrics.get("num_deleted_rows", 0), files


def scrub_text(data: bytes, matcher: TextMatcher, keep_first_line: bool) -> tuple[bytes, int]:
    """The file without the lines that hold a match (a CSV keeps its header)."""
    compressed = data[:2] == b"\x1f\x8b"
    text = gzip.decompress(data) if compressed else data
    lines = text.split(b"\n")
    kept, removed = [], 0
    for i, line in enumerate(lines):
        if matcher.search(line) and not (keep_first_line and i == 0):
            removed += 1
        else:
            kept.append(line)
    if not removed:
        return data, 0
    out = b"\n".join(kept)
    return (gzip.compress(out, mtime=0) if compressed else out), removed


class LandingZone:
    """Read and rewrite landed files, in a local folder or on S3 (boto3)."""

    def __init__(self, s3: Callable | None) -> None:
        self._s3_factory, self._s3 = s3, None

    def _client(self):
        if self._s3 is None:
            self._s3 = self._s3_factory()
        return self._s3

    @staticmethod
    def _bucket_key(path: str) -> tuple[str, str]:
        parsed = urlparse(path)
        return parsed.netloc, parsed.path.lstrip("/")

    def read(self, path: str) -> bytes:
        if urlparse(path).scheme in ("", "file"):
            with open(unquote(urlparse(path).path), "rb") as handle:
                return handle.read()
        bucket, key = self._bucket_key(path)
        return self._client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def write(self, path: str, data: bytes) -> tuple[int, int]:
        """Replace the file (atomically on a local disk); returns its new (size, mtime ms)."""
        if urlparse(path).scheme in ("", "file"):
            import os

            local = unquote(urlparse(path).path)
            tmp = f"{os.path.dirname(local)}/.{os.path.basename(local)}.erasure-tmp"
            with open(tmp, "wb") as handle:
                handle.write(data)
            os.replace(tmp, local)
            return len(data), int(os.stat(local).st_mtime * 1000)
        bucket, key = self._bucket_key(path)
        self._client().put_object(Bucket=bucket, Key=key, Body=data)
        head = self._client().head_object(Bucket=bucket, Key=key)
        return len(data), int(head["LastModified"].timestamp() * 1000)


def landed_files_of(spark: SparkSession, salt: str, hashes: dict[str, set[str]]) -> dict[str, set[str]]:
    """contract -> landed files (``_source_file``) of the bronze rows that belong to the erased
    people, and of their quarantined records: the files that can hold them."""
    files: dict[str, set[str]] = defaultdict(set)
    contracts = load_contracts()
    for name, contract in contracts.items():
        for table in (contract.table, history_table(contract) if contract.kind == "cdc" else None):
            if table is None or not _exists(spark, table):
                continue
            frame = spark.table(table)
            columns = identifying_columns(table, frame.columns, contracts)
            hits = [
                column_hash(salt, kind, F.col(column)).isin(sorted(hashes[kind]))
                for column, kind in columns.items()
                if hashes.get(kind)
            ]
            if hits and "_source_file" in frame.columns:
                mine = frame.where(reduce(lambda a, b: a | b, hits)).select("_source_file").distinct()
                files[name] |= {r._source_file for r in mine.collect()}
    return files


def scrub_landing(
    spark: SparkSession, files: dict[str, set[str]], texts: list[str], zone: LandingZone
) -> tuple[int, int]:
    """Remove the lines that hold any of ``texts`` from the given landed files (contract -> paths
    as ingestion recorded them); a rewritten file's size and time are updated in
    ``bronze._processed_files``, so ingestion still knows it. Returns (files rewritten, lines
    removed). A file already gone (retention) is skipped."""
    if not texts or not files:
        return 0, 0
    matcher = TextMatcher(texts)
    contracts = load_contracts()
    rewritten, removed_lines = [], 0
    for name, paths in sorted(files.items()):
        for path in sorted(paths):
            try:
                data = zone.read(path)
            except FileNotFoundError:
                continue
            scrubbed, removed = scrub_text(data, matcher, keep_first_line=contracts[name].format == "csv")
            if removed:
                size, modified_ms = zone.write(path, scrubbed)
                rewritten.append((name, path, size, modified_ms))
                removed_lines += removed
    if rewritten and _exists(spark, PROCESSED_FILES_TABLE):
        changed = spark.createDataFrame(
            rewritten, "entity string, file_path string, file_size long, file_modified_ms long"
        )
        merge_from(
            spark,
            changed,
            PROCESSED_FILES_TABLE,
            "t.entity = s.entity AND t.file_path = s.file_path",
            "WHEN MATCHED THEN UPDATE SET t.file_size = s.file_size, t.file_modified_ms = s.file_modified_ms",
        )
    return len(rewritten), removed_lines


def hashed_needles(identifiers: list[tuple[str, str, str, str]]) -> list[str]:
    """Emails and phones as ad-audience files carry them: SHA-256 of the normalised value, in
    every platform's spec (activation/normalise.py)."""
    from spark_jobs.activation.normalise import HASH_SPECS, normalise_email, normalise_phone, sha256_hex

    found = set()
    for _, kind, value, raw in identifiers:
        for text in {value, raw} - {None}:
            if kind == "email":
                found.add(sha256_hex(normalise_email(text)))
            elif kind == "phone":
                found |= {sha256_hex(normalise_phone(text, None, spec)) for spec in HASH_SPECS}
    return sorted(f for f in found if f)


def scrub_exports(client, bucket: str, prefix: str, texts: list[str], before: datetime) -> tuple[int, int]:
    """Remove the person's lines from the audience files exports wrote before ``before`` (the
    removal entries this erasure just sent stay: they are how the platform learns to delete),
    and correct each touched run's ``manifest.json`` (rows and SHA-256 per part). Returns
    (files rewritten, lines removed)."""
    if not texts:
        return 0, 0
    from botocore.exceptions import ClientError

    matcher = TextMatcher(texts)
    changed: dict[str, dict[str, tuple[int, str]]] = defaultdict(dict)  # run folder -> key -> (rows, sha256)
    removed_lines = 0
    listing = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.strip("/") + "/")
    try:
        pages = list(listing)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return 0, 0  # nothing was ever exported
        raise
    for page in pages:
        for item in page.get("Contents", []):
            key = item["Key"]
            if not key.endswith(".csv") or item["LastModified"] >= before:
                continue
            data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            scrubbed, removed = scrub_text(data, matcher, keep_first_line=True)
            if removed:
                client.put_object(Bucket=bucket, Key=key, Body=scrubbed, ContentType="text/csv")
                rows = max(scrubbed.rstrip(b"\n").count(b"\n"), 0)
                changed[key.rsplit("/", 1)[0]][key] = (rows, hashlib.sha256(scrubbed).hexdigest())
                removed_lines += removed
    for folder, parts in changed.items():
        key = f"{folder}/manifest.json"
        try:
            manifest = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except client.exceptions.NoSuchKey:
            continue
        for entry in manifest.get("files", []):
            if entry.get("key") in parts:
                entry["rows"], entry["sha256"] = parts[entry["key"]]
        for op, total in (("add", "rows_added"), ("remove", "rows_removed")):
            if total in manifest:
                manifest[total] = sum(f["rows"] for f in manifest.get("files", []) if f.get("op") == op)
        client.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest, indent=2).encode("utf-8"))
    return sum(len(p) for p in changed.values()), removed_lines


# --- 5. delete ------------------------------------------------------------------------------


def tables_to_scan(spark: SparkSession) -> list[str]:
    tables = []
    for database in DATABASES:
        if spark.catalog.databaseExists(database):
            tables += [f"{database}.{name}" for name in table_names(spark, database, views=False)]
    return sorted(t for t in tables if t not in KEPT)


def identifying_columns(table: str, columns: list[str], contracts: dict[str, Contract]) -> dict[str, str]:
    """column -> kind of identifier, for one table."""
    database, name = table.split(".", 1)
    contract = contracts.get(name) or contracts.get(name.removesuffix("_history"))
    if database == "bronze" and contract is not None:
        found = dict(contract.identifying_columns)
        if len(contract.primary_key) == 1:
            found.setdefault(contract.primary_key[0], record_kind(contract.name))
        return {c: k for c, k in found.items() if c in columns}
    found = {c: k for c, k in COLUMN_KINDS.items() if c in columns}
    if not table.startswith(IDENTITY_RECORD_TABLES):
        found = {c: k for c, k in found.items() if k != "identity_record"}
    return found


def delete_rows(
    spark: SparkSession,
    salt: str,
    hashes: dict[str, set[str]],
    report: RunReport,
    keep_synced: bool = True,
    threads: int = 1,
) -> None:
    """Delete every row whose identifying column hashes into ``hashes``, ``threads`` tables at
    a time. Per table one scan finds the stored values that match, column by column; then one
    MERGE per matching column deletes their rows (a hash join on the stored value: no personal
    value is written into a statement)."""
    contracts = load_contracts()
    record_hashes = sorted(set().union(*[h for k, h in hashes.items() if k.startswith("record:")]))

    def erase_from(table: str) -> int:
        frame = spark.table(table)
        types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
        hits = {
            column: column_hash(salt, kind, F.col(column)).isin(sorted(hashes[kind]))
            for column, kind in sorted(identifying_columns(table, frame.columns, contracts).items())
            if hashes.get(kind) and types.get(column) == "string"
        }
        pair = ("source_table", "source_record_id")
        if record_hashes and set(pair) <= set(frame.columns):
            kind, value = F.concat(F.lit("record:"), F.col(pair[0])), F.lower(F.trim(pair[1]))
            hits["\u0000pair"] = identifier_hash(salt, kind, value).isin(record_hashes)
        if not hits:
            return 0
        matched = (
            frame.where(reduce(lambda a, b: a | b, hits.values()))
            .select(
                *[F.when(hit, F.col(c)).alias(f"v{i}") for i, (c, hit) in enumerate(hits.items()) if c != "\u0000pair"],
                *([F.when(hits["\u0000pair"], F.struct(*pair)).alias("pair")] if "\u0000pair" in hits else []),
            )
            .distinct()
            .collect()
        )
        deleted = 0
        for i, column in enumerate(c for c in hits if c != "\u0000pair"):
            values = sorted({row[f"v{i}"] for row in matched if row[f"v{i}"] is not None})
            if values:
                deleted += _delete_values(spark, table, column, values, keep_synced)
        has_pair = "\u0000pair" in hits
        records = sorted({tuple(row["pair"]) for row in matched if has_pair and row["pair"] is not None})
        if records:
            source = spark.createDataFrame(records, "source_table string, source_record_id string")
            on = "t.source_table = s.source_table AND t.source_record_id = s.source_record_id"
            deleted += merge_from(spark, source, table, on, "WHEN MATCHED THEN DELETE").get("num_deleted_rows", 0)
        return deleted

    for table, deleted in completed(erase_from, tables_to_scan(spark), threads):
        if deleted:
            report.rows_deleted[table] = report.rows_deleted.get(table, 0) + deleted
            log.info("erasure: %s: %d row(s) deleted", table, deleted)


def _delete_values(spark: SparkSession, table: str, column: str, values: list[str], keep_synced: bool) -> int:
    source = spark.createDataFrame([(v,) for v in values], "v string")
    condition = f"t.`{column}` = s.v"
    # A destination that has not confirmed the delete keeps its state row: the next sync sends
    # the delete again from it (the engine removes a gone record whose id is erased).
    action = (
        "WHEN MATCHED AND t.status <> 'synced' THEN DELETE"
        if table == STATE_TABLE and keep_synced
        else ("WHEN MATCHED THEN DELETE")
    )
    return merge_from(spark, source, table, condition, action).get("num_deleted_rows", 0)


def model_terms(spark: SparkSession, salt: str, hashes: dict[str, set[str]]) -> dict[str, set[str]]:
    """term-frequency field -> the erased people's values of it (first names, surnames,
    postcodes), read from their identity records before those are deleted."""
    if not hashes.get("identity_record") or not _exists(spark, IDENTITY_RECORDS_TABLE):
        return {}
    records = spark.table(IDENTITY_RECORDS_TABLE).where(
        column_hash(salt, "identity_record", F.col("record_id")).isin(sorted(hashes["identity_record"]))
    )
    return {
        name: {r[0] for r in records.where(F.col(column).isNotNull()).select(column).distinct().collect()}
        for name, column in TF_FIELDS.items()
    }


def forget_model_terms(spark: SparkSession, terms: dict[str, set[str]], report: RunReport) -> None:
    """Take out of every stored identity model's term-frequency tables (``tf``: each name's and
    postcode's share of the records) the erased people's values that no remaining record has: a
    rare name there would still say that someone of that name was a customer. Shared values
    stay (they are other people's too); the next full identity run recomputes every share."""
    if not any(terms.values()) or not _exists(spark, MODELS_TABLE):
        return
    remaining = spark.table(IDENTITY_RECORDS_TABLE) if _exists(spark, IDENTITY_RECORDS_TABLE) else None
    gone: dict[str, set[str]] = {}
    for name, column in TF_FIELDS.items():
        values = sorted(terms.get(name, ()))
        still = set()
        if values and remaining is not None:
            still = {r[0] for r in remaining.where(F.col(column).isin(values)).select(column).distinct().collect()}
        gone[name] = set(values) - still
    if not any(gone.values()):
        return
    changed = []
    for row in spark.table(MODELS_TABLE).select("run_id", "model_json").collect():
        model = json.loads(row.model_json)
        tables = model.get("tf") or {}
        dropped = [
            tables[name].pop(v) for name, values in gone.items() for v in values if v in (tables.get(name) or {})
        ]
        if dropped:
            changed.append((row.run_id, json.dumps(model)))
    if changed:
        rows = spark.createDataFrame(changed, "run_id string, model_json string")
        merge_from(
            spark, rows, MODELS_TABLE, "t.run_id = s.run_id", "WHEN MATCHED THEN UPDATE SET t.model_json = s.model_json"
        )
        report.rows_rewritten[MODELS_TABLE] = len(changed)
        log.info("erasure: %s: %d model(s) rewritten without the erased people's names", MODELS_TABLE, len(changed))


def rewrite_files(spark: SparkSession, report: RunReport, threads: int = 1) -> None:
    """Rewrite the files of the touched tables that carry deletion vectors, so no live file
    still holds a deleted row; note each table's version after the erasure."""

    def rewrite(table: str) -> int:
        if table == QUARANTINE_TABLE or _has_deletion_vectors(spark, table):
            spark.sql(f"REORG TABLE {table} APPLY (PURGE)").collect()
        return int(spark.sql(f"DESCRIBE HISTORY {table} LIMIT 1").first()["version"])

    touched = sorted(set(report.rows_deleted) | set(report.rows_rewritten))
    report.versions.update(completed(rewrite, touched, threads))


def _has_deletion_vectors(spark: SparkSession, table: str) -> bool:
    properties = spark.sql(f"SHOW TBLPROPERTIES {table}").collect()
    return any(r.key == "delta.enableDeletionVectors" and r.value == "true" for r in properties)


# --- 6. purge -------------------------------------------------------------------------------


def purge_due(spark: SparkSession, retention_hours: int, now: datetime, threads: int = 1) -> list[str]:
    """VACUUM the tables of every erasure whose purge is due; mark those erasures purged."""
    if not _exists(spark, LOG_TABLE):
        return []
    due = (
        spark.table(LOG_TABLE)
        .where(F.col("purged_at").isNull() & (F.col("purge_due_at") <= F.lit(now.replace(tzinfo=None))))
        .select("request_id", "run_id", F.explode(F.map_keys("table_versions")).alias("table"))
        .collect()
    )
    if not due:
        return []
    from spark_jobs.privacy.retention import DELTA_MINIMUM_HOURS

    if retention_hours < DELTA_MINIMUM_HOURS:  # the setting says so; Delta asks to be told
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    tables = sorted({r.table for r in due} & {*tables_to_scan(spark), QUARANTINE_TABLE})
    for table, removed in completed(lambda t: vacuum(spark, t, retention_hours), tables, threads):
        log.info("erasure: %s vacuumed: %d file(s) older than %d h removed", table, removed, retention_hours)
    purged = spark.createDataFrame(sorted({(r.request_id, r.run_id) for r in due}), "request_id string, run_id string")
    merge_from(
        spark,
        purged.withColumn("purged_at", F.lit(now.replace(tzinfo=None)).cast("timestamp")),
        LOG_TABLE,
        "t.request_id = s.request_id AND t.run_id = s.run_id",
        "WHEN MATCHED THEN UPDATE SET t.purged_at = s.purged_at",
    )
    return tables


# --- the run --------------------------------------------------------------------------------


def requests_from_source(spark: SparkSession) -> list[ErasureRequest]:
    """Requests delivered through the ``erasure_requests`` source that no run has taken yet,
    and requests an earlier run left open (a destination to confirm, or a run that stopped
    half-way: its tombstones find what is left)."""
    taken: set[str] = set()
    open_requests: list[ErasureRequest] = []
    if _exists(spark, LOG_TABLE):
        latest = (
            spark.table(LOG_TABLE)
            .groupBy("request_id")
            .agg(F.max_by("status", "started_at").alias("status"), F.min("received_at").alias("received_at"))
        )
        for row in latest.collect():
            taken.add(row.request_id)
            if row.status != COMPLETED:
                open_requests.append(ErasureRequest(row.request_id, received_at=row.received_at))
    if _exists(spark, TOMBSTONES_TABLE):  # a run that died after its tombstones, before its log row
        started = spark.table(TOMBSTONES_TABLE).groupBy("request_id").agg(F.min("created_at").alias("at"))
        for row in started.collect():
            if row.request_id not in taken:
                taken.add(row.request_id)
                open_requests.append(ErasureRequest(row.request_id, received_at=row.at))
    new = []
    table = f"bronze.{REQUESTS_SOURCE}"
    if _exists(spark, table):
        for row in spark.table(table).collect():
            if row.request_id not in taken:
                new.append(ErasureRequest(row.request_id, row.email, row.phone, row.customer_id, row.requested_at))
    return new + open_requests


@dataclass
class ErasureRun:
    spark: SparkSession
    settings: object
    salt: str
    retention_hours: int
    syncs: Callable[[], list]
    zone: LandingZone
    exports: Callable[[], tuple] | None = None  # (boto3 client, bucket, prefix) of the audience files
    threads: int = 1  # tables worked on at once (CDP_TABLE_PARALLELISM)
    _log_rows: list[tuple] = field(default_factory=list)

    def run(self, requests: list[ErasureRequest]) -> list[tuple]:
        spark, now = self.spark, datetime.now(UTC)
        report = RunReport(uuid.uuid4().hex[:12], now)
        if requests:
            self._erase(requests, report)
        purged = purge_due(spark, self.retention_hours, datetime.now(UTC), self.threads)
        if purged:
            log.info("erasure: purged %d table(s) whose erased data passed its retention", len(purged))
        return self._log_rows

    def _erase(self, requests: list[ErasureRequest], report: RunReport) -> None:
        spark, salt = self.spark, self.salt
        duplicates = {r.request_id for r in requests if sum(q.request_id == r.request_id for q in requests) > 1}
        if duplicates:
            raise RequestError(f"request ids given more than once: {sorted(duplicates)}")
        log.info("erasure run %s: %d request(s)", report.run_id, len(requests))
        fresh = [r for r in requests if r.email or r.phone or r.customer_id]
        identifiers = resolve(spark, fresh) if fresh else []
        write_tombstones(spark, salt, identifiers)
        ids = [r.request_id for r in requests]
        hashes = load_tombstones(spark, ids)
        per_request: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for request_id, kind, value, raw in identifiers:
            per_request[request_id][kind].add(raw if kind == "customer_id" else value)
        log.info("erasure: %d identifier(s) of %d person(s) tombstoned", len(identifiers), len(per_request))

        customer_ids = set().union(*[p["customer_id"] for p in per_request.values()]) if per_request else set()
        suppress(spark, customer_ids)
        before = self._synced_by_request(ids)
        syncs_started = datetime.now(UTC)
        errors = (
            remove_from_destinations(spark, self.settings, self.syncs, self.threads) if any(before.values()) else {}
        )
        after = self._synced_by_request(ids)

        texts = needles(identifiers)
        report.quarantine_rows, landed = scrub_quarantine(spark, texts)
        for contract, paths in landed_files_of(spark, salt, hashes).items():
            landed.setdefault(contract, set()).update(paths)
        report.files_rewritten, report.lines_removed = scrub_landing(spark, landed, texts, self.zone)
        if self.exports is not None:
            client, bucket, prefix = self.exports()
            report.export_files_rewritten, report.export_lines_removed = scrub_exports(
                client, bucket, prefix, texts + hashed_needles(identifiers), syncs_started
            )
        log.info(
            "erasure: %d quarantined record(s) deleted; %d line(s) removed from %d landed file(s) and %d from "
            "%d exported file(s)",
            report.quarantine_rows,
            report.lines_removed,
            report.files_rewritten,
            report.export_lines_removed,
            report.export_files_rewritten,
        )
        terms = model_terms(spark, salt, hashes)
        delete_rows(spark, salt, hashes, report, threads=self.threads)
        forget_model_terms(spark, terms, report)
        rewrite_files(spark, report, self.threads)
        completed_at = datetime.now(UTC)
        rows = []
        for request in requests:
            mine = per_request.get(request.request_id, {})
            destinations = dict.fromkeys(before.get(request.request_id, {}), "removed")
            for sync, count in after.get(request.request_id, {}).items():
                destinations[sync] = f"pending ({count} record(s)): {errors.get(sync, 'not confirmed')}"
            pending = bool(after.get(request.request_id))
            rows.append(
                (
                    request.request_id,
                    report.run_id,
                    (request.received_at or report.started_at).replace(tzinfo=None),
                    report.started_at.replace(tzinfo=None),
                    None if pending else completed_at.replace(tzinfo=None),
                    DESTINATIONS_PENDING if pending else COMPLETED,
                    len(mine.get("customer_id", ())),
                    sum(len(v) for k, v in mine.items() if k.startswith("record:")),
                    sum(len(v) for v in mine.values()),
                    dict(report.rows_deleted),
                    dict(report.rows_rewritten),
                    dict(report.versions),
                    report.quarantine_rows,
                    report.files_rewritten,
                    report.lines_removed,
                    report.export_files_rewritten,
                    report.export_lines_removed,
                    destinations,
                    (completed_at + timedelta(hours=self.retention_hours)).replace(tzinfo=None),
                    None,
                )
            )
            log.info("erasure %s: %s", request.request_id, rows[-1][LOG_COLUMNS.index("status")])
        spark.createDataFrame(rows, LOG_SCHEMA).write.format("delta").mode("append").saveAsTable(LOG_TABLE)
        self._log_rows = rows

    def _synced_by_request(self, request_ids: list[str]) -> dict[str, dict[str, int]]:
        """request -> sync -> records of the person that destination still has ('synced')."""
        out: dict[str, dict[str, int]] = defaultdict(dict)
        if not _exists(self.spark, STATE_TABLE) or not _exists(self.spark, TOMBSTONES_TABLE):
            return out
        mine = self.spark.table(TOMBSTONES_TABLE).where(
            (F.col("kind") == "customer_id") & F.col("request_id").isin(request_ids)
        )
        state = self.spark.table(STATE_TABLE).where(F.col("status") == "synced")
        state = state.withColumn("identifier_hash", column_hash(self.salt, "customer_id", F.col("record_key")))
        for row in state.join(mine, "identifier_hash").groupBy("request_id", "sync_name").count().collect():
            out[row.request_id][row.sync_name] = row["count"]
        return out


def main(argv: list[str] | None = None) -> int:
    from spark_jobs.activation.definitions import load_syncs
    from spark_jobs.activation.s3 import s3_client
    from spark_jobs.privacy.tombstones import erasure_salt
    from spark_jobs.reporting import spark_job

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--email")
    parser.add_argument("--phone", help="E.164, e.g. +447700900123")
    parser.add_argument("--customer-id")
    parser.add_argument("--request-id", help="the request's reference (required with --email/--phone/--customer-id)")
    parser.add_argument(
        "--purge-after-hours",
        type=int,
        help="hours before erased data is physically purged (default: erased_data_retention_hours in retention.yml)",
    )
    parser.add_argument(
        "--fail-if-pending",
        action="store_true",
        help="exit 1 when a destination has not confirmed a delete (the pipeline goes on regardless: every later "
        "run sends the delete again)",
    )
    args = parser.parse_args(argv)
    given = args.email or args.phone or args.customer_id
    if given and not args.request_id:
        parser.error("--request-id is required: it is how the erasure log names the request")
    if args.request_id and not given:
        parser.error("name the person: --email, --phone or --customer-id")
    rules = load_rules(RULES_FILE)
    hours = rules.erased_data_retention_hours if args.purge_after_hours is None else args.purge_after_hours
    if hours < 0:
        parser.error("--purge-after-hours must be >= 0")
    with spark_job("cdp-erasure") as (spark, settings, reporter):
        requests = requests_from_source(spark)
        if given:
            requests = [r for r in requests if r.request_id != args.request_id]
            requests.append(ErasureRequest(args.request_id, args.email, args.phone, args.customer_id))
        run = ErasureRun(
            spark,
            settings,
            erasure_salt(settings.home),
            hours,
            load_syncs,
            LandingZone(lambda: s3_client(settings)),
            exports=lambda: (s3_client(settings), settings.export_bucket, settings.export_prefix),
            threads=settings.table_parallelism,
        )
        rows = run.run(requests)
        entries = [dict(zip(LOG_COLUMNS, row, strict=True)) for row in rows]
        statuses = [e["status"] for e in entries]
        reporter.materialized(
            "privacy/erasure_log",
            {
                "requests": len(rows),
                "completed": statuses.count(COMPLETED),
                "destinations_pending": statuses.count(DESTINATIONS_PENDING),
                "rows_deleted": sum(entries[0]["rows_deleted"].values()) if entries else 0,
                "tables_touched": len(entries[0]["table_versions"]) if entries else 0,
            },
        )
    if DESTINATIONS_PENDING in statuses:
        log.warning("erasure: %d request(s) wait for a destination to confirm", statuses.count(DESTINATIONS_PENDING))
    return 1 if args.fail_if_pending and DESTINATIONS_PENDING in statuses else 0


if __name__ == "__main__":
    raise SystemExit(main())
