"""The landing zone as the ingestion job sees it: files under ``<landing root>/<contract.landing>/``.

A local folder is walked by the file system (regular files only: a symlink is skipped and
reported, never followed, so nothing outside the landing zone is read); an object-store
prefix (``s3a://bucket/landing``) is listed through Hadoop's FileSystem API. A file is
identified by its path, size and modification time: a file re-delivered under the same name
with new content is new again. Paths are Hadoop's form (``file:/landing/a b.csv``, not
URL-encoded); :func:`spark_literal` makes one safe to hand to Spark's readers, which would
otherwise expand ``*``, ``?``, ``[`` and ``{`` as glob patterns.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import unquote, urlparse

from pyspark.sql import SparkSession

from spark_jobs.ingest.contracts import Contract

log = logging.getLogger(__name__)

DELIVERY_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})$")
GLOB_CHARACTERS = re.compile(r"([\\*?\[\]{}])")


@dataclass(frozen=True, order=True)
class LandingFile:
    path: str  # Hadoop's form of the path (file:/..., s3a://...), not URL-encoded
    size: int
    modified_ms: int
    landing_path: str = ""  # the path under the landing root: the same wherever the zone is mounted

    @property
    def delivery_date(self) -> date:
        return delivery_date(self.path, self.modified_ms)


def delivery_date(path: str, modified_ms: int) -> date:
    """The date of the innermost ``YYYY-MM-DD`` folder the file was delivered in or, for a
    file outside such a folder, the (UTC) date it was last modified. A folder named like an
    impossible date (``2026-02-30``) is not a delivery date: see :func:`bad_date_folders`."""
    for part in reversed(path.split("/")[:-1]):
        if DELIVERY_DATE.match(part):
            try:
                return date.fromisoformat(part)
            except ValueError:
                continue
    return datetime.fromtimestamp(modified_ms / 1000, tz=UTC).date()


def bad_date_folders(path: str) -> list[str]:
    """Folders of ``path`` named ``YYYY-MM-DD`` that are no date."""
    bad = []
    for part in path.split("/")[:-1]:
        if DELIVERY_DATE.match(part):
            try:
                date.fromisoformat(part)
            except ValueError:
                bad.append(part)
    return bad


def spark_literal(path: str) -> str:
    """``path`` with glob characters escaped, so a Spark reader reads that one file."""
    return GLOB_CHARACTERS.sub(r"\\\1", path)


def is_hidden(relative_path: str) -> bool:
    """A file inside, or named, ``.something`` or ``_something`` is not a delivery (yet): a
    temporary file being written, a marker such as ``_SUCCESS``."""
    return any(part.startswith((".", "_")) for part in relative_path.split("/") if part)


def landing_path(landing_root: str, path: str) -> str:
    """``path`` relative to the landing root, by path alone (scheme and bucket or host aside),
    so that a landing zone moved to another folder or bucket keeps its files' identities."""
    root = unquote(urlparse(landing_root).path).rstrip("/") + "/"
    local = urlparse(path).path if "://" in path else path.split(":", 1)[-1]
    return local[len(root) :] if local.startswith(root) else local.lstrip("/")


def entity_uri(landing_root: str, contract: Contract) -> str:
    return f"{landing_root.rstrip('/')}/{contract.landing}"


@dataclass(frozen=True)
class LocalEntry:
    path: str  # absolute local path
    size: int
    modified_ms: int


def walk_local(root: str) -> tuple[list[LocalEntry], dict[str, str]]:
    """Regular, visible files under the local folder ``root`` (recursively) and the entries
    skipped with the reason: symlinks (to a file, a folder or nowhere) are never followed,
    and nothing whose real path leaves ``root`` is returned."""
    files: list[LocalEntry] = []
    skipped: dict[str, str] = {}
    if not os.path.isdir(root) or os.path.islink(root):
        return files, skipped
    real_root = os.path.realpath(root)
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as error:
            skipped[folder] = f"folder not readable: {error.strerror or error}"
            continue
        for entry in entries:
            if is_hidden(entry.name):
                continue
            if entry.is_symlink():
                skipped[entry.path] = "symlink: not followed (deliver regular files into the landing zone)"
            elif entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                if not os.path.realpath(entry.path).startswith(real_root + os.sep):
                    skipped[entry.path] = "outside the landing zone"
                    continue
                stat = entry.stat(follow_symlinks=False)
                files.append(LocalEntry(entry.path, stat.st_size, stat.st_mtime_ns // 1_000_000))
            else:
                skipped[entry.path] = "not a regular file (device, socket or pipe)"
    return files, skipped


def _list_hadoop(spark: SparkSession, uri: str) -> list[LandingFile]:
    """Every file under ``uri`` on an object store or HDFS, through Hadoop's FileSystem API (a
    local Spark), or through Spark's binaryFile source without the content (Spark Connect)."""
    from spark_jobs.spark import is_connect

    if is_connect(spark):
        return _list_remote(spark, uri)
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(uri)
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(root):
        return []
    prefix = fs.makeQualified(root).toString().rstrip("/") + "/"
    files = []
    iterator = fs.listFiles(root, True)
    while iterator.hasNext():
        status = iterator.next()
        path = status.getPath().toString()
        if is_hidden(path[len(prefix) :] if path.startswith(prefix) else status.getPath().getName()):
            continue
        files.append(LandingFile(path, status.getLen(), status.getModificationTime()))
    return files


def _list_remote(spark: SparkSession, uri: str) -> list[LandingFile]:
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    try:
        found = (
            spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(uri)
            .select("path", "length", (F.unix_millis("modificationTime")).alias("modified_ms"))
            .collect()
        )  # fmt: skip
    except AnalysisException as error:  # the folder does not exist (yet)
        if "PATH_NOT_FOUND" in str(error):
            return []
        raise
    prefix = uri.rstrip("/") + "/"
    return [
        LandingFile(row.path, row.length, row.modified_ms)
        for row in found
        if not is_hidden(row.path[len(prefix) :] if row.path.startswith(prefix) else row.path.rsplit("/", 1)[-1])
    ]


def list_s3(uri: str, endpoint_url: str | None) -> list[LandingFile]:
    """Every object under an ``s3://``/``s3a://`` prefix, listed with boto3 (Spark's file
    sources leave empty files out, and an empty delivery is a delivery: it is recorded as
    processed with 0 rows). Directory markers (keys ending in ``/``) and hidden files are no
    deliveries. Credentials come from boto3's chain; ``endpoint_url`` is for an S3-compatible
    server."""
    import boto3

    parsed = urlparse(uri)
    prefix = parsed.path.strip("/") + "/"
    client = boto3.client("s3", endpoint_url=endpoint_url or None)
    files = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=parsed.netloc, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith("/") or is_hidden(item["Key"][len(prefix) :]):
                continue
            modified_ms = int(item["LastModified"].timestamp() * 1000)
            files.append(LandingFile(f"{parsed.scheme}://{parsed.netloc}/{item['Key']}", item["Size"], modified_ms))
    return files


def list_landing_files(
    spark: SparkSession, landing_root: str, contract: Contract, dates: tuple[date, date] | None = None
) -> list[LandingFile]:
    """Every data file under the entity's folder (recursively), optionally only those whose
    delivery date is between ``dates`` (inclusive). Hidden files and folders are skipped;
    symlinks and folders named like impossible dates are skipped or reported in the log."""
    uri = entity_uri(landing_root, contract)
    if urlparse(uri).scheme in ("", "file"):
        local, skipped = walk_local(unquote(urlparse(uri).path) or uri)
        for path, reason in sorted(skipped.items()):
            log.warning("%s: skipped %s: %s", contract.name, path, reason)
        files = [LandingFile(f"file:{f.path}", f.size, f.modified_ms) for f in local]
    elif urlparse(uri).scheme in ("s3", "s3a"):
        from spark_jobs.settings import Settings

        files = list_s3(uri, Settings.from_env().s3_endpoint_url)
    else:
        files = _list_hadoop(spark, uri)
    for f in files:
        if bad := bad_date_folders(f.path):
            log.warning(
                "%s: folder %s of %s is not a date: the file's delivery day is its modification day",
                contract.name,
                bad,
                f.path,
            )
    if dates is not None:
        first, last = dates
        files = [f for f in files if first <= f.delivery_date <= last]
    return sorted(LandingFile(f.path, f.size, f.modified_ms, landing_path(landing_root, f.path)) for f in files)
