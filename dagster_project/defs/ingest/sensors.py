"""A sensor that notices new files in the landing zone and ingests them into bronze.

It lists each contract's landing folder from the Dagster process (no Spark): a local folder,
or an ``s3://``/``s3a://`` prefix through boto3. Its cursor holds, per source, the newest
modification time it has already requested a run for. A tick with new files asks for one run
of the bronze assets of those sources. Event sources get the partition range of the new
files' delivery days. The ingestion itself skips files it has already processed, so a file
seen twice costs a listing, never a duplicate.

The sensor ingests bronze only. The downstream layers are refreshed by the ``cdp_daily`` job
(its daily schedule), the ``cdp_main`` job (weekly, or a manual run).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg

from dagster_project.defs.ingest.partitions import first_partition_day, last_partition_day, partition_range_tags
from dagster_project.resources import CdpSettingsResource
from spark_jobs.ingest.contracts import Contract, load_contracts
from spark_jobs.ingest.landing import LandingFile, list_s3, walk_local
from spark_jobs.settings import Settings


def _list_local(root: Path) -> Iterator[LandingFile]:
    """Regular files only (symlinks are never followed; the job reports them)."""
    files, _ = walk_local(str(root))
    for f in files:
        yield LandingFile(f.path, f.size, f.modified_ms)


def list_landing(settings: Settings, contract: Contract) -> list[LandingFile]:
    """The contract's landing files, wherever the landing zone is."""
    if settings.landing_url and urlparse(settings.landing_url).scheme in ("s3", "s3a"):
        return list_s3(f"{settings.landing_url.rstrip('/')}/{contract.landing}", settings.s3_endpoint_url)
    root = Path(urlparse(settings.landing_url).path) if settings.landing_url else settings.landing_dir
    return list(_list_local(root / contract.landing))


def new_files_request(
    contracts: Sequence[Contract], listings: dict[str, list[LandingFile]], cursor: dict[str, int], today: date
) -> tuple[dg.RunRequest | None, dict[str, int], list[str]]:
    """(the run to request or None, the new cursor, warnings) for files newer than the cursor."""
    new_cursor, warnings = dict(cursor), []
    selected, days, fingerprint = [], [], hashlib.sha256()
    for contract in contracts:
        newer = [f for f in listings.get(contract.name, []) if f.modified_ms > cursor.get(contract.name, -1)]
        if not newer:
            continue
        new_cursor[contract.name] = max(f.modified_ms for f in newer)
        if contract.kind == "event":
            first, last = first_partition_day(), last_partition_day(today)
            in_range = [f for f in newer if first <= f.delivery_date <= last]
            for f in sorted(set(newer) - set(in_range), key=lambda f: f.path):
                warnings.append(
                    f"{contract.name}: {f.path} has delivery day {f.delivery_date}, outside the event "
                    f"partitions ({first} to {last}; CDP_PARTITIONS_START, CDP_PARTITIONS_END); not ingested"
                )
            if not in_range:
                continue
            days += [f.delivery_date for f in in_range]
            newer = in_range
        selected.append(contract.name)
        for f in sorted(newer, key=lambda f: f.path):
            fingerprint.update(f"{f.path}\0{f.size}\0{f.modified_ms}\n".encode())
    if not selected:
        return None, new_cursor, warnings
    request = dg.RunRequest(
        run_key=f"landing-{fingerprint.hexdigest()[:24]}",
        asset_selection=[dg.AssetKey(["bronze", name]) for name in selected],
        tags=partition_range_tags(min(days), max(days)) if days else {},
    )
    return request, new_cursor, warnings


def build_landing_sensor(bronze_assets: Sequence[dg.AssetsDefinition]) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_new_files",
        target=list(bronze_assets),
        minimum_interval_seconds=60,
        description="Ingests new landing files into their bronze tables (one run per tick with new files).",
    )
    def landing_new_files(context: dg.SensorEvaluationContext, cdp_settings: CdpSettingsResource):
        settings = cdp_settings.settings()
        contracts = list(load_contracts().values())
        listings = {c.name: list_landing(settings, c) for c in contracts}
        cursor = json.loads(context.cursor) if context.cursor else {}
        request, new_cursor, warnings = new_files_request(contracts, listings, cursor, datetime.now(UTC).date())
        for warning in warnings:
            context.log.warning(warning)
        context.update_cursor(json.dumps(new_cursor, sort_keys=True))
        if request is None:
            return dg.SkipReason("no new landing files")
        context.log.info(f"new files for {[k.path[-1] for k in request.asset_selection]}")
        return request

    return landing_new_files
