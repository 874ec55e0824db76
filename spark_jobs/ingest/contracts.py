"""Source contracts: one YAML file per source entity under ``spark_jobs/ingest/contracts/``.

A contract declares where an entity lands, its file format, its columns (type, required,
allowed values, the file's own column name), its primary key and how rows are applied:

- ``upsert``: MERGE on the primary key; the newest ``version_column`` wins.
- ``cdc``: change records with an operation code and a change timestamp; the latest change
  per key wins whatever file it came in, deletes leave a tombstone so replays cannot
  resurrect the row.
- ``event``: append-only facts partitioned by the date of ``event_time``; re-delivered
  events (same primary key) are not added twice.

Adding a source means adding a contract file; the ingestion job needs no change. The format
is documented in ``spark_jobs/ingest/contracts/README.md``.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path

import yaml

CONTRACTS_DIR = Path(__file__).with_name("contracts")

TYPES = {  # contract type -> Spark SQL type
    "string": "string",
    "int": "int",
    "long": "bigint",
    "double": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}
KINDS = ("upsert", "cdc", "event")
FORMATS = ("csv", "jsonl")
EVENT_DATE_COLUMN = "event_date"
# Dates and timestamps outside this range are typos or sentinels (9999-12-31 overflows other
# Delta readers' timestamps), never real events; a column may declare its own ``range``.
DEFAULT_DATE_RANGE = (date(1900, 1, 1), date(2100, 12, 31))
# Above this many new columns in a batch, the other new keys go to one map column.
DEFAULT_MAX_NEW_COLUMNS = 50
# What a column can identify a person by (``identifies:``): erasure finds a person's rows by
# these, and ingestion drops re-delivered rows of an erased person by their salted hashes.
IDENTIFIER_KINDS = (
    "email",
    "phone",
    "email_sha256",
    "crm_contact_id",
    "loyalty_card_id",
    "anonymous_id",
    "social_handle",
    "order_id",
    "customer_id",
)


class ContractError(ValueError):
    """A contract file is invalid (the message names the file and the field)."""


@dataclass(frozen=True)
class Column:
    name: str  # name in bronze
    type: str  # a key of TYPES
    required: bool = False
    source_name: str | None = None  # the file's column name, when it differs
    allowed: tuple[str, ...] = ()  # accepted values (compared as text)
    format: str | None = None  # date/timestamp pattern; default ISO 8601
    pii: bool = False
    range: tuple[date, date] = DEFAULT_DATE_RANGE  # date/timestamp: valid from, to (inclusive)
    identifies: str | None = None  # one of IDENTIFIER_KINDS: the person this row is about

    @property
    def file_name(self) -> str:
        return self.source_name or self.name

    @property
    def spark_type(self) -> str:
        return TYPES[self.type]


@dataclass(frozen=True)
class RowCheck:
    """A rule over several columns as a Spark SQL boolean expression; false quarantines."""

    name: str
    expression: str
    reason: str


@dataclass(frozen=True)
class CdcSpec:
    operation_column: str
    timestamp_column: str
    insert: str = "I"
    update: str = "U"
    delete: str = "D"


@dataclass(frozen=True)
class Contract:
    name: str
    description: str
    landing: str  # folder under the landing root, e.g. "crm/contacts"
    format: str  # csv | jsonl (gzip-compressed files are read as well)
    kind: str  # upsert | cdc | event
    primary_key: tuple[str, ...]
    columns: tuple[Column, ...]
    version_column: str | None = None
    event_time: str | None = None
    cdc: CdcSpec | None = None
    checks: tuple[RowCheck, ...] = ()
    freshness_hours: float | None = None
    origin: str = "internal"  # internal | third_party | external
    encoding: str = "utf-8"  # csv only: the files' character set (JSON is UTF-8)
    max_new_columns: int = DEFAULT_MAX_NEW_COLUMNS
    path: Path | None = field(default=None, compare=False)

    @property
    def table(self) -> str:
        return f"bronze.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def identifying_columns(self) -> dict[str, str]:
        """column -> the kind of identifier it holds (``identifies:`` in the contract)."""
        return {c.name: c.identifies for c in self.columns if c.identifies}

    @property
    def order_column(self) -> str | None:
        """The column whose newest value wins when a key repeats."""
        if self.kind == "cdc":
            return self.cdc.timestamp_column
        return self.version_column


def _fail(path: Path, message: str) -> ContractError:
    return ContractError(f"{path.name}: {message}")


def _parse_column(path: Path, spec: dict) -> Column:
    if not isinstance(spec, dict) or "name" not in spec or "type" not in spec:
        raise _fail(path, f"every column needs a name and a type, got {spec!r}")
    if spec["type"] not in TYPES:
        raise _fail(path, f"column {spec['name']}: unknown type {spec['type']!r}; known: {sorted(TYPES)}")
    unknown = set(spec) - {
        "name",
        "type",
        "required",
        "source_name",
        "allowed",
        "format",
        "pii",
        "description",
        "range",
        "identifies",
    }
    if unknown:
        raise _fail(path, f"column {spec['name']}: unknown keys {sorted(unknown)}")
    identifies = spec.get("identifies")
    if identifies is not None and (identifies not in IDENTIFIER_KINDS or spec["type"] != "string"):
        raise _fail(
            path,
            f"column {spec['name']}: identifies must be one of {list(IDENTIFIER_KINDS)} on a string column, "
            f"got {identifies!r} on a {spec['type']} column",
        )
    return Column(
        name=spec["name"],
        type=spec["type"],
        required=bool(spec.get("required", False)),
        source_name=spec.get("source_name"),
        allowed=tuple(str(v) for v in spec.get("allowed", ())),
        format=spec.get("format"),
        pii=bool(spec.get("pii", False)),
        range=_parse_range(path, spec) if "range" in spec else DEFAULT_DATE_RANGE,
        identifies=identifies,
    )


def _parse_range(path: Path, spec: dict) -> tuple[date, date]:
    """``range: [1900-01-01, 2100-12-31]`` of a date or timestamp column (YAML may already
    have read the values as dates)."""
    where = f"column {spec['name']}: range"
    if spec["type"] not in ("date", "timestamp"):
        raise _fail(path, f"{where} applies to date and timestamp columns only")
    bounds = spec["range"]
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        raise _fail(path, f"{where} must be [first day, last day], got {bounds!r}")
    try:
        low, high = (b if isinstance(b, date) else date.fromisoformat(str(b)) for b in bounds)
    except ValueError:
        raise _fail(path, f"{where} must hold two YYYY-MM-DD dates, got {bounds!r}") from None
    if low > high:
        raise _fail(path, f"{where} starts after it ends: {bounds!r}")
    return low, high


def parse_contract(path: Path) -> Contract:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise _fail(path, "a contract is a YAML mapping")
    missing = {"name", "landing", "format", "kind", "primary_key", "columns"} - set(raw)
    if missing:
        raise _fail(path, f"missing keys {sorted(missing)}")
    if raw["format"] not in FORMATS:
        raise _fail(path, f"format must be one of {FORMATS}, got {raw['format']!r}")
    if raw["kind"] not in KINDS:
        raise _fail(path, f"kind must be one of {KINDS}, got {raw['kind']!r}")
    columns = tuple(_parse_column(path, c) for c in raw["columns"])
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise _fail(path, "duplicate column names")
    cdc = CdcSpec(**raw["cdc"]) if raw.get("cdc") else None
    contract = Contract(
        name=raw["name"],
        description=raw.get("description", ""),
        landing=raw["landing"].strip("/"),
        format=raw["format"],
        kind=raw["kind"],
        primary_key=tuple(raw["primary_key"]),
        columns=columns,
        version_column=raw.get("version_column"),
        event_time=raw.get("event_time"),
        cdc=cdc,
        checks=tuple(RowCheck(**c) for c in raw.get("checks", ())),
        freshness_hours=raw.get("freshness_hours"),
        origin=raw.get("origin", "internal"),
        encoding=str(raw.get("encoding", "utf-8")),
        max_new_columns=raw.get("max_new_columns", DEFAULT_MAX_NEW_COLUMNS),
        path=path,
    )
    _validate(path, contract)
    return contract


def _validate(path: Path, contract: Contract) -> None:
    names = set(contract.column_names)
    for key in contract.primary_key:
        if key not in names:
            raise _fail(path, f"primary key column {key!r} is not a declared column")
        if not contract.column(key).required:
            raise _fail(path, f"primary key column {key!r} must be required")
    if contract.kind == "cdc":
        if contract.cdc is None:
            raise _fail(path, "kind cdc needs a cdc: section (operation_column, timestamp_column)")
        for name in (contract.cdc.operation_column, contract.cdc.timestamp_column):
            if name not in names:
                raise _fail(path, f"cdc column {name!r} is not a declared column")
    if contract.kind == "event":
        if not contract.event_time or contract.event_time not in names:
            raise _fail(path, "kind event needs event_time: a declared timestamp column")
        if EVENT_DATE_COLUMN in names:
            raise _fail(path, f"{EVENT_DATE_COLUMN!r} is reserved for the partition column")
    if contract.version_column and contract.version_column not in names:
        raise _fail(path, f"version_column {contract.version_column!r} is not a declared column")
    try:
        codec = codecs.lookup(contract.encoding).name
    except LookupError:
        raise _fail(path, f"unknown encoding {contract.encoding!r}") from None
    if contract.format == "jsonl" and codec != "utf-8":
        raise _fail(path, "JSON lines are UTF-8 (RFC 8259 section 8.1): encoding applies to csv contracts only")
    if not isinstance(contract.max_new_columns, int) or contract.max_new_columns < 0:
        raise _fail(path, f"max_new_columns must be a whole number >= 0, got {contract.max_new_columns!r}")
    if any(n.startswith("_") for n in names):
        raise _fail(path, "column names starting with '_' are reserved for ingestion metadata")


@cache
def load_contracts(directory: Path = CONTRACTS_DIR) -> dict[str, Contract]:
    contracts = [parse_contract(p) for p in sorted(directory.glob("*.yml"))]
    by_name = {c.name: c for c in contracts}
    if len(by_name) != len(contracts):
        raise ContractError(f"two contracts in {directory} share a name")
    return by_name


def get_contract(name: str, directory: Path = CONTRACTS_DIR) -> Contract:
    contracts = load_contracts(directory)
    try:
        return contracts[name]
    except KeyError:
        raise KeyError(f"no contract named {name!r} in {directory}; known: {sorted(contracts)}") from None
