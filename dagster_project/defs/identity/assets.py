"""Silver identity tables, built by one Spark job (spark_jobs/identity/resolve.py)."""

import dagster as dg

from dagster_project.defs.ingest.assets import bronze_key
from dagster_project.resources import CdpSettingsResource, run_spark_job
from spark_jobs.identity.persons import SOURCES
from spark_jobs.identity.resolution import DEFAULT_SIZE_LIMIT

IDENTITY_MAP_KEY = dg.AssetKey(["silver", "identity_map"])
OUTPUTS = {
    "identity_map": "Every bronze person record -> its persistent customer id and the strongest rule that linked it.",
    "identity_evidence": "Every accepted link: rule, identifier kind, match weight and per-field comparison levels.",
    "households": "Addresses shared by customers: one row per household.",
    "household_members": "Customer -> household, with the relationship the data shows (family, co_resident).",
    "customer_id_history": "Customer-id changes: old id -> new id, merged / split / removed, when and in which run.",
    "customer_id_lineage": "Every customer id ever issued -> the id that carries its records now.",
    "anonymous_ids": "Anonymous web/app ids stitched to a customer by a login or a tracked email click.",
    "identity_runs": "Resolution metrics per run: records, links by rule, cluster sizes, flagged clusters.",
}


class IdentityConfig(dg.Config):
    full: bool = False        # re-link everything and re-estimate the weights
    size_limit: int = DEFAULT_SIZE_LIMIT


@dg.multi_asset(
    specs=[dg.AssetSpec(["silver", name], group_name="silver", kinds={"spark", "delta"}, description=text,
                        deps=[bronze_key(s) for s in (*SOURCES, "web_events", "email_events")])
           for name, text in OUTPUTS.items()],
    check_specs=[
        dg.AssetCheckSpec("mapped_exactly_once", asset=IDENTITY_MAP_KEY, blocking=True,
                          description="every bronze person record appears once in the identity map"),
        dg.AssetCheckSpec("no_oversized_customer", asset=IDENTITY_MAP_KEY, blocking=True,
                          description="no customer holds more records than the size limit"),
    ],
    name="identity_resolution",
)
def identity_resolution(context: dg.AssetExecutionContext, config: IdentityConfig, pipes: dg.PipesSubprocessClient,
                        cdp_settings: CdpSettingsResource):
    """Deterministic and Fellegi-Sunter links, clusters, persistent ids, households, evidence.
    Incremental when the last run left its state, unless ``full``."""
    args = ["--size-limit", str(config.size_limit), *(["--full"] if config.full else [])]
    yield from run_spark_job(context, pipes, cdp_settings, "spark_jobs.identity.resolve", args).get_results()


identity_full = dg.define_asset_job(
    "identity_full", selection=dg.AssetSelection.assets(identity_resolution),
    config={"ops": {"identity_resolution": {"config": {"full": True}}}},
    description="Re-link every record and re-estimate the Fellegi-Sunter weights (daily runs are incremental).")

identity_weekly_full = dg.ScheduleDefinition(name="identity_weekly_full", job=identity_full,
                                             cron_schedule="0 5 * * 0", execution_timezone="UTC")

defs = dg.Definitions(assets=[identity_resolution], jobs=[identity_full], schedules=[identity_weekly_full])
