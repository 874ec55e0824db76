"""Privacy maintenance.

- Erasure (spark_jobs/privacy/erasure.py): part of the pipeline, right after bronze and before
  identity, so a run never resolves, models or sends a person whose erasure was requested; and
  its own job ``cdp_erasure`` (the requests delivered to ``erasure_requests``, at once).
- Retention (spark_jobs/privacy/retention.py): its own job and schedule, outside the pipeline
  jobs, so that a run of the pipeline never deletes what it is about to read.
"""

import dagster as dg

from dagster_project.defs.ingest.assets import bronze_key
from dagster_project.resources import CdpSettingsResource, run_spark_job
from spark_jobs.ingest.contracts import load_contracts
from spark_jobs.privacy.erasure import REQUESTS_SOURCE

RETENTION_KEY = dg.AssetKey(["privacy", "retention_log"])
ERASURE_KEY = dg.AssetKey(["privacy", "erasure_log"])


@dg.asset(
    key=ERASURE_KEY,
    group_name="privacy",
    kinds={"spark", "delta"},
    # After every source is ingested (a source ingested alongside could bring a row of the person
    # in after they were deleted), and before identity resolution.
    deps=[bronze_key(name) for name in sorted(load_contracts())],
    description="Erasure requests carried out: each person resolved through identity, tombstoned (salted "
    "hashes), deleted from every destination, the lakehouse, the quarantine and the landing zone, and purged "
    "once erased_data_retention_hours have passed. One row per request, no personal data.",
)
def erasure_log(context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient, cdp_settings: CdpSettingsResource):
    """Every open request (new in bronze.erasure_requests, or left pending by a destination)."""
    yield from run_spark_job(context, pipes, cdp_settings, "spark_jobs.privacy.erasure").get_results()


cdp_erasure = dg.define_asset_job(
    "cdp_erasure",
    selection=[bronze_key(REQUESTS_SOURCE), ERASURE_KEY],
    description="Ingest delivered erasure requests and carry them out now (the pipeline does it on every run too).",
)


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

defs = dg.Definitions(
    assets=[retention_log, erasure_log], jobs=[cdp_retention, cdp_erasure], schedules=[cdp_retention_daily]
)
