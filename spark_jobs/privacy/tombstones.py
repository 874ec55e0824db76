"""Tombstones of erased people: salted hashes of their standardised identifiers, never the values.

An erasure (spark_jobs/privacy/erasure.py) writes one row per identifier of the person to
``privacy.erasure_tombstones``: the kind (``email``, ``phone``, ``crm_contact_id``, ... as
contracts declare with ``identifies:``; ``customer_id``; ``record:<source>`` for a source
record's primary key) and SHA-256 of salt + kind + standardised value. The same hash of a
column finds the person's rows when the erasure deletes them (so a re-run after a crash still
finds them once the clear values are gone), and lets ingestion drop a re-delivered row of an
erased person before it reaches bronze (counted as ``erased``, nothing else kept).

The salt is a secret: ``CDP_ERASURE_SALT`` (or ``CDP_ERASURE_SALT_SECRET_ID`` to read it from
AWS Secrets Manager). Without it, the
embedded default keeps a random one in ``$CDP_HOME/secrets/erasure_salt``. Changing the salt
makes earlier tombstones match nothing: keep it with the lakehouse's backups.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.identity import standardise
from spark_jobs.ingest.contracts import Contract

TOMBSTONES_TABLE = "privacy.erasure_tombstones"
TOMBSTONES_SCHEMA = "request_id string, kind string, identifier_hash string, created_at timestamp"
SALT_ENV = "CDP_ERASURE_SALT"


class SaltMissing(RuntimeError):
    pass


def erasure_salt(home: Path | None) -> str:
    """The secret salt: the environment's (or AWS Secrets Manager's, ``CDP_ERASURE_SALT_SECRET_ID``),
    else the local state folder's (created once)."""
    if os.environ.get(SALT_ENV, "").strip() or os.environ.get(f"{SALT_ENV}_SECRET_ID", "").strip():
        from spark_jobs.activation.credentials import credential

        return credential(SALT_ENV)
    if home is None:
        raise SaltMissing(f"set {SALT_ENV} (a long random secret, the same for every job of the platform)")
    path = Path(home) / "secrets" / "erasure_salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(secrets.token_hex(32), encoding="ascii")
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_text(encoding="ascii").strip()


def record_kind(source: str) -> str:
    """The kind of a source record's primary key."""
    return f"record:{source}"


def standardised(kind: str, column: Column) -> Column:
    """The form identifiers of ``kind`` are compared in (as identity resolution standardises
    emails and phones; ids are trimmed and lower-cased)."""
    if kind == "email":
        return standardise.email(column)
    if kind == "phone":
        return standardise.phone(column)
    value = F.lower(F.trim(column.cast("string")))
    return F.when(value != "", value)


def identifier_hash(salt: str, kind: str | Column, value: Column) -> Column:
    """Hash of an already standardised value (null stays null); ``kind`` a name or a column."""
    kind_column = F.lit(kind) if isinstance(kind, str) else kind
    return F.sha2(F.concat(F.lit(salt), F.lit("\u0001"), kind_column, F.lit("\u0001"), value), 256)


def column_hash(salt: str, kind: str, column: Column) -> Column:
    return identifier_hash(salt, kind, standardised(kind, column))


@dataclass(frozen=True)
class Tombstones:
    """The hashes of every erased identifier, by kind (small: a few per erased person)."""

    salt: str
    hashes: dict[str, frozenset[str]]

    @classmethod
    def load(cls, spark: SparkSession, salt: Callable[[], str]) -> Tombstones | None:
        """None when nobody was ever erased (no table, or an empty one); ``salt`` is asked for
        only when someone was."""
        if not spark.catalog.tableExists(TOMBSTONES_TABLE):
            return None
        by_kind: dict[str, set[str]] = {}
        for row in spark.table(TOMBSTONES_TABLE).select("kind", "identifier_hash").distinct().collect():
            by_kind.setdefault(row.kind, set()).add(row.identifier_hash)
        return cls(salt(), {k: frozenset(v) for k, v in by_kind.items()}) if by_kind else None

    def columns_to_check(self, contract: Contract, columns: list[str]) -> dict[str, str]:
        """column -> kind for the contract's identifying columns (and its single-column primary
        key) that tombstones of their kind exist for."""
        checks = dict(contract.identifying_columns)
        if len(contract.primary_key) == 1 and record_kind(contract.name) in self.hashes:
            checks.setdefault(contract.primary_key[0], record_kind(contract.name))
        return {c: k for c, k in checks.items() if c in columns and k in self.hashes}

    def matches(self, frame: DataFrame, contract: Contract) -> Column | None:
        """True for the rows of ``frame`` (a batch of the contract's rows) that belong to an
        erased person; None when no column can match."""
        condition = None
        for column, kind in sorted(self.columns_to_check(contract, frame.columns).items()):
            hashes = self.hashes[kind]
            hit = F.coalesce(column_hash(self.salt, kind, F.col(column)).isin(sorted(hashes)), F.lit(False))
            condition = hit if condition is None else condition | hit
        return condition
