"""Predictive customer scores with Spark MLlib: churn risk and predicted value over the next
``horizon`` days (default 90), for every customer with a completed purchase.

Method (documented in README "Predictive scores"):

- Purchases: the completed orders of known customers in ``gold.fct_orders`` (online orders at
  their newest status and store purchases, attributed to today's customer ids): the dbt model
  is the one definition of a purchase, so this job runs between two parts of the dbt build.
- Features of a customer at a cutoff date ``c``, from purchases before ``c`` only: recency
  (days since the last), frequency, monetary (total), average order value, tenure (days since
  the first), purchases and spend in the 90 days before ``c``, share of store purchases.
- Labels from the ``horizon`` days from ``c``: churned = no purchase; future value = their spend.
- The value model is a gradient-boosted tree regressor (``GBTRegressor``). The churn model is
  chosen per run on the training window alone: a logistic regression on standardised features
  and a gradient-boosted tree classifier are fitted on 70 % of its customers and the better ROC
  AUC on the other 30 % wins. Trees overfit a window of a few hundred customers (on the
  1,000-customer sample the trees ranked the evaluation window below chance); the regression's
  few weights do not, and on large windows the trees win the selection.
- Evaluation on a time split, never on the rows a model learnt from: train with cutoff
  ``as_of - 2 x horizon``, evaluate with cutoff ``as_of - horizon`` (labels up to ``as_of``, the
  newest purchase day). Reported: ROC AUC of the churn model against the AUC of recency alone (the
  rule of thumb it must beat), and the mean absolute error of the value model against the naive
  forecast "the customer's past spend per day x horizon".
- Scores: both models are fitted again with cutoff ``as_of - horizon`` (the newest labelled
  window) and applied to the features at ``as_of``.

Amounts are fct_orders' ``total_amount``, in the reporting currency (``CDP_REPORTING_CURRENCY``);
an order with no exchange rate on its day has none and is left out (counted in the log).

Writes ``silver.customer_scores`` (overwritten) and appends the run's metrics to
``silver.customer_score_runs``.

    python -m spark_jobs.ml.customer_scores [--horizon-days 90]
"""

from __future__ import annotations

import argparse
import logging
import math
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.jobspec import Check, JobSpec, Output
from spark_jobs.reporting import spark_job

log = logging.getLogger(__name__)

CHURN_MODEL_BEATS_RECENCY = Check(
    "churn_model_beats_recency",
    "silver/customer_scores",
    "the churn model's AUC on the later cutoff beats recency alone (else prefer the rule); a warning, and a pass "
    "marked 'not enough data' when the evaluation window is too small to tell two AUCs apart",
)
# Below this many churned and this many retained customers in the evaluation window, the AUCs'
# standard error (Hanley and McNeil) is 0.04 or more: the same size as the differences the check
# decides on, so it reports "not enough data" instead of a verdict.
MIN_EVALUATION_PER_CLASS = 100
SPEC = JobSpec(
    module="spark_jobs.ml.customer_scores",
    outputs=(
        Output(
            "silver.customer_scores",
            "Churn risk and predicted value over the next horizon per customer with a purchase: gradient-"
            "boosted trees evaluated on a time split (AUC, MAE vs baselines in the metadata).",
        ),
    ),
    checks=(CHURN_MODEL_BEATS_RECENCY,),
)

SCORES_TABLE = "silver.customer_scores"
RUNS_TABLE = "silver.customer_score_runs"
FEATURES = [
    "recency_days",
    "frequency",
    "monetary",
    "average_order_value",
    "tenure_days",
    "purchases_last_90_days",
    "spend_last_90_days",
    "store_share",
]
SEED = 7


# Below this many customers with a purchase before the training cutoff, a model would fit noise
# (and training costs a minute for nothing): the run writes no scores and says why.
MIN_TRAIN_CUSTOMERS = 100


class NotEnoughHistory(ValueError):
    """Too little purchase history before the cutoffs to train and evaluate the models."""


RUNS_SCHEMA = (
    "run_id string, as_of date, horizon_days int, train_customers bigint, test_customers bigint, "
    "test_churn_rate double, churn_auc double, recency_baseline_auc double, value_mae double, "
    "naive_value_mae double, scored_customers bigint, skipped_reason string, finished_at timestamp, churn_model string"
)
SCORES_SCHEMA = (
    "customer_id string, churn_risk double, predicted_value decimal(14,2), horizon_days int, "
    "scored_as_of date, run_id string"
)


@dataclass(frozen=True)
class ScoreRun:
    run_id: str
    as_of: date
    horizon_days: int
    train_customers: int
    test_customers: int
    test_churn_rate: float
    churn_auc: float
    recency_baseline_auc: float
    value_mae: float
    naive_value_mae: float
    scored_customers: int
    skipped_reason: str | None = None
    churn_model: str | None = None  # the kind select_churn_model chose


ORDERS_TABLE = "gold.fct_orders"


def purchases_in(orders: DataFrame) -> DataFrame:
    """customer_id, purchased_on, amount, is_store: the completed purchases of known customers in
    ``orders`` (fct_orders' columns). fct_orders is where "a purchase" is defined (online orders at
    their newest status, store purchases, attributed to today's customer ids, amounts in the
    reporting currency); an order without an exchange rate on its day has no amount and is left
    out here."""
    return orders.where(
        (F.col("status") == "completed") & F.col("customer_id").isNotNull() & F.col("total_amount").isNotNull()
    ).select(
        "customer_id",
        F.col("order_date").alias("purchased_on"),
        F.col("total_amount").cast("double").alias("amount"),
        F.when(F.col("channel") == "store", 1.0).otherwise(0.0).alias("is_store"),
    )


def purchases(spark: SparkSession) -> DataFrame:
    orders = spark.table(ORDERS_TABLE)
    unconverted = orders.where(
        (F.col("status") == "completed") & F.col("customer_id").isNotNull() & F.col("total_amount").isNull()
    ).count()
    if unconverted:
        log.warning("customer scores: %d purchase(s) left out: no exchange rate on their date", unconverted)
    return purchases_in(orders)


def features_at(purchases_df: DataFrame, cutoff: date) -> DataFrame:
    """One row per customer with a purchase before ``cutoff``: the FEATURES, from that past only."""
    past = purchases_df.where(F.col("purchased_on") < F.lit(cutoff))
    recent = F.col("purchased_on") >= F.lit(cutoff - timedelta(days=90))
    return past.groupBy("customer_id").agg(
        F.datediff(F.lit(cutoff), F.max("purchased_on")).cast("double").alias("recency_days"),
        F.count("*").cast("double").alias("frequency"),
        F.sum("amount").alias("monetary"),
        F.avg("amount").alias("average_order_value"),
        F.datediff(F.lit(cutoff), F.min("purchased_on")).cast("double").alias("tenure_days"),
        F.sum(F.when(recent, 1.0).otherwise(0.0)).alias("purchases_last_90_days"),
        F.sum(F.when(recent, F.col("amount")).otherwise(0.0)).alias("spend_last_90_days"),
        F.avg("is_store").alias("store_share"),
    )


def labelled_at(purchases_df: DataFrame, cutoff: date, horizon_days: int) -> DataFrame:
    """features_at(cutoff) with churned (no purchase in the horizon) and future_value."""
    window = purchases_df.where(
        (F.col("purchased_on") >= F.lit(cutoff))
        & (F.col("purchased_on") < F.lit(cutoff + timedelta(days=horizon_days)))
    )
    future = window.groupBy("customer_id").agg(F.sum("amount").alias("future_value"))
    return (
        features_at(purchases_df, cutoff)
        .join(future, "customer_id", "left")
        .withColumn("future_value", F.coalesce("future_value", F.lit(0.0)))
        .withColumn("churned", F.when(F.col("future_value") > 0, 0.0).otherwise(1.0))
    )


LOGISTIC_REGRESSION, GRADIENT_BOOSTED_TREES = "logistic_regression", "gradient_boosted_trees"
SELECTION_HOLD_OUT = 0.3  # share of the training window's customers the churn model is chosen on


def churn_pipeline(kind: str):
    """An unfitted churn classifier of ``kind``: both read FEATURES and write ``probability``."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import GBTClassifier, LogisticRegression
    from pyspark.ml.feature import StandardScaler, VectorAssembler

    if kind == LOGISTIC_REGRESSION:
        return Pipeline(
            stages=[
                VectorAssembler(inputCols=FEATURES, outputCol="raw_features"),
                StandardScaler(inputCol="raw_features", outputCol="features", withMean=True),
                LogisticRegression(labelCol="churned", regParam=0.01),
            ]
        )
    if kind == GRADIENT_BOOSTED_TREES:
        return Pipeline(
            stages=[
                VectorAssembler(inputCols=FEATURES, outputCol="features"),
                GBTClassifier(labelCol="churned", maxIter=20, maxDepth=4, seed=SEED),
            ]
        )
    raise ValueError(f"unknown churn model {kind!r}")


def value_pipeline():
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import GBTRegressor

    return Pipeline(
        stages=[
            VectorAssembler(inputCols=FEATURES, outputCol="features"),
            GBTRegressor(labelCol="future_value", predictionCol="predicted_value", maxIter=20, maxDepth=4, seed=SEED),
        ]
    )


def _auc(label: str = "churned", score: str = "rawPrediction"):
    from pyspark.ml.evaluation import BinaryClassificationEvaluator

    return BinaryClassificationEvaluator(labelCol=label, rawPredictionCol=score, metricName="areaUnderROC")


def select_churn_model(train: DataFrame) -> tuple[str, dict[str, float]]:
    """(the churn model kind to use, each candidate's hold-out AUC): every candidate is fitted on
    70 % of the training window's customers and ranked on the other 30 %, so the choice never
    sees the evaluation window. A hold-out with one class only cannot rank: the regression,
    the candidate that needs the least data, is kept."""
    fit_part, hold_out = train.randomSplit([1 - SELECTION_HOLD_OUT, SELECTION_HOLD_OUT], seed=SEED)
    if hold_out.select("churned").distinct().count() < 2:
        return LOGISTIC_REGRESSION, {}
    aucs = {
        kind: float(_auc().evaluate(churn_pipeline(kind).fit(fit_part).transform(hold_out)))
        for kind in (LOGISTIC_REGRESSION, GRADIENT_BOOSTED_TREES)
    }
    return max(aucs, key=lambda kind: (aucs[kind], kind == LOGISTIC_REGRESSION)), aucs


def _churn_probability(predictions: DataFrame) -> DataFrame:
    from pyspark.ml.functions import vector_to_array

    return predictions.withColumn("churn_risk", vector_to_array("probability")[1])


def evaluate(train: DataFrame, test: DataFrame, horizon_days: int, churn_model: str) -> dict[str, float]:
    """Fit on ``train``, measure on ``test`` (a later cutoff): AUC and MAE with their baselines."""
    churn_auc = _auc().evaluate(churn_pipeline(churn_model).fit(train).transform(test))
    # Recency alone as the score: the longer since the last purchase, the likelier the churn.
    baseline_auc = _auc(score="recency_days").evaluate(test)
    predicted = (
        value_pipeline()
        .fit(train)
        .transform(test)
        .withColumn("naive_value", F.col("monetary") / F.greatest(F.col("tenure_days"), F.lit(1.0)) * horizon_days)
    )
    errors = predicted.agg(
        F.avg(F.abs(F.greatest("predicted_value", F.lit(0.0)) - F.col("future_value"))),
        F.avg(F.abs(F.col("naive_value") - F.col("future_value"))),
    ).first()
    return {
        "churn_auc": float(churn_auc),
        "recency_baseline_auc": float(baseline_auc),
        "value_mae": float(errors[0]),
        "naive_value_mae": float(errors[1]),
    }


def score(
    purchases_df: DataFrame, as_of: date, horizon_days: int, min_train_customers: int = MIN_TRAIN_CUSTOMERS
) -> tuple[DataFrame, dict[str, float]]:
    """Evaluate on the time split, then fit on the newest labelled window and score at ``as_of``."""
    horizon = timedelta(days=horizon_days)
    train = labelled_at(purchases_df, as_of - 2 * horizon, horizon_days).cache()
    test = labelled_at(purchases_df, as_of - horizon, horizon_days).cache()
    counts = {"train_customers": train.count(), "test_customers": test.count()}
    if counts["train_customers"] == 0 or test.select("churned").distinct().count() < 2:
        raise NotEnoughHistory(
            f"not enough purchase history before {as_of - horizon} to train and evaluate "
            f"a {horizon_days}-day churn model: {counts}"
        )
    if counts["train_customers"] < min_train_customers:
        raise NotEnoughHistory(
            f"{counts['train_customers']} customers to train on, fewer than "
            f"{min_train_customers}: a model of so few would score noise"
        )
    churn_model, selection_aucs = select_churn_model(train)
    log.info("customer scores: churn model %s (hold-out AUC of each: %s)", churn_model, selection_aucs)
    metrics = {
        **counts,
        "test_churn_rate": float(test.agg(F.avg("churned")).first()[0]),
        "churn_model": churn_model,
        **evaluate(train, test, horizon_days, churn_model),
    }
    current = features_at(purchases_df, as_of + timedelta(days=1))  # every purchase up to as_of
    with_churn = _churn_probability(churn_pipeline(churn_model).fit(test).transform(current)).select(
        "customer_id", "churn_risk", *FEATURES
    )
    scored = value_pipeline().fit(test).transform(with_churn)
    scores = scored.select(
        "customer_id",
        F.round("churn_risk", 4).alias("churn_risk"),
        F.round(F.greatest("predicted_value", F.lit(0.0)), 2).cast("decimal(14,2)").alias("predicted_value"),
        F.lit(horizon_days).alias("horizon_days"),
        F.lit(as_of).alias("scored_as_of"),
    )
    return scores, metrics


def run(spark: SparkSession, horizon_days: int, as_of: date | None = None) -> ScoreRun:
    """Score and write. Without enough history (a new deployment, a small sample) the scores
    table is written empty and the run says why, so the pipeline downstream still runs."""
    bought = purchases(spark).cache()
    newest = bought.agg(F.max("purchased_on")).first()[0]
    as_of = as_of or newest or date.today()
    run_id = uuid.uuid4().hex
    log.info("customer scores: as of %s, horizon %d days", as_of, horizon_days)
    try:
        if newest is None:
            raise NotEnoughHistory("no completed purchase of a known customer")
        scores, metrics = score(bought, as_of, horizon_days)
        skipped = None
    except NotEnoughHistory as reason:
        log.warning("customer scores: not scoring: %s", reason)
        scores, skipped = spark.createDataFrame([], SCORES_SCHEMA).drop("run_id"), str(reason)
        nan = float("nan")
        metrics = {
            "train_customers": 0,
            "test_customers": 0,
            "test_churn_rate": nan,
            "churn_auc": nan,
            "recency_baseline_auc": nan,
            "value_mae": nan,
            "naive_value_mae": nan,
        }
    scores = scores.withColumn("run_id", F.lit(run_id)).localCheckpoint(eager=True)
    scores.write.format("delta").mode("overwrite").option("overwriteSchema", "true").saveAsTable(SCORES_TABLE)
    result = ScoreRun(
        run_id=run_id,
        as_of=as_of,
        horizon_days=horizon_days,
        scored_customers=scores.count(),
        skipped_reason=skipped,
        **metrics,
    )
    log.info("customer scores: %s", result)
    row = {**asdict(result), "finished_at": datetime.now(UTC).replace(tzinfo=None)}
    columns = [c.split()[0] for c in RUNS_SCHEMA.split(", ")]
    # mergeSchema: a runs table written before a column was added gains it.
    spark.createDataFrame([tuple(row[c] for c in columns)], RUNS_SCHEMA).write.format("delta").mode("append").option(
        "mergeSchema", "true"
    ).saveAsTable(RUNS_TABLE)
    return result


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley and McNeil (1982): the standard error of a ROC AUC from its class sizes."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    return math.sqrt(max(variance, 0.0) / (positives * negatives))


def churn_check(result: ScoreRun) -> tuple[bool, dict[str, object]]:
    """(passed, metadata) of churn_model_beats_recency: a verdict only when the models were
    evaluated on enough customers of each class; else a pass that says why there is none."""
    if result.skipped_reason is not None:
        return True, {"outcome": "not enough data", "reason": f"no model was trained: {result.skipped_reason}"}
    churned = round(result.test_customers * result.test_churn_rate)
    retained = result.test_customers - churned
    metadata: dict[str, object] = {
        "churn_auc": round(result.churn_auc, 4),
        "recency_baseline_auc": round(result.recency_baseline_auc, 4),
        "evaluation_churned": churned,
        "evaluation_retained": retained,
    }
    if min(churned, retained) < MIN_EVALUATION_PER_CLASS:
        reason = (
            f"the evaluation window holds {churned} churned and {retained} retained customers; at least "
            f"{MIN_EVALUATION_PER_CLASS} of each are needed to tell two AUCs apart"
        )
        return True, {"outcome": "not enough data", "reason": reason, **metadata}
    metadata["auc_standard_error"] = round(auc_standard_error(result.churn_auc, churned, retained), 4)
    beats = result.churn_auc > result.recency_baseline_auc
    return beats, {"outcome": "model beats recency" if beats else "recency beats the model", **metadata}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train and apply the churn and value models (Spark MLlib).")
    parser.add_argument("--horizon-days", type=int, default=90, help="prediction window (default %(default)s)")
    args = parser.parse_args(argv)
    with spark_job("cdp-customer-scores") as (spark, _settings, reporter):
        result = run(spark, args.horizon_days)
        metadata = {
            k: (round(v, 4) if isinstance(v, float) else str(v) if isinstance(v, date) else v)
            for k, v in asdict(result).items()
            if v is not None and v == v
        }  # v == v: not NaN
        reporter.materialized(SPEC.outputs[0].asset, metadata)
        passed, check_metadata = churn_check(result)
        # A warning: a model no better than the rule is worth knowing, not worth stopping the run.
        reporter.checked(
            CHURN_MODEL_BEATS_RECENCY.asset, CHURN_MODEL_BEATS_RECENCY.name, passed, check_metadata, severity="WARN"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
