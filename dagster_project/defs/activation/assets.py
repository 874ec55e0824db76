"""Audience exports. Each one depends on dim_customers directly so that the blocking Great
Expectations check on dim_customers gates it."""

import dagster as dg

from dagster_project.defs.quality.checks import DIM_CUSTOMERS_KEY
from dagster_project.resources import CdpSettingsResource, run_spark_job


@dg.asset(key=["activation", "s3_repeat_buyers"],
          deps=[dg.AssetKey(["gold", "sync_s3__repeat_buyers"]), DIM_CUSTOMERS_KEY],
          group_name="activation", kinds={"s3"},
          description="gold.sync_s3__repeat_buyers as CSV in the export bucket.")
def s3_repeat_buyers(context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient,
                     cdp_settings: CdpSettingsResource) -> dg.MaterializeResult:
    return run_spark_job(context, pipes, cdp_settings, "spark_jobs.activation.s3_export",
                         ["--audience", "repeat_buyers"]).get_materialize_result()


defs = dg.Definitions(assets=[s3_repeat_buyers])
