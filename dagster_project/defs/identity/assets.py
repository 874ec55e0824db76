"""Silver identity tables."""

import dagster as dg

from dagster_project.defs.ingest.assets import BRONZE_SPECS
from dagster_project.resources import CdpSettingsResource, run_spark_job


@dg.asset(key=["silver", "identity_map"], deps=[spec.key for spec in BRONZE_SPECS], group_name="silver",
          kinds={"spark", "delta"}, description="Every person-bearing source record mapped to a customer id.")
def identity_map(context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient,
                 cdp_settings: CdpSettingsResource) -> dg.MaterializeResult:
    return run_spark_job(context, pipes, cdp_settings, "spark_jobs.identity.resolve").get_materialize_result()


defs = dg.Definitions(assets=[identity_map])
