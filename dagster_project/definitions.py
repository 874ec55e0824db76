"""The Dagster code location: merges every domain's definitions under dagster_project/defs/.

``defs`` is the platform as deployed: deliveries arrive in the landing zone from outside. The
embedded default (``./cdp run``, ``./cdp dev``) loads ``devstack.definitions``,
the same graph with the sample generator in front of bronze.
"""

import dagster as dg

from dagster_project.defs.activation import assets as activation
from dagster_project.defs.dbt import assets as dbt
from dagster_project.defs.dbt.assets import dbt_nodes_new_data_leaves_unchanged
from dagster_project.defs.identity import assets as identity
from dagster_project.defs.ingest import assets as ingest
from dagster_project.defs.ingest.partitions import recent_days_tags
from dagster_project.defs.ml import assets as ml
from dagster_project.defs.privacy import assets as privacy
from dagster_project.defs.quality import checks as quality
from dagster_project.pipes import WholeLinesTempFileMessageReader
from dagster_project.resources import CdpSettingsResource
from spark_jobs.settings import Settings

MAIN_JOB_NAME = "cdp_main"
DAILY_JOB_NAME = "cdp_daily"

# The whole pipeline, landing to activation, with every asset check. The event sources in it
# are partitioned by delivery day, so every run of it names a day or a range of days.
# Retention is maintenance on its own schedule (job cdp_retention), not a layer of the pipeline.
PIPELINE = dg.AssetSelection.all() - dg.AssetSelection.assets(privacy.RETENTION_KEY)
cdp_main = dg.define_asset_job(
    MAIN_JOB_NAME,
    selection=PIPELINE,
    description="Land, ingest, resolve identity, build gold, check, export.",
)


# The same pipeline without the dbt nodes a day of new data leaves unchanged, and their tests:
# the views and the nodes no source feeds (the seed, dim_segments). A view is a stored query:
# dbt rebuilds it only to change its SQL, and its data tests re-read bronze through it (55
# tests, 105 s of a 462 s full dbt build at 100,000 customers). The daily run rebuilds and
# tests every table new data can change; the weekly run of cdp_main (and a manual one after a
# view, the seed or the segment vars change) rebuilds the rest and runs every test. Meanwhile
# bronze's contracts check every new row on arrival, and the tables' tests and Great
# Expectations still gate the exports.
cdp_daily = dg.define_asset_job(
    DAILY_JOB_NAME,
    selection=PIPELINE - dbt_nodes_new_data_leaves_unchanged(),
    description="cdp_main without the dbt nodes new data leaves unchanged (views, seed, dim_segments) "
    "and their tests: the daily run.",
)


def _recent_days_schedule(name: str, job, cron: str, when: str, run_key: str) -> dg.ScheduleDefinition:
    """A schedule of ``job`` at 03:00 UTC on ``cron``'s days over yesterday's and today's
    deliveries (files that landed after the previous run are still picked up; files already
    ingested are skipped)."""

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        description=f"{when} at 03:00 UTC: {job.name} over yesterday's and today's deliveries.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        today = context.scheduled_execution_time.date()
        return dg.RunRequest(run_key=f"{run_key}-{today}", tags=recent_days_tags(today, days=2))

    return _schedule


cdp_main_daily = _recent_days_schedule("cdp_main_daily", cdp_daily, "0 3 * * 1-6", "Monday to Saturday", "daily")
# Sundays, in place of the daily run: the whole job, views and every dbt test included.
cdp_main_weekly = _recent_days_schedule("cdp_main_weekly", cdp_main, "0 3 * * 0", "Sundays", "weekly")


def steps_in_parallel(settings: Settings) -> bool:
    """Every Spark step is a client of one Spark service (or of a shared metastore): then steps
    that touch different tables may run side by side. Without either, each step starts its own
    Spark, and the embedded Derby metastore admits one Spark process at a time."""
    return bool(settings.spark_remote or settings.hive_metastore_uris) and settings.max_parallel_steps > 1


def _step_executor_requirements(_config) -> list:
    return dg.multiple_process_executor_requirements() if steps_in_parallel(Settings.from_env()) else []


@dg.executor(name="cdp_steps", requirements=_step_executor_requirements)
def cdp_steps_executor(_init_context):
    """Decided when a run starts, from the run's settings (not when the code loads): steps in
    their own processes, up to ``CDP_MAX_PARALLEL_STEPS`` at once, forked from a process that
    imported the code location once, when :func:`steps_in_parallel`; else one at a time in the
    run's process."""
    # Dagster's own executors, built as its multiprocess / in_process executor definitions do.
    from dagster._core.execution.retries import RetryMode
    from dagster._core.executor.in_process import InProcessExecutor
    from dagster._core.executor.multiprocess import MultiprocessExecutor

    settings = Settings.from_env()
    if not steps_in_parallel(settings):
        return InProcessExecutor(retries=RetryMode.ENABLED)
    return MultiprocessExecutor(
        retries=RetryMode.ENABLED, max_concurrent=settings.max_parallel_steps, start_method="forkserver"
    )


def _platform() -> dg.Definitions:
    """Jobs, schedules, resources and executor shared by every domain (a function, so that the
    module holds exactly one Definitions object, as ``dagster dev`` requires)."""
    return dg.Definitions(
        jobs=[cdp_main, cdp_daily],
        schedules=[cdp_main_daily, cdp_main_weekly],
        resources={
            "cdp_settings": CdpSettingsResource(),
            "pipes": dg.PipesSubprocessClient(message_reader=WholeLinesTempFileMessageReader()),
        },
        executor=cdp_steps_executor,
    )


def build_definitions(*extra: dg.Definitions, bronze_deps: list[dg.AssetKey] | None = None) -> dg.Definitions:
    """Every domain's definitions, with ``extra`` ones (the local sample) merged in and
    ``bronze_deps`` as the bronze assets' upstream."""
    return dg.Definitions.merge(
        *extra,
        ingest.build_defs(bronze_deps or ()),
        identity.defs,
        ml.defs,
        dbt.defs,
        quality.defs,
        activation.defs,
        privacy.defs,
        _platform(),
    )


defs = build_definitions()
