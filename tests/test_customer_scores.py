"""The churn and value models' features, labels and time-split evaluation (spark_jobs/ml)."""

import math
import random
from datetime import date, timedelta

import pytest
from pyspark.sql import functions as F

from spark_jobs.ml.customer_scores import (
    FEATURES,
    GRADIENT_BOOSTED_TREES,
    LOGISTIC_REGRESSION,
    NotEnoughHistory,
    features_at,
    labelled_at,
    purchases_in,
    score,
    select_churn_model,
)

SCHEMA = "customer_id string, purchased_on date, amount double, is_store double"


def test_features_see_only_the_past_and_labels_only_the_horizon(spark):
    purchases = spark.createDataFrame(
        [
            ("a", date(2024, 12, 20), 10.0, 0.0),  # 102 days before the cutoff: not "recent"
            ("a", date(2025, 3, 1), 30.0, 1.0),  # 31 days before the cutoff
            ("a", date(2025, 4, 10), 50.0, 0.0),  # after the cutoff, inside the horizon
            ("b", date(2025, 2, 1), 20.0, 0.0),
            ("b", date(2025, 7, 1), 99.0, 0.0),  # after the horizon: b churned
            ("c", date(2025, 4, 2), 5.0, 0.0),  # first purchase after the cutoff: not in the population
        ],
        SCHEMA,
    )
    rows = {r.customer_id: r for r in labelled_at(purchases, date(2025, 4, 1), horizon_days=30).collect()}
    assert set(rows) == {"a", "b"}
    a = rows["a"]
    assert (a.recency_days, a.frequency, a.monetary, a.average_order_value, a.tenure_days) == (31, 2, 40.0, 20.0, 102)
    assert (a.purchases_last_90_days, a.spend_last_90_days, a.store_share) == (1, 30.0, 0.5)
    assert (a.churned, a.future_value) == (0.0, 50.0)
    assert (rows["b"].churned, rows["b"].future_value, rows["b"].recency_days) == (1.0, 0.0, 59)
    assert features_at(purchases, date(2024, 12, 20)).count() == 0, "nothing before the first purchase"


def test_models_rank_loyal_customers_below_one_off_buyers(spark):
    """Loyal customers buy every 10-25 days for two years; one-off buyers bought once or twice at
    a random time. Over 90 days the first keep buying, the second do not."""
    rng, rows, as_of = random.Random(3), [], date(2025, 12, 31)
    for i in range(60):
        day = as_of - timedelta(days=730)
        while day <= as_of:
            rows.append((f"loyal{i}", day, rng.uniform(20, 80), 0.0))
            day += timedelta(days=rng.randint(10, 25))
    for i in range(60):
        for _ in range(rng.randint(1, 2)):
            rows.append((f"once{i}", as_of - timedelta(days=rng.randint(200, 730)), rng.uniform(20, 80), 1.0))
    scores, metrics = score(spark.createDataFrame(rows, SCHEMA), as_of, horizon_days=90)
    assert metrics["train_customers"] == metrics["test_customers"] == 120
    assert metrics["churn_auc"] >= 0.95
    result = {r.customer_id: r for r in scores.collect()}
    assert len(result) == 120 and all(0 <= r.churn_risk <= 1 and r.predicted_value >= 0 for r in result.values())
    loyal = [r for c, r in result.items() if c.startswith("loyal")]
    once = [r for c, r in result.items() if c.startswith("once")]
    assert max(r.churn_risk for r in loyal) < min(r.churn_risk for r in once)
    assert min(r.predicted_value for r in loyal) > max(r.predicted_value for r in once)


def test_too_little_history_is_a_clear_error(spark):
    purchases = spark.createDataFrame([("a", date(2025, 12, 1), 10.0, 0.0)], SCHEMA)
    with pytest.raises(NotEnoughHistory, match="not enough purchase history"):
        score(purchases, date(2025, 12, 31), horizon_days=90)
    # Enough history, too few customers: a churner and a loyal buyer.
    purchases = spark.createDataFrame(
        [("a", date(2025, 1, 1), 10.0, 0.0), ("b", date(2025, 1, 1), 10.0, 0.0), ("b", date(2025, 11, 1), 10.0, 0.0)],
        SCHEMA,
    )
    with pytest.raises(NotEnoughHistory, match="2 customers to train on, fewer than 100"):
        score(purchases, date(2025, 12, 31), horizon_days=90)


def test_a_purchase_is_a_completed_fct_orders_row_of_a_known_customer_with_an_amount(spark):
    """The models learn from fct_orders, where "a purchase" is defined: completed orders only,
    never an anonymous store purchase, never an order the gold layer could not convert."""
    orders = spark.createDataFrame(
        [
            ("o1", "c1", "web", "completed", date(2025, 1, 5), 85.0),
            ("o2", "c1", "store", "completed", date(2025, 1, 6), 40.0),
            ("o3", "c2", "app", "cancelled", date(2025, 1, 6), 99.0),
            ("o4", None, "store", "completed", date(2025, 1, 7), 12.0),  # no loyalty card
            ("o5", "c2", "web", "completed", date(2025, 1, 20), None),  # no exchange rate that day
            ("o6", "c2", "app", "pending", date(2025, 1, 21), 5.0),
        ],
        "order_id string, customer_id string, channel string, status string, order_date date, total_amount double",
    ).withColumn("total_amount", F.col("total_amount").cast("decimal(14,2)"))
    bought = sorted(tuple(r) for r in purchases_in(orders).collect())
    assert bought == [("c1", date(2025, 1, 5), 85.0, 0.0), ("c1", date(2025, 1, 6), 40.0, 1.0)]


def _run(**metrics):
    """A ScoreRun with the given metrics (the rest: a trained model's run)."""
    from datetime import date

    from spark_jobs.ml.customer_scores import ScoreRun

    defaults = {
        "run_id": "r", "as_of": date(2025, 12, 31), "horizon_days": 90, "train_customers": 400,
        "test_customers": 0, "test_churn_rate": 0.0, "churn_auc": 0.0, "recency_baseline_auc": 0.0,
        "value_mae": 1.0, "naive_value_mae": 1.0, "scored_customers": 400,
    }  # fmt: skip
    return ScoreRun(**{**defaults, **metrics})


def test_the_churn_check_gives_a_verdict_only_on_enough_customers_of_each_class():
    from spark_jobs.ml.customer_scores import auc_standard_error, churn_check

    # 1,000 customers evaluated, 400 churned: a verdict, either way, with the AUC's standard error.
    passed, metadata = churn_check(
        _run(test_customers=1000, test_churn_rate=0.4, churn_auc=0.71, recency_baseline_auc=0.66)
    )
    assert passed and metadata["outcome"] == "model beats recency"
    assert (metadata["evaluation_churned"], metadata["evaluation_retained"]) == (400, 600)
    failed, metadata = churn_check(
        _run(test_customers=1000, test_churn_rate=0.4, churn_auc=0.508, recency_baseline_auc=0.557)
    )
    assert not failed and metadata["outcome"] == "recency beats the model"
    # 300 evaluated with 30 % churned: 90 churned, below 100 of each class: no verdict.
    passed, metadata = churn_check(
        _run(test_customers=300, test_churn_rate=0.3, churn_auc=0.508, recency_baseline_auc=0.557)
    )
    assert passed and metadata["outcome"] == "not enough data"
    assert metadata["reason"].startswith("the evaluation window holds 90 churned and 210 retained customers")
    # No model at all: nothing to compare.
    passed, metadata = churn_check(_run(train_customers=0, skipped_reason="35 customers to train on, fewer than 100"))
    assert passed and metadata == {
        "outcome": "not enough data",
        "reason": "no model was trained: 35 customers to train on, fewer than 100",
    }
    # Hanley and McNeil's standard error, by hand for AUC 0.5 and 100 of each class:
    # q1 = q2 = 1/3, var = (0.25 + 2 x 99 x (1/3 - 1/4)) / 10,000 = 16.75 / 10,000; se = 0.040927.
    assert auc_standard_error(0.5, 100, 100) == pytest.approx(0.040927, abs=1e-6)


def _labelled(rows: list[tuple[float, float]]):
    """A labelled training window: (recency_days, churned) per customer; every other feature is
    noise from a seeded generator."""
    rng = random.Random(5)
    others = [f for f in FEATURES if f != "recency_days"]
    return [
        {
            "customer_id": f"c{i}",
            "recency_days": recency,
            "churned": churned,
            **{f: rng.uniform(0, 100) for f in others},
        }
        for i, (recency, churned) in enumerate(rows)
    ]


def test_the_churn_model_is_chosen_on_the_training_window_by_hold_out_auc(spark):
    # Churn rises smoothly with recency, with noise, on a few hundred customers: the trees fit the
    # noise of the other seven features, the regression's few weights do not.
    rng = random.Random(11)
    noisy = [
        (r, float(rng.random() < 1 / (1 + math.exp(-(r - 350) / 150))))
        for r in (rng.uniform(0, 700) for _ in range(300))
    ]
    kind, aucs = select_churn_model(spark.createDataFrame(_labelled(noisy)))
    assert kind == LOGISTIC_REGRESSION and aucs[LOGISTIC_REGRESSION] > aucs[GRADIENT_BOOSTED_TREES], aucs
    # Churned exactly when the last purchase was 100-300 days ago: a band no single weight can
    # draw, which trees split exactly.
    band = [(r, float(100 < r < 300)) for r in (rng.uniform(0, 700) for _ in range(600))]
    kind, aucs = select_churn_model(spark.createDataFrame(_labelled(band)))
    assert kind == GRADIENT_BOOSTED_TREES and aucs[GRADIENT_BOOSTED_TREES] > 0.95 > aucs[LOGISTIC_REGRESSION], aucs
