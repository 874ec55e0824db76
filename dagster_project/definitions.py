"""The one Dagster entry point: merges every domain's definitions under dagster_project/defs/."""

import dagster as dg

from dagster_project.defs.activation import assets as activation
from dagster_project.defs.dbt import assets as dbt
from dagster_project.defs.dbt.assets import dbt_views
from dagster_project.defs.identity import assets as identity
from dagster_project.defs.ingest import assets as ingest
from dagster_project.defs.ingest.partitions import recent_days_tags
from dagster_project.defs.landing import assets as landing
from dagster_project.defs.ml import assets as ml
from dagster_project.defs.quality import checks as quality
from dagster_project.resources import CdpSettingsResource

MAIN_JOB_NAME = "cdp_main"
DAILY_JOB_NAME = "cdp_daily"

# The whole pipeline, landing to activation, with every asset check. The event sources in it
# are partitioned by delivery day, so every run of it names a day or a range of days.
cdp_main = dg.define_asset_job(MAIN_JOB_NAME, selection=dg.AssetSelection.all(),
                               description="Land, ingest, resolve identity, build gold, check, export.")


# The same pipeline without the dbt views and their tests. A view is a stored query: dbt
# rebuilds it only to change its SQL, and its data tests re-read bronze through it (55 tests,
# ~100 s of a ~500 s daily dbt build at 100,000 customers). The daily run rebuilds and tests
# every table it writes; the weekly run of cdp_main (and a manual one after a view's SQL
# changes) rebuilds the views and runs every test. Meanwhile bronze's contracts check every
# new row on arrival, and the tables' tests and Great Expectations still gate the exports.
cdp_daily = dg.define_asset_job(DAILY_JOB_NAME, selection=dg.AssetSelection.all() - dbt_views(),
                                description="cdp_main without the dbt views and their tests: the daily run.")


@dg.schedule(name="cdp_main_daily", job=cdp_daily, cron_schedule="0 3 * * 1-6", execution_timezone="UTC")
def cdp_main_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Monday to Saturday at 03:00 UTC, over yesterday's and today's deliveries (files that
    landed after yesterday's run are still picked up; files already ingested are skipped)."""
    today = context.scheduled_execution_time.date()
    return dg.RunRequest(run_key=f"daily-{today}", tags=recent_days_tags(today, days=2))


@dg.schedule(name="cdp_main_weekly", job=cdp_main, cron_schedule="0 3 * * 0", execution_timezone="UTC")
def cdp_main_weekly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Sundays at 03:00 UTC, in place of the daily run: the whole job, views and every dbt test
    included, over the same two delivery days."""
    today = context.scheduled_execution_time.date()
    return dg.RunRequest(run_key=f"weekly-{today}", tags=recent_days_tags(today, days=2))


def _platform() -> dg.Definitions:
    """Jobs, schedules, resources and executor shared by every domain (a function, so that the
    module holds exactly one Definitions object, as ``dagster dev`` requires)."""
    return dg.Definitions(
        jobs=[cdp_main, cdp_daily],
        schedules=[cdp_main_daily, cdp_main_weekly],
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
