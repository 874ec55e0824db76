"""Subject access export (GDPR art. 15, CCPA right to know): everything the platform holds
about one person, as one JSON document.

    python -m spark_jobs.privacy.subject_access --email ann@example.com --output ann.json
    python -m spark_jobs.privacy.subject_access --customer-id cus_... --request-id DSR-42 --output out.json
    ./cdp export-subject --email ann@example.com --output ann.json     (the local stack)

The person is found the way identity resolution knows them: an email (standardised as identity
standardises it) or a phone (E.164) that any of their source records carries, or any customer
id ever issued to them (a retired id leads to today's through the lineage). For each of today's
customers the document holds every id they ever had, every source record with its source and
its bronze row (and, for a CDC source, every version of it), the identity evidence, the golden
record, household, traits, scores, segments and their history, consents and their history,
orders, touchpoints, what was sent to which destination and when, and refusals. With an email,
quarantined raw records that contain it are listed too. Tables that do not exist yet are named
in ``tables_not_present``; nothing is left out silently.
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.identity import standardise
from spark_jobs.identity.resolve import IDENTITY_MAP_TABLE, LINEAGE_TABLE
from spark_jobs.ingest.apply import history_table
from spark_jobs.ingest.bronze import QUARANTINE_TABLE
from spark_jobs.ingest.contracts import load_contracts

log = logging.getLogger(__name__)

# Per customer: section name -> (table, the column holding the customer id).
CUSTOMER_SECTIONS = {
    "golden_record": ("gold.dim_customers", "customer_id"),
    "household": ("gold.bridge_customers_households", "customer_id"),
    "traits": ("gold.customer_traits", "customer_id"),
    "scores": ("silver.customer_scores", "customer_id"),
    "segments": ("gold.customer_segments", "customer_id"),
    "segment_history": ("gold.customer_segment_history", "customer_id"),
    "next_best_action": ("gold.customer_next_best_action", "customer_id"),
    "consent": ("gold.customer_consent", "customer_id"),
    "consent_history": ("gold.customer_consent_history", "customer_id"),
    "orders": ("gold.fct_orders", "customer_id"),
    "touchpoints": ("gold.fct_customer_touchpoints", "customer_id"),
    "identity_evidence": ("silver.identity_evidence", "customer_id"),
    "anonymous_ids": ("silver.anonymous_ids", "customer_id"),
    "sent_to_destinations": ("activation.sync_state", "record_key"),
    "refused_by_destinations": ("activation.sync_errors", "record_key"),
    "suppressions": ("activation.suppressions", "customer_id"),
}


class SubjectNotGiven(ValueError):
    pass


def _rows(frame: DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows in a stable order (dates and decimals as text)."""
    rows = [json.loads(json.dumps(r.asDict(recursive=True), default=str)) for r in frame.collect()]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


class SubjectAccess:
    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.missing: set[str] = set()

    def _table(self, name: str) -> DataFrame | None:
        if self.spark.catalog.tableExists(name):
            return self.spark.table(name)
        self.missing.add(name)
        return None

    def customer_ids(self, *, email: str | None, phone: str | None, customer_id: str | None) -> list[str]:
        """Today's customer ids of the person (several when their records are split today)."""
        identity, lineage = self._table(IDENTITY_MAP_TABLE), self._table(LINEAGE_TABLE)
        found: set[str] = set()
        probe = self.spark.createDataFrame([(email, phone)], "email string, phone string")
        if email and identity is not None:
            (key,) = probe.select(standardise.email(F.col("email"))).first()
            found |= {r.customer_id for r in identity.where(F.col("email_normalised") == key).collect()}
        if phone and identity is not None:
            (key,) = probe.select(standardise.phone(F.col("phone"))).first()
            found |= {r.customer_id for r in identity.where(F.col("phone_e164") == key).collect()}
        if customer_id:
            found.add(customer_id)
        if lineage is not None and found:
            current = lineage.where(F.col("customer_id").isin(sorted(found))).collect()
            moved = {r.customer_id for r in current}
            found = (found - moved) | {r.current_customer_id for r in current if r.current_customer_id}
        return sorted(found)

    def source_records(self, customer_id: str) -> list[dict[str, Any]]:
        identity = self._table(IDENTITY_MAP_TABLE)
        if identity is None:
            return []
        mapped = identity.where(F.col("customer_id") == customer_id).collect()
        contracts = load_contracts()
        records = []
        for source in sorted({r.source_table for r in mapped}):
            ids = sorted(r.source_record_id for r in mapped if r.source_table == source)
            rules = {r.source_record_id: r.match_rule for r in mapped if r.source_table == source}
            contract = contracts.get(source)
            rows, versions = {}, {}
            if contract is not None and len(contract.primary_key) == 1:
                key = contract.primary_key[0]
                bronze = self._table(contract.table)
                if bronze is not None:
                    rows = {str(r[key]): r for r in _rows(bronze.where(F.col(key).cast("string").isin(ids)))}
                if contract.kind == "cdc":
                    history = self._table(history_table(contract))
                    for row in _rows(history.where(F.col(key).cast("string").isin(ids))) if history else []:
                        versions.setdefault(str(row[key]), []).append(row)
            for record_id in ids:
                entry = {"source": source, "record_id": record_id, "match_rule": rules[record_id]}
                entry["record"] = rows.get(record_id)
                if record_id in versions:
                    entry["versions"] = versions[record_id]
                records.append(entry)
        return records

    def customer(self, customer_id: str) -> dict[str, Any]:
        lineage = self._table(LINEAGE_TABLE)
        ever = (
            sorted(r.customer_id for r in lineage.where(F.col("current_customer_id") == customer_id).collect())
            if lineage is not None
            else [customer_id]
        )
        document: dict[str, Any] = {
            "customer_id": customer_id,
            "ids_ever": ever,
            "source_records": self.source_records(customer_id),
        }
        for section, (table, column) in CUSTOMER_SECTIONS.items():
            frame = self._table(table)
            document[section] = _rows(frame.where(F.col(column) == customer_id)) if frame is not None else []
        return document

    def quarantined(self, email: str | None) -> list[dict[str, Any]]:
        quarantine = self._table(QUARANTINE_TABLE) if email else None
        if quarantine is None:
            return []
        needle = email.strip().lower()
        return _rows(quarantine.where(F.lower(F.col("raw_record")).contains(needle)))

    def export(
        self,
        *,
        email: str | None = None,
        phone: str | None = None,
        customer_id: str | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        if not (email or phone or customer_id):
            raise SubjectNotGiven("name the person: --email, --phone or --customer-id")
        ids = self.customer_ids(email=email, phone=phone, customer_id=customer_id)
        log.info("subject access: %d customer id(s) found", len(ids))
        customers = [self.customer(i) for i in ids]
        return {
            "request": {
                "request_id": request_id,
                "looked_up_by": sorted(
                    k for k, v in {"email": email, "phone": phone, "customer_id": customer_id}.items() if v
                ),
                "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
            "found": bool(customers),
            "customers": customers,
            "quarantined_records": self.quarantined(email),
            "tables_not_present": sorted(self.missing),
        }


def main(argv: list[str] | None = None) -> int:
    from spark_jobs.reporting import spark_job

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--email")
    parser.add_argument("--phone", help="E.164, e.g. +447700900123")
    parser.add_argument("--customer-id")
    parser.add_argument("--request-id", help="the request's reference, written into the document")
    parser.add_argument("--output", type=Path, required=True, help="the JSON document to write")
    args = parser.parse_args(argv)
    if not (args.email or args.phone or args.customer_id):
        parser.error("name the person: --email, --phone or --customer-id")
    with spark_job("cdp-subject-access") as (spark, _settings, _reporter):
        document = SubjectAccess(spark).export(
            email=args.email, phone=args.phone, customer_id=args.customer_id, request_id=args.request_id
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(f".{args.output.name}.tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False), encoding="utf-8")
    tmp.replace(args.output)  # never a half-written document
    records = sum(len(c["source_records"]) for c in document["customers"])
    # The document holds personal data; the log says only how much was found.
    log.info("wrote %s: %d customer(s), %d source record(s)", args.output, len(document["customers"]), records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
