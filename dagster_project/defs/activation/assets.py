"""Activation: one asset per sync definition (syncs/*.yml).

Every activation asset depends on its dbt model, on dim_customers directly, so the blocking
Great Expectations check on dim_customers (and any blocking check on the model) stops it, and
on the consent ledger (gold/customer_consent) the sync engine checks every customer against.
All activation assets of a run share one Spark process (a subsettable multi-asset): one asset
per sync in the graph and in the UI, one JVM start per run instead of one per sync.
"""

import dagster as dg

from dagster_project.defs.quality.checks import DIM_CUSTOMERS_KEY
from dagster_project.resources import CdpSettingsResource, run_spark_job
from spark_jobs.activation.definitions import SyncDefinition, load_syncs

SYNCS = load_syncs()
CONSENT_KEY = dg.AssetKey(["gold", "customer_consent"])


def sync_spec(sync: SyncDefinition) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=sync.asset_key,
        deps=[dg.AssetKey(["gold", sync.model]), DIM_CUSTOMERS_KEY, CONSENT_KEY],
        group_name="activation",
        kinds={sync.destination_type.replace("_", "")},
        skippable=True,
        description=f"{sync.description} {sync.mode.capitalize()} from gold.{sync.model}; "
        f"defined in syncs/{sync.path.name if sync.path else sync.name + '.yml'}.",
        metadata={
            "mode": sync.mode,
            "destination": sync.destination_type,
            "model": sync.table,
            "purpose": sync.purpose,
        },
    )


@dg.multi_asset(name="activation", specs=[sync_spec(s) for s in SYNCS], can_subset=True)
def activation(context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient, cdp_settings: CdpSettingsResource):
    args = [arg for s in SYNCS if dg.AssetKey(s.asset_key) in context.selected_asset_keys for arg in ("--sync", s.name)]
    yield from run_spark_job(context, pipes, cdp_settings, "spark_jobs.activation.sync", args).get_results()


def sync_schedules() -> list[dg.ScheduleDefinition]:
    """Each sync on its own schedule: it sends what changed in its model since its last run."""
    return [
        dg.ScheduleDefinition(
            name=f"sync_{s.name}",
            cron_schedule=s.schedule,
            execution_timezone="UTC",
            job=dg.define_asset_job(f"sync_{s.name}_job", selection=dg.AssetSelection.assets(s.asset_key)),
        )
        for s in SYNCS
        if s.schedule
    ]


defs = dg.Definitions(assets=[activation], schedules=sync_schedules())
