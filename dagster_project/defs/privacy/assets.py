"""Retention (spark_jobs/privacy/retention.py): its own job and schedule, outside the pipeline
jobs, so that a run of the pipeline never deletes what it is about to read."""

import dagster as dg

from dagster_project.resources import CdpSettingsResource, run_spark_job

RETENTION_KEY = dg.AssetKey(["privacy", "retention_log"])


@dg.asset(
    key=RETENTION_KEY,
    group_name="privacy",
    kinds={"spark", "delta"},
    description="What retention removed, per run and target: landing files past their days, old rows of the "
    "tables with a rule (quarantined raw records), files only old Delta versions used (VACUUM). "
    "Rules in spark_jobs/privacy/retention.yml.",
)
def retention_log(
    context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient, cdp_settings: CdpSettingsResource
):
    yield from run_spark_job(context, pipes, cdp_settings, "spark_jobs.privacy.retention").get_results()


cdp_retention = dg.define_asset_job(
    "cdp_retention", selection=[RETENTION_KEY], description="Apply the retention rules (daily)."
)
cdp_retention_daily = dg.ScheduleDefinition(
    name="cdp_retention_daily", job=cdp_retention, cron_schedule="30 4 * * *", execution_timezone="UTC"
)

defs = dg.Definitions(assets=[retention_log], jobs=[cdp_retention], schedules=[cdp_retention_daily])
