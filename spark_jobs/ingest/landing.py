"""The landing zone as the ingestion job sees it: files under ``<landing root>/<contract.landing>/``.

Listing goes through Hadoop's FileSystem API, so the same code lists a local folder
(``file:///...``) and an object-store prefix (``s3a://bucket/landing``). A file is identified
by its path, size and modification time: a file re-delivered under the same name with new
content is new again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone

from pyspark.sql import SparkSession

from spark_jobs.ingest.contracts import Contract

DELIVERY_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True, order=True)
class LandingFile:
    path: str          # fully qualified URI, as Spark reports it in _metadata.file_path
    size: int
    modified_ms: int

    @property
    def delivery_date(self) -> date:
        return delivery_date(self.path, self.modified_ms)


def delivery_date(path: str, modified_ms: int) -> date:
    """The date of the innermost ``YYYY-MM-DD`` folder the file was delivered in or, for a
    file outside such a folder, the (UTC) date it was last modified."""
    for part in reversed(path.split("/")[:-1]):
        if DELIVERY_DATE.match(part):
            return date.fromisoformat(part)
    return datetime.fromtimestamp(modified_ms / 1000, tz=timezone.utc).date()


def is_hidden(relative_path: str) -> bool:
    """A file inside, or named, ``.something`` or ``_something`` is not a delivery (yet): a
    temporary file being written, a marker such as ``_SUCCESS``."""
    return any(part.startswith((".", "_")) for part in relative_path.split("/") if part)


def entity_uri(landing_root: str, contract: Contract) -> str:
    return f"{landing_root.rstrip('/')}/{contract.landing}"


def list_landing_files(spark: SparkSession, landing_root: str, contract: Contract,
                       dates: tuple[date, date] | None = None) -> list[LandingFile]:
    """Every data file under the entity's folder (recursively), optionally only those whose
    delivery date is between ``dates`` (inclusive). Hidden files and folders are skipped."""
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(entity_uri(landing_root, contract))
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(root):
        return []
    prefix = fs.makeQualified(root).toString().rstrip("/") + "/"
    files = []
    iterator = fs.listFiles(root, True)
    while iterator.hasNext():
        status = iterator.next()
        path = status.getPath().toString()
        if is_hidden(path[len(prefix):] if path.startswith(prefix) else status.getPath().getName()):
            continue
        files.append(LandingFile(path, status.getLen(), status.getModificationTime()))
    if dates is not None:
        first, last = dates
        files = [f for f in files if first <= f.delivery_date <= last]
    return sorted(files)
