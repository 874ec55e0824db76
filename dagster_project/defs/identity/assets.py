"""Silver identity tables, built by one Spark job (spark_jobs/identity/resolve.py)."""

import dagster as dg

from dagster_project.defs.ingest.assets import bronze_key
from dagster_project.defs.privacy.assets import ERASURE_KEY
from dagster_project.resources import CdpSettingsResource, asset_check_specs, asset_key, run_spark_job
from spark_jobs.identity.persons import SOURCES
from spark_jobs.identity.resolution import DEFAULT_SIZE_LIMIT
from spark_jobs.identity.resolve import SPEC


class IdentityConfig(dg.Config):
    full: bool = False  # re-link everything and re-estimate the weights
    size_limit: int = DEFAULT_SIZE_LIMIT


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            asset_key(output.asset),
            group_name="silver",
            kinds={"spark", "delta"},
            description=output.description,
            # after erasure: a person whose erasure was requested is never resolved again
            deps=[*[bronze_key(s) for s in (*SOURCES, "web_events", "email_events")], ERASURE_KEY],
        )
        for output in SPEC.outputs
    ],
    check_specs=asset_check_specs(SPEC),
    name="identity_resolution",
)
def identity_resolution(
    context: dg.AssetExecutionContext,
    config: IdentityConfig,
    pipes: dg.PipesSubprocessClient,
    cdp_settings: CdpSettingsResource,
):
    """Deterministic and Fellegi-Sunter links, clusters, persistent ids, households, evidence.
    Incremental when the last run left its state, unless ``full``."""
    args = ["--size-limit", str(config.size_limit), *(["--full"] if config.full else [])]
    yield from run_spark_job(context, pipes, cdp_settings, SPEC.module, args).get_results()


identity_full = dg.define_asset_job(
    "identity_full",
    selection=dg.AssetSelection.assets(identity_resolution),
    config={"ops": {"identity_resolution": {"config": {"full": True}}}},
    description="Re-link every record and re-estimate the Fellegi-Sunter weights (daily runs are incremental).",
)

identity_weekly_full = dg.ScheduleDefinition(
    name="identity_weekly_full", job=identity_full, cron_schedule="0 5 * * 0", execution_timezone="UTC"
)

defs = dg.Definitions(assets=[identity_resolution], jobs=[identity_full], schedules=[identity_weekly_full])
