"""The one Dagster entry point: merges every domain's definitions under dagster_project/defs/."""

import dagster as dg

from dagster_project.defs.activation import assets as activation
from dagster_project.defs.dbt import assets as dbt
from dagster_project.defs.identity import assets as identity
from dagster_project.defs.ingest import assets as ingest
from dagster_project.defs.ingest.partitions import recent_days_tags
from dagster_project.defs.landing import assets as landing
from dagster_project.defs.ml import assets as ml
from dagster_project.defs.quality import checks as quality
from dagster_project.resources import CdpSettingsResource

MAIN_JOB_NAME = "cdp_main"

# The whole pipeline, landing to activation, with every asset check. The event sources in it
# are partitioned by delivery day, so every run of it names a day or a range of days.
cdp_main = dg.define_asset_job(MAIN_JOB_NAME, selection=dg.AssetSelection.all(),
                               description="Land, ingest, resolve identity, build gold, check, export.")


@dg.schedule(name="cdp_main_daily", job=cdp_main, cron_schedule="0 3 * * *", execution_timezone="UTC")
def cdp_main_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every day at 03:00 UTC, over yesterday's and today's deliveries (files that landed after
    yesterday's run are still picked up; files already ingested are skipped)."""
    today = context.scheduled_execution_time.date()
    return dg.RunRequest(run_key=f"daily-{today}", tags=recent_days_tags(today, days=2))


def _platform() -> dg.Definitions:
    """Jobs, schedules, resources and executor shared by every domain (a function, so that the
    module holds exactly one Definitions object, as ``dagster dev`` requires)."""
    return dg.Definitions(
        jobs=[cdp_main],
        schedules=[cdp_main_daily],
        resources={
            "cdp_settings": CdpSettingsResource(),
            "pipes": dg.PipesSubprocessClient(),
        },
        # Serial, in-process steps: every Spark step is its own process, and the embedded Derby
        # metastore admits one at a time. With a shared metastore (Glue, Hive), use multiprocess.
        executor=dg.in_process_executor,
    )


defs = dg.Definitions.merge(
    landing.defs, ingest.defs, identity.defs, ml.defs, dbt.defs, quality.defs, activation.defs, _platform(),
)
