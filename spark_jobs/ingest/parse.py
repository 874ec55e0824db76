"""Read landing files as text columns, then type and check them against the contract.

Every column is first read as the text the file holds (JSON lines through ``from_json`` with
string fields, CSV through Spark's CSV reader), so a value that does not fit its type is not
silently nulled: validation sees the text, and the quarantine reason quotes it.

Frame produced by :func:`read_files`: one column per contract column (text), ``_raw`` (the
line or a JSON rendering of the CSV row), ``_corrupt`` (the line could not be parsed at all),
``_source_file``, and the schema drift: for CSV one text column per header column the
contract does not declare, for JSON lines ``_extra_keys``, the undeclared keys of each line
(turned into columns by :func:`add_new_columns` once the batch's keys are known).
"""

from __future__ import annotations

import codecs
import csv
import logging
import os
import re
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import MapType, StringType, StructField, StructType

from spark_jobs.ingest.apply import EXTRA_FIELDS  # new keys beyond max_new_columns, as text by name
from spark_jobs.ingest.contracts import EVENT_DATE_COLUMN, Contract
from spark_jobs.ingest.landing import LandingFile, spark_literal

log = logging.getLogger(__name__)

CORRUPT_FIELD = "_corrupt_record"
TEXT_PREFIX = "_text__"  # the text a typed column was parsed from
REASON = "_reason"
EXTRA_KEYS = "_extra_keys"  # JSON keys a row has that the contract does not declare
PROBLEM = "_problem"  # what makes a parsed record unusable as a whole (bad bytes, repeated keys)
NOT_UTF8 = "not valid UTF-8"
NOT_UTF8_JSON = f"{NOT_UTF8}: JSON lines are UTF-8 (RFC 8259)"
NOT_UTF8_CSV = f"{NOT_UTF8}: bytes the decoder replaced by U+FFFD (declare the file's encoding in the contract)"
REPEATED_KEYS = "repeated key(s) in the JSON record: which value holds is unknown"


def source_file() -> Column:
    """The row's file in the listing's (Hadoop's) form: Spark reports it URL-encoded
    (``a%20b.csv``); a ``+`` is protected first, since URL decoding would read it as a space."""
    return F.url_decode(F.regexp_replace(F.col("_metadata.file_path"), "\\+", "%2B"))


@dataclass
class RawRead:
    frame: DataFrame | None
    failed: dict[str, str] = field(default_factory=dict)  # path -> error, not in the frame
    new_columns: list[str] = field(default_factory=list)  # drift: columns not in the contract


def _string_schema(names: list[str], corrupt: bool = True) -> StructType:
    fields = [StructField(n, StringType()) for n in names]
    return StructType(fields + ([StructField(CORRUPT_FIELD, StringType())] if corrupt else []))


def _read_jsonl(spark: SparkSession, contract: Contract, files: list[LandingFile]) -> RawRead:
    """Declared fields are parsed as text; keys the contract does not declare are listed per row
    in ``EXTRA_KEYS`` (schema drift) and extracted by :func:`add_new_columns` once known, so the
    files are read only once."""
    lines = spark.read.text([spark_literal(f.path) for f in files]).select(
        F.col("value").alias("_raw"), source_file().alias("_source_file")
    )
    declared = [c.file_name for c in contract.columns]
    lines = lines.where(F.trim("_raw") != "")  # blank lines are not records
    # One select, no intermediate key column: Spark then parses the keys once for every use
    # (a projected array column costs more than the checks themselves).
    keys = F.json_object_keys("_raw")
    distinct_keys = F.array_distinct(keys)
    parsed = F.from_json(
        "_raw", _string_schema(declared), {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_FIELD}
    )
    frame = lines.select(
        *[parsed.getField(c.file_name).alias(c.name) for c in contract.columns],
        "_raw",
        (parsed.isNull() | parsed.getField(CORRUPT_FIELD).isNotNull()).alias("_corrupt"),
        # The keys' test first: an unconditional use lets Spark share the parsed keys with
        # the column below (in the second branch it parsed them twice: 50 % slower reads).
        # The text reader keeps the bytes as they are: only a validity check tells.
        F.when(F.size(keys) != F.size(distinct_keys), F.lit(REPEATED_KEYS))
        .when(~F.is_valid_utf8("_raw"), F.lit(NOT_UTF8_JSON))
        .alias(PROBLEM),
        "_source_file",
        F.array_except(distinct_keys, F.array(*[F.lit(n) for n in declared])).alias(EXTRA_KEYS),
    )
    return RawRead(frame)


def cap_new_columns(
    contract: Contract, new: list[str], renamed: dict[str, str], existing: set[str]
) -> tuple[list[str], list[str]]:
    """Split new keys or columns into those that become columns and those kept in the map
    column ``EXTRA_FIELDS``: a key the table already has a column for always gets it; of the
    others, the first ``max_new_columns`` (by name) do, so a file with thousands of keys
    cannot make a table of thousands of columns."""
    room = contract.max_new_columns
    columns, overflow = [], []
    for key in new:
        if renamed.get(key, key).lower() in existing:
            columns.append(key)
        elif room > 0:
            columns.append(key)
            room -= 1
        else:
            overflow.append(key)
    if overflow:
        log.warning(
            "%s: %d new column(s) beyond max_new_columns=%d kept as text in %s: %s",
            contract.name,
            len(overflow),
            contract.max_new_columns,
            EXTRA_FIELDS,
            overflow[:20],
        )
    return columns, overflow


def add_new_columns(
    flagged: DataFrame, new_keys: list[str], renamed: dict[str, str] | None = None, overflow: list[str] | None = None
) -> DataFrame:
    """Replace ``EXTRA_KEYS`` by one text column per undeclared JSON key found in the batch
    (parsed again only on the rows that have such keys, whose ``_raw`` validate() keeps),
    named as ``renamed`` says (storable_names) or as the key, and the ``overflow`` keys by one
    map column ``EXTRA_FIELDS`` (key -> value as text)."""
    if EXTRA_KEYS not in flagged.columns:
        return flagged
    if not new_keys and not overflow:
        return flagged.drop(EXTRA_KEYS)
    renamed = renamed or {}
    extra = F.from_json("_raw", _string_schema(new_keys, corrupt=False))
    has_extra = F.coalesce(F.size(EXTRA_KEYS) > 0, F.lit(False))
    columns = [F.when(has_extra, extra.getField(n)).alias(renamed.get(n, n)) for n in new_keys]
    if overflow:
        # Only on accepted rows: a rejected one may repeat a key, which a map cannot hold.
        entries = F.from_json("_raw", MapType(StringType(), StringType()))
        wanted = F.array(*[F.lit(k) for k in overflow])
        columns.append(
            F.when(
                has_extra & F.col(REASON).isNull(), F.map_filter(entries, lambda k, v: F.array_contains(wanted, k))
            ).alias(EXTRA_FIELDS)
        )
    return flagged.select(*[c for c in flagged.columns if c != EXTRA_KEYS], *columns)


def first_line(spark: SparkSession, path: str, encoding: str = "UTF-8") -> str:
    """The first line of a (possibly gzip-compressed) file, read through Hadoop's FileSystem
    API: no Spark job, and the same code for a local folder and an object store. Over Spark
    Connect (no JVM here) a local file is read directly, and a remote one through Spark's text
    source (UTF-8 only)."""
    from spark_jobs.spark import is_connect

    if is_connect(spark):
        return _first_line_without_jvm(spark, path, encoding)
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    stream = hadoop_path.getFileSystem(conf).open(hadoop_path)
    codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf).getCodec(hadoop_path)
    if codec is not None:
        stream = codec.createInputStream(stream)
    reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, encoding))
    try:
        return reader.readLine() or ""
    finally:
        reader.close()


def _first_line_without_jvm(spark: SparkSession, path: str, encoding: str) -> str:
    import bz2
    import gzip
    from urllib.parse import unquote, urlparse

    parsed = urlparse(path)
    if parsed.scheme in ("", "file"):
        local = unquote(parsed.path) if parsed.scheme else path
        opener = {".gz": gzip.open, ".bz2": bz2.open}.get(os.path.splitext(local)[1].lower(), open)
        with opener(local, "rt", encoding=encoding, errors="replace", newline="") as handle:
            return handle.readline().rstrip("\r\n")
    first = spark.read.text(path).first()
    return first[0] if first else ""


def csv_header(spark: SparkSession, path: str, encoding: str = "UTF-8") -> list[str]:
    """The column names in the header row of one CSV file (a header is one line)."""
    line = first_line(spark, path, encoding).lstrip("\ufeff")
    return next(csv.reader([line]), [])


def _read_csv(spark: SparkSession, contract: Contract, files: list[LandingFile], existing: set[str]) -> RawRead:
    """Files are grouped by header, so files with an extra or missing column still line up."""
    by_header: dict[tuple[str, ...], list[LandingFile]] = {}
    failed: dict[str, str] = {}
    for f in files:
        try:
            header = tuple(csv_header(spark, f.path, contract.encoding))
        except Exception as exc:  # unreadable: truncated gzip, binary, permissions
            failed[f.path] = f"cannot read the CSV header: {short_error(exc)}"
            continue
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            failed[f.path] = (
                f"repeated column name(s) {repeated} in the CSV header: which one holds the value is unknown"
            )
            continue
        missing = [c.file_name for c in contract.columns if c.required and c.file_name not in header]
        if missing:
            failed[f.path] = (
                f"contract violation: required column(s) {missing} missing from the header "
                f"of a {contract.name} file (found {list(header)})"
            )
            continue
        by_header.setdefault(header, []).append(f)

    declared = {c.file_name for c in contract.columns}
    new_raw = sorted({h for header in by_header for h in header if h not in declared})
    renamed = storable_names(new_raw, [*contract.column_names, EVENT_DATE_COLUMN])
    if renamed:
        log.warning("%s: new column(s) renamed so that Delta can store them: %s", contract.name, renamed)
    new_raw, overflow = cap_new_columns(contract, new_raw, renamed, existing)
    new_columns = [renamed.get(n, n) for n in new_raw] + ([EXTRA_FIELDS] if overflow else [])
    frames = []
    for header, group in by_header.items():
        df = (
            spark.read.schema(_string_schema(list(header)))
            .option("header", True)
            .option("mode", "PERMISSIVE")
            # RFC 4180: a quoted field may hold newlines, and a quote inside one is doubled
            .option("multiLine", True)
            .option("escape", '"')
            .option("encoding", contract.encoding)
            .option("columnNameOfCorruptRecord", CORRUPT_FIELD)
            .option("enforceSchema", True)  # the schema *is* the header, position by position
            .csv([spark_literal(f.path) for f in group])
        )
        text = {h: F.col(f"`{h}`") for h in header}
        bad_bytes = F.lit(None).cast("string")
        if codecs.lookup(contract.encoding).name == "utf-8":
            # The CSV reader decodes: bytes that are not UTF-8 arrive as U+FFFD.
            bad_bytes = F.when(F.concat_ws("", *text.values()).contains("\ufffd"), F.lit(NOT_UTF8_CSV))
        frames.append(
            df.select(
                *[text.get(c.file_name, F.lit(None).cast("string")).alias(c.name) for c in contract.columns],
                *[text.get(n, F.lit(None).cast("string")).alias(renamed.get(n, n)) for n in new_raw],
                *([_text_map({n: text[n] for n in overflow if n in text}).alias(EXTRA_FIELDS)] if overflow else []),
                F.coalesce(F.col(CORRUPT_FIELD), F.to_json(F.struct(*[text[h].alias(h) for h in header]))).alias(
                    "_raw"
                ),
                F.col(CORRUPT_FIELD).isNotNull().alias("_corrupt"),
                bad_bytes.alias(PROBLEM),
                source_file().alias("_source_file"),
            )
        )
    frame = None
    for df in frames:
        frame = df if frame is None else frame.unionByName(df)
    return RawRead(frame, failed, new_columns)


def _text_map(columns: dict[str, Column]) -> Column:
    """Name -> text of the non-null ones (null when none is set)."""
    if not columns:
        return F.lit(None).cast("map<string,string>")
    entries = F.map_filter(
        F.map_from_arrays(F.array(*[F.lit(n) for n in columns]), F.array(*columns.values())), lambda k, v: v.isNotNull()
    )
    return F.when(F.size(entries) > 0, entries)


def read_files(
    spark: SparkSession, contract: Contract, files: list[LandingFile], existing_columns: set[str] = frozenset()
) -> RawRead:
    """``existing_columns``: the bronze table's columns (lower case), which new columns that
    are already there keep without counting against ``max_new_columns``."""
    if contract.format == "jsonl":
        return _read_jsonl(spark, contract, files)
    return _read_csv(spark, contract, files, set(existing_columns))


def short_error(exc: Exception) -> str:
    """The first line of an error's innermost cause (Spark's are pages long, and a Py4J error's
    own first line, 'An error occurred while calling o3192.count.', says nothing), for logs and
    failed-file records."""
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            cause = java
            while cause.getCause() is not None:
                cause = cause.getCause()
            text = str(cause.toString()).strip().splitlines()
        except Exception:
            text = str(exc).strip().splitlines()
    else:
        text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__


# Delta cannot store these characters in a column name.
DELTA_INVALID_NAME = re.compile(r"[ ,;{}()\n\t=]")


def storable_name(name: str) -> str:
    """A new column's name as bronze stores it: unchanged when Delta accepts it, else lower case
    with every run of other characters than letters and digits turned into one ``_``
    (``unit price (EUR)`` -> ``unit_price_eur``)."""
    if not DELTA_INVALID_NAME.search(name):
        return name
    return re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").lower() or "unnamed_column"


def storable_names(new_columns: list[str], taken: list[str]) -> dict[str, str]:
    """New column -> the name bronze stores it under, for those whose name changes: a storable
    name (:func:`storable_name`) that differs, case aside, from every ``taken`` name and from
    the others (Spark resolves names case-insensitively): ``EVENT_ID`` beside a declared
    ``event_id`` becomes ``EVENT_ID_2``."""
    used = {t.lower() for t in taken}
    renamed = {}
    for column in new_columns:
        base = candidate = storable_name(column)
        n = 1
        while candidate.lower() in used:
            n += 1
            candidate = f"{base}_{n}"
        used.add(candidate.lower())
        if candidate != column:
            renamed[column] = candidate
    return renamed


# Errors that say the platform, not a delivery, is broken: the job stops on them instead of
# failing one file after another (matched on the innermost cause's text).
INFRASTRUCTURE_ERRORS = (
    "No space left on device",
    "MetaException",
    "metastore",
    "Failed to start database",
    "Connection refused",
    "OutOfMemoryError",
    "SparkContext was shut down",
    "stopped SparkContext",
    "Py4JNetworkError",
    "Answer from Java side is empty",
)


def is_infrastructure_error(exc: Exception) -> bool:
    """True for an error of the platform (metastore down, disk full, Spark gone) or of our own
    code (any error that is not Spark's); False for a Spark error a delivery can cause."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    if not isinstance(exc, (PySparkException, Py4JError)):
        return True
    text = f"{exc} {short_error(exc)}"
    return any(marker.lower() in text.lower() for marker in INFRASTRUCTURE_ERRORS)


# --- typing and rules -------------------------------------------------------------------


def _typed(contract: Contract, name: str) -> Column:
    column = contract.column(name)
    text = F.col(f"{TEXT_PREFIX}{name}")
    if column.type == "string":
        return text
    if column.type in ("date", "timestamp") and column.format:
        ts = F.try_to_timestamp(text, F.lit(column.format))
        return F.to_date(ts) if column.type == "date" else ts
    return F.expr(f"try_cast(`{TEXT_PREFIX}{name}` as {column.spark_type})")


def _quoted(text: Column) -> Column:
    return F.concat(F.lit("'"), F.substring(text, 1, 80), F.lit("'"))


def _column_reasons(contract: Contract) -> list[Column]:
    reasons = []
    for column in contract.columns:
        text, typed = F.col(f"{TEXT_PREFIX}{column.name}"), F.col(column.name)
        blank = text.isNull() | (F.trim(text) == "")
        if column.required:
            reasons.append(F.when(blank, F.lit(f"required column {column.file_name} is missing or empty")))
        if column.type != "string":
            expected = f"{column.type} ({column.format})" if column.format else column.type
            reasons.append(
                F.when(
                    ~blank & typed.isNull(),
                    F.concat(
                        F.lit(f"column {column.file_name}: "), _quoted(text), F.lit(f" is not a valid {expected}")
                    ),
                )
            )
        if column.type in ("double",):
            # 'NaN', 'Infinity' and '1e309' cast to a double that is no amount (NaN passes >= 0).
            reasons.append(
                F.when(
                    ~blank & (F.isnan(typed) | (F.abs(typed) == float("inf"))),
                    F.concat(F.lit(f"column {column.file_name}: "), _quoted(text), F.lit(" is not a finite number")),
                )
            )
        if column.type in ("date", "timestamp"):
            low, high = column.range
            reasons.append(
                F.when(
                    ~blank & ((typed < F.lit(low)) | (typed > F.lit(high))),
                    F.concat(
                        F.lit(f"column {column.file_name}: "),
                        _quoted(text),
                        F.lit(f" is outside {low.isoformat()} to {high.isoformat()}"),
                    ),
                )
            )
        if column.allowed:
            # Compared as delivered: ' D' is no delete, and applying it as one would need the trim.
            reasons.append(
                F.when(
                    ~blank & ~text.isin(*column.allowed),
                    F.concat(
                        F.lit(f"column {column.file_name}: "),
                        _quoted(text),
                        F.lit(f" is not one of {list(column.allowed)}"),
                    ),
                )
            )
    return reasons


def validate(raw: DataFrame, contract: Contract, new_columns: list[str]) -> DataFrame:
    """Typed contract columns, new columns as text, ``_raw``, ``_source_file`` and ``_reason``
    (null when the row is accepted, else every broken rule, separated by '; ')."""
    extra = [EXTRA_KEYS] if EXTRA_KEYS in raw.columns else []
    if PROBLEM not in raw.columns:
        raw = raw.withColumn(PROBLEM, F.lit(None).cast("string"))
    texts = raw.select(
        *[F.col(c.name).alias(f"{TEXT_PREFIX}{c.name}") for c in contract.columns],
        *new_columns,
        "_raw",
        "_corrupt",
        PROBLEM,
        "_source_file",
        *extra,
    )
    typed = texts.select("*", *[_typed(contract, c.name).alias(c.name) for c in contract.columns])
    # concat_ws skips nulls: each list of reasons is '' when no rule in it is broken.
    column_reasons = F.concat_ws("; ", *_column_reasons(contract))
    check_reasons = F.concat_ws(
        "; ",
        *[F.when(~F.coalesce(F.expr(check.expression), F.lit(True)), F.lit(check.reason)) for check in contract.checks],
    )
    # Column rules only make sense on a parsed row; row checks only on a row whose columns passed.
    reason = (
        F.when(F.col("_corrupt"), F.lit(f"unparseable {contract.format} record"))
        .when(F.col(PROBLEM).isNotNull(), F.col(PROBLEM))
        .when(column_reasons != "", column_reasons)
        .when(check_reasons != "", check_reasons)
    )
    flagged = typed.withColumn(REASON, reason)
    # The raw record is kept for the quarantine (and for undeclared JSON keys) only: for other
    # rows it would just fill the cache (and, for CSV, cost a JSON rendering of every row).
    keep_raw = F.col(REASON).isNotNull()
    if extra:
        keep_raw = keep_raw | F.coalesce(F.size(EXTRA_KEYS) > 0, F.lit(False))
    raw = F.when(keep_raw, F.col("_raw")).alias("_raw")
    out = flagged.select(*contract.column_names, *new_columns, raw, "_source_file", REASON, *extra)
    if contract.kind == "event":
        out = out.withColumn(EVENT_DATE_COLUMN, F.to_date(contract.event_time))
    return out
