"""Great Expectations suites as blocking asset checks: a failure stops every export downstream."""

import dagster as dg

from dagster_project.resources import CdpSettingsResource, run_spark_job

DIM_CUSTOMERS_KEY = dg.AssetKey(["gold", "dim_customers"])


@dg.asset_check(asset=DIM_CUSTOMERS_KEY, name="great_expectations", blocking=True,
                description="spark_jobs/quality/dim_customers.py: id unique and not null, email format, "
                            "non-negative order count and spend.")
def dim_customers_great_expectations(context: dg.AssetCheckExecutionContext, pipes: dg.PipesSubprocessClient,
                                     cdp_settings: CdpSettingsResource) -> dg.AssetCheckResult:
    return run_spark_job(context, pipes, cdp_settings, "spark_jobs.quality.dim_customers").get_asset_check_result()


defs = dg.Definitions(asset_checks=[dim_customers_great_expectations])
