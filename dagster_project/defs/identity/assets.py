"""Silver identity tables."""

import dagster as dg

from dagster_project.defs.ingest.assets import bronze_key
from dagster_project.resources import CdpSettingsResource, run_spark_job


@dg.asset(key=["silver", "identity_map"], deps=[bronze_key("crm_contacts"), bronze_key("shop_orders")], group_name="silver",
          kinds={"spark", "delta"}, description="CRM contacts and orders mapped to a customer id (#4 adds every person-bearing source).")
def identity_map(context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient,
                 cdp_settings: CdpSettingsResource) -> dg.MaterializeResult:
    return run_spark_job(context, pipes, cdp_settings, "spark_jobs.identity.resolve").get_materialize_result()


defs = dg.Definitions(assets=[identity_map])
