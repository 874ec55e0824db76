"""Bronze Delta tables: one asset per source contract (spark_jobs/ingest/contracts/*.yml).

Two multi-assets, each one Spark process for all its selected tables:
- ``bronze_ingest``: the ``upsert`` and ``cdc`` sources, unpartitioned; every run reads the
  files not ingested yet;
- ``bronze_events``: the append-only ``event`` sources, with daily partitions by delivery day
  (see partitions.py); a run reads the not-yet-ingested files of its partition range.

Every asset carries two checks that the ingestion job reports through Pipes:
``reconciliation`` (received = accepted + quarantined + erased, read back from the tables; blocking)
and ``freshness`` (the newest loaded file is within the contract's freshness_hours; a warning).
"""

from collections.abc import Iterable, Sequence
from datetime import timedelta

import dagster as dg

from dagster_project.defs.ingest.partitions import delivery_days
from dagster_project.defs.ingest.sensors import build_landing_sensor
from dagster_project.resources import CdpSettingsResource, run_spark_job
from spark_jobs.ingest.bronze import FRESHNESS, RECONCILIATION
from spark_jobs.ingest.contracts import Contract, load_contracts


def bronze_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["bronze", name])


def _spec(contract: Contract, deps: Sequence[dg.AssetKey]) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=bronze_key(contract.name),
        deps=list(deps),
        group_name="bronze",
        kinds={"spark", "delta"},
        description=f"{contract.description} {contract.format} files under landing/{contract.landing}, "
        f"applied as {contract.kind} on {', '.join(contract.primary_key)}.",
        metadata={"contract": str(contract.path.name), "origin": contract.origin, "kind": contract.kind},
        tags={"origin": contract.origin},
    )


def _checks(contract: Contract) -> list[dg.AssetCheckSpec]:
    key = bronze_key(contract.name)
    return [
        dg.AssetCheckSpec(
            RECONCILIATION.name, asset=key, blocking=RECONCILIATION.blocking, description=RECONCILIATION.description
        ),
        dg.AssetCheckSpec(
            FRESHNESS.name,
            asset=key,
            blocking=FRESHNESS.blocking,
            description=(
                f"newest file within {contract.freshness_hours} h"
                if contract.freshness_hours is not None
                else "no freshness limit in the contract (delivers on demand): passes, with the newest file's age"
            ),
        ),
    ]


def _ingest(
    context: dg.AssetExecutionContext,
    pipes: dg.PipesSubprocessClient,
    cdp_settings: CdpSettingsResource,
    extra_args: Iterable[str] = (),
):
    entities = sorted(key.path[-1] for key in context.selected_asset_keys)
    yield from run_spark_job(
        context,
        pipes,
        cdp_settings,
        "spark_jobs.ingest.bronze",
        ["--entities", *entities, "--batch-id", context.run_id, *extra_args],
    ).get_results()


def build_bronze_assets(deps: Sequence[dg.AssetKey] = ()) -> list[dg.AssetsDefinition]:
    """``deps``: assets that write the landing zone, when the deployment has one (the local
    sample generator); in production, deliveries arrive from outside and the sensor notices."""
    contracts = load_contracts().values()
    tables = [c for c in contracts if c.kind != "event"]
    events = [c for c in contracts if c.kind == "event"]

    @dg.multi_asset(
        specs=[_spec(c, deps) for c in tables],
        check_specs=[s for c in tables for s in _checks(c)],
        can_subset=True,
        name="bronze_ingest",
    )
    def bronze_ingest(
        context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient, cdp_settings: CdpSettingsResource
    ):
        """All selected entities in one Spark process (one JVM start, one metastore lock)."""
        yield from _ingest(context, pipes, cdp_settings)

    @dg.multi_asset(
        specs=[_spec(c, deps) for c in events],
        check_specs=[s for c in events for s in _checks(c)],
        can_subset=True,
        name="bronze_events",
        partitions_def=delivery_days,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def bronze_events(
        context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient, cdp_settings: CdpSettingsResource
    ):
        """The selected event sources for the run's delivery days, in one Spark process."""
        window = context.partition_time_window  # [start, end): end is midnight after the last day
        first_day, last_day = window.start.date(), (window.end - timedelta(days=1)).date()
        context.log.info(f"ingesting the deliveries of {first_day} to {last_day}")
        yield from _ingest(
            context, pipes, cdp_settings, ["--from-date", first_day.isoformat(), "--to-date", last_day.isoformat()]
        )

    return [bronze_ingest, bronze_events]


def build_defs(deps: Sequence[dg.AssetKey] = ()) -> dg.Definitions:
    bronze_assets = build_bronze_assets(deps)
    return dg.Definitions(assets=bronze_assets, sensors=[build_landing_sensor(bronze_assets)])
