"""Great Expectations suites on the gold tables as asset checks, run in one Spark process.

The check on dim_customers is blocking: when it fails, no export downstream of it runs.
"""

from collections.abc import Iterable

import dagster as dg

from dagster_project.defs.dbt.project import dbt_project
from dagster_project.resources import CdpSettingsResource, asset_key, run_spark_job
from spark_jobs.quality.gold import SUITE_CHECKS, pii_arguments

DIM_CUSTOMERS_KEY = asset_key(SUITE_CHECKS["dim_customers"].asset)


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            check.name,
            asset=asset_key(check.asset),
            blocking=check.blocking,
            description=f"spark_jobs/quality/gold.py: {check.description}.",
        )
        for check in SUITE_CHECKS.values()
    ],
    can_subset=True,
    name="gold_great_expectations",
)
def gold_great_expectations(
    context: dg.AssetCheckExecutionContext, pipes: dg.PipesSubprocessClient, cdp_settings: CdpSettingsResource
) -> Iterable[dg.AssetCheckResult]:
    tables = [key.asset_key.path[-1] for key in context.selected_asset_check_keys]
    # The PII tags come from the dbt manifest here: the job may run where no dbt project is.
    yield from run_spark_job(
        context,
        pipes,
        cdp_settings,
        "spark_jobs.quality.gold",
        ["--tables", *tables, *pii_arguments(tables, dbt_project.manifest_path)],
    ).get_results()


defs = dg.Definitions(asset_checks=[gold_great_expectations])
