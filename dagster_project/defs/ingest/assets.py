"""Bronze Delta tables, one asset per source entity of spark_jobs/ingest/sources.py."""

import dagster as dg

from dagster_project.defs.landing.assets import SAMPLE_SOURCES_KEY
from dagster_project.resources import CdpSettingsResource, run_spark_job
from spark_jobs.ingest.sources import SOURCES

BRONZE_SPECS = [
    dg.AssetSpec(
        key=["bronze", name], deps=[SAMPLE_SOURCES_KEY], group_name="bronze", kinds={"spark", "delta"},
        description=f"{entity.file_format.upper()} files under landing/{entity.landing_subdir}, "
                    f"MERGEd on {', '.join(entity.primary_key)}.",
    )
    for name, entity in SOURCES.items()
]


@dg.multi_asset(specs=BRONZE_SPECS, can_subset=True, name="bronze_ingest")
def bronze_ingest(context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient,
                  cdp_settings: CdpSettingsResource):
    """All selected entities in one Spark process (one JVM start, one metastore lock)."""
    entities = sorted(key.path[-1] for key in context.selected_asset_keys)
    yield from run_spark_job(
        context, pipes, cdp_settings, "spark_jobs.ingest.bronze",
        ["--entities", *entities, "--batch-id", context.run_id],
    ).get_results()


defs = dg.Definitions(assets=[bronze_ingest])
