"""Ad-audience files on S3 (boto3), for the ad platforms' customer-match uploads.

Each run writes, under ``<prefix>/<sync>/<run_id>/``, CSV parts of members to add and members to
remove, and last a ``manifest.json`` listing every part with its row count and SHA-256; a reader
takes a run's folder only once its manifest exists. Every object is uploaded under a temporary key
and copied to its final key, so no reader ever sees half a file. Emails and phones are normalised
and SHA-256 hashed the way the platform's specification says (normalise.py); other values are
guarded against spreadsheet formula injection.

    destination: {type: s3_audience, hash_spec: google, region_field: country,
                  hashed: {Email: email, Phone: phone}}
    fields: {email: Email, phone: Phone, country: Country}
"""

from __future__ import annotations

import csv
import hashlib
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from spark_jobs.activation.destinations.base import Change, Destination, Outcome
from spark_jobs.activation.normalise import HASH_SPECS, normalise_email, normalise_phone, sha256_hex
from spark_jobs.activation.s3 import neutralise_formula, s3_client, upload_atomically


class S3AudienceDestination(Destination):
    default_batch_size = 5000

    def __init__(self, sync, run_id, settings) -> None:
        super().__init__(sync, run_id, settings)
        self.spec = self.config.get("hash_spec", "google")
        if self.spec not in HASH_SPECS:
            raise ValueError(f"{sync.name}: hash_spec must be one of {HASH_SPECS}")
        self.hashed = dict(self.config.get("hashed", {}))  # destination field -> email | phone
        self.region_field = self.config.get("region_field")  # destination field with the country
        self.columns = list(sync.fields.values())
        self.bucket = self.config.get("bucket") or settings.export_bucket
        self.prefix = "/".join(
            p.strip("/")
            for p in (self.config.get("prefix") or f"{settings.export_prefix}/ad_audiences", sync.name, run_id)
        )
        settings.scratch_dir.mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.TemporaryDirectory(dir=settings.scratch_dir)
        self._client = s3_client(settings)
        self._parts: dict[str, tuple[Path, object, object, int]] = {}
        self._uploaded: list[dict] = []

    def _row(self, change: Change) -> list[str] | None:
        region = change.fields.get(self.region_field) if self.region_field else None
        row, matchable = [], False
        for column in self.columns:
            value = change.fields.get(column)
            kind = self.hashed.get(column)
            if kind == "email":
                value = sha256_hex(normalise_email(value))
            elif kind == "phone":
                value = sha256_hex(normalise_phone(value, region, self.spec))
            matchable |= bool(kind and value)
            row.append("" if value is None else str(neutralise_formula(value)))
        return row if matchable or not self.hashed else None

    def _write(self, op: str, changes: list[Change]) -> list[Outcome]:
        if op not in self._parts:
            path = Path(self._tmp.name) / f"{op}-{len(self._uploaded) + 1:05d}.csv"
            handle = path.open("w", newline="", encoding="utf-8")
            writer = csv.writer(handle)
            writer.writerow(self.columns)
            self._parts[op] = (path, handle, writer, 0)
        path, handle, writer, rows = self._parts[op]
        outcomes = []
        for change in changes:
            if op == "remove" and not change.destination_id:
                outcomes.append(Outcome(change.key, True))  # never sent, nothing to remove
                continue
            row = self._row(change) if op == "add" else json.loads(change.destination_id)
            if row is None:
                outcomes.append(Outcome(change.key, False, None, "no email or phone that normalises"))
                continue
            writer.writerow(row)
            rows += 1
            # The row as sent (hashed) is what a later removal must name; no raw PII is kept.
            outcomes.append(Outcome(change.key, True, json.dumps(row)))
        self._parts[op] = (path, handle, writer, rows)
        return outcomes

    def upsert(self, changes: list[Change]) -> list[Outcome]:
        return self._write("add", changes)

    def remove(self, changes: list[Change]) -> list[Outcome]:
        """A removal repeats the row as it was sent (kept in the sync state as destination_id)."""
        return self._write("remove", changes)

    def flush(self) -> None:
        for op, (path, handle, _, rows) in sorted(self._parts.items()):
            handle.close()
            key = f"{self.prefix}/{path.name}"
            upload_atomically(self._client, path, self.bucket, key)
            self._uploaded.append(
                {"key": key, "op": op, "rows": rows, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            )
            path.unlink()
        self._parts.clear()

    def close(self) -> dict:
        self.flush()
        manifest = {
            "sync": self.sync.name,
            "run_id": self.run_id,
            "hash_spec": self.spec,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "columns": self.columns,
            "hashed": self.hashed,
            "files": self._uploaded,
            "rows_added": sum(f["rows"] for f in self._uploaded if f["op"] == "add"),
            "rows_removed": sum(f["rows"] for f in self._uploaded if f["op"] == "remove"),
        }
        path = Path(self._tmp.name) / "manifest.json"
        path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if self._uploaded:
            upload_atomically(self._client, path, self.bucket, f"{self.prefix}/manifest.json")
        self._tmp.cleanup()
        return {"uri": f"s3://{self.bucket}/{self.prefix}/", "files": len(self._uploaded)}
