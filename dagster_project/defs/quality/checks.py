"""Great Expectations suites on the gold tables as asset checks, run in one Spark process.

The check on dim_customers is blocking: when it fails, no export downstream of it runs.
"""

from collections.abc import Iterable

import dagster as dg

from dagster_project.defs.dbt.project import dbt_project
from dagster_project.resources import CdpSettingsResource, run_spark_job
from spark_jobs.quality.gold import CHECK_NAME, pii_arguments

DIM_CUSTOMERS_KEY = dg.AssetKey(["gold", "dim_customers"])
SUITES = {
    "dim_customers": ("key, email format, value ranges, one row per identity-map customer, no untagged PII", True),
    "fct_orders": ("key, non-negative amounts, channel and currency labels, no untagged PII", False),
    "fct_customer_touchpoints": ("key, attributed customer, channel labels, no untagged PII", False),
    "customer_traits": ("key, RFM scores 1-5, churn risk 0-1, sentiment -1..1, NPS and sentiment labels, "
                        "no untagged PII", False),
}


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(CHECK_NAME, asset=dg.AssetKey(["gold", table]), blocking=blocking,
                             description=f"spark_jobs/quality/gold.py: {text}.")
           for table, (text, blocking) in SUITES.items()],
    can_subset=True,
    name="gold_great_expectations",
)
def gold_great_expectations(context: dg.AssetCheckExecutionContext, pipes: dg.PipesSubprocessClient,
                            cdp_settings: CdpSettingsResource) -> Iterable[dg.AssetCheckResult]:
    tables = [key.asset_key.path[-1] for key in context.selected_asset_check_keys]
    # The PII tags come from the dbt manifest here: the job may run where no dbt project is.
    yield from run_spark_job(context, pipes, cdp_settings, "spark_jobs.quality.gold",
                             ["--tables", *tables, *pii_arguments(tables, dbt_project.manifest_path)]).get_results()


defs = dg.Definitions(asset_checks=[gold_great_expectations])
