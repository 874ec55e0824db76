"""Predictive scores (churn risk, predicted value) trained with Spark MLlib (spark_jobs/ml/customer_scores.py)."""

import dagster as dg

from dagster_project.resources import CdpSettingsResource, asset_check_specs, asset_key, run_spark_job
from spark_jobs.ml.customer_scores import SPEC

(SCORES,) = SPEC.outputs


class CustomerScoresConfig(dg.Config):
    horizon_days: int = 90


@dg.asset(
    key=asset_key(SCORES.asset),
    group_name="silver",
    kinds={"spark", "delta"},
    # fct_orders defines a purchase; Dagster runs the dbt build in two steps around this asset.
    deps=[dg.AssetKey(["gold", "fct_orders"])],
    description=SCORES.description,
    check_specs=asset_check_specs(SPEC),
)
def customer_scores(
    context: dg.AssetExecutionContext,
    config: CustomerScoresConfig,
    pipes: dg.PipesSubprocessClient,
    cdp_settings: CdpSettingsResource,
):
    args = ["--horizon-days", str(config.horizon_days)]
    yield from run_spark_job(context, pipes, cdp_settings, SPEC.module, args).get_results()


defs = dg.Definitions(assets=[customer_scores])
