import json
from decimal import Decimal

from spark_jobs.quality.gold import (
    ATTRIBUTED_CONSISTENTLY,
    IN_IDENTITY_MAP,
    UNTAGGED_PII,
    customer_traits_expectations,
    dim_customers_expectations,
    fct_customer_touchpoints_expectations,
    pii_arguments,
    pii_by_table,
    pii_columns,
    validate,
    with_attribution_flag,
    with_untagged_pii,
)

SCHEMA = f"customer_id string, email string, order_count bigint, total_spend decimal(14,2), {IN_IDENTITY_MAP} boolean"
PII = {"email"}


def check(df, identity_customers=None):
    return validate(with_untagged_pii(df, PII), dim_customers_expectations(df, identity_customers), "dim_customers")


def test_clean_customers_pass(spark):
    df = spark.createDataFrame(
        [
            ("cus_1", "ann@x.com", 2, Decimal("10.00"), True),
            ("cus_2", "o'brien.bob+news@mail.example.co.uk", 0, Decimal("0.00"), True),
            ("cus_3", None, 1, Decimal("5.00"), True),  # no email is allowed; a malformed one is not
        ],
        SCHEMA,
    )
    passed, summary = check(df, identity_customers=3)
    assert passed, summary
    assert summary["failed_expectations"] == []


def test_duplicate_ids_bad_emails_and_negative_spend_fail(spark):
    df = spark.createDataFrame(
        [
            ("cus_1", "ann@x.com", 2, Decimal("10.00"), True),
            ("cus_1", "not-an-email", 1, Decimal("-3.00"), True),
            (None, "bob@x.com", 1, Decimal("1.00"), True),
        ],
        SCHEMA,
    )
    passed, summary = check(df)
    assert not passed
    assert sorted(summary["failed_expectations"]) == sorted(
        [
            "expect_column_values_to_not_be_null(customer_id)",
            "expect_column_values_to_be_unique(customer_id)",
            "expect_column_values_to_match_regex(email)",
            "expect_column_values_to_be_between(total_spend)",
        ]
    )
    assert summary["expect_column_values_to_match_regex(email)"]["partial_unexpected_list"] == ["not-an-email"]


def test_customers_missing_from_or_unknown_to_the_identity_map_fail_reconciliation(spark):
    df = spark.createDataFrame(
        [
            ("cus_1", "ann@x.com", 2, Decimal("10.00"), True),
            ("cus_9", "zed@x.com", 0, Decimal("0.00"), False),  # not in the identity map
        ],
        SCHEMA,
    )
    passed, summary = check(df, identity_customers=3)  # and two of the map's three are missing
    assert not passed
    assert sorted(summary["failed_expectations"]) == [
        f"expect_column_values_to_be_in_set({IN_IDENTITY_MAP})",
        "expect_table_row_count_to_equal()",
    ]


def test_emails_and_phones_in_columns_not_tagged_pii_fail(spark):
    df = with_attribution_flag(
        spark.createDataFrame(
            [
                ("tp_1", "cus_1", "login", "web", "https://shop.example.com/product/123456789", "EV0000000001"),
                (
                    "tp_2",
                    "cus_1",
                    "email",
                    "email",
                    "https://shop.example.com/?ref=ann.lee@example.com",
                    "EV0000000002",
                ),
                ("tp_3", "cus_2", "identity_map", "support", "call me on +44 7700 900123", "TK00000003"),
            ],
            "touchpoint_id string, customer_id string, attributed_by string, channel string, touchpoint_detail string, "
            "source_record_id string",
        )
    )
    passed, summary = validate(with_untagged_pii(df, set()), fct_customer_touchpoints_expectations(df), "touchpoints")
    assert not passed
    assert summary["failed_expectations"] == [f"expect_column_values_to_be_null({UNTAGGED_PII})"]
    # Which column holds what, per row; the URL's digits are not a phone, ids are not phones.
    assert sorted(summary[f"expect_column_values_to_be_null({UNTAGGED_PII})"]["partial_unexpected_list"]) == [
        "touchpoint_detail: email",
        "touchpoint_detail: phone",
    ]
    # Tagged as PII, the same values pass.
    passed, _ = validate(
        with_untagged_pii(df, {"touchpoint_detail"}), fct_customer_touchpoints_expectations(df), "touchpoints"
    )
    assert passed


def test_a_touchpoint_has_a_customer_exactly_when_it_says_how_it_was_attributed(spark):
    df = with_attribution_flag(
        spark.createDataFrame(
            [
                ("tp_1", "cus_1", "login", "web"),
                ("tp_2", None, None, "web"),  # anonymous, not stitched: fine
                ("tp_3", None, "anonymous_id", "web"),  # says stitched, has nobody
                ("tp_4", "cus_2", None, "email"),  # has somebody, says nothing
                ("tp_5", "cus_2", "guess", "email"),  # unknown method
            ],
            "touchpoint_id string, customer_id string, attributed_by string, channel string",
        )
    )
    passed, summary = validate(with_untagged_pii(df, set()), fct_customer_touchpoints_expectations(df), "touchpoints")
    assert not passed
    assert sorted(summary["failed_expectations"]) == [
        f"expect_column_values_to_be_in_set({ATTRIBUTED_CONSISTENTLY})",
        "expect_column_values_to_be_in_set(attributed_by)",
    ]
    # The summary keeps values as text.
    assert summary[f"expect_column_values_to_be_in_set({ATTRIBUTED_CONSISTENTLY})"]["partial_unexpected_list"] == [
        "False",
        "False",
    ]


TRAITS_SCHEMA = (
    "customer_id string, recency_score int, frequency_score int, monetary_score int, "
    "purchase_count bigint, lifetime_value_to_date decimal(14,2), churn_risk double, "
    "average_social_sentiment double, latest_nps_category string, social_sentiment string"
)


def test_traits_out_of_range_or_mislabelled_fail(spark):
    good = ("cus_1", 5, 1, 3, 2, Decimal("10.00"), 0.2, -0.5, "promoter", "negative")
    nobody_yet = ("cus_2", None, None, None, 0, Decimal("0.00"), None, None, None, None)
    clean = spark.createDataFrame([good, nobody_yet], TRAITS_SCHEMA)
    passed, summary = validate(with_untagged_pii(clean, set()), customer_traits_expectations(clean), "traits")
    assert passed, summary

    bad = spark.createDataFrame(
        [
            good,
            ("cus_3", 6, 0, 3, -1, Decimal("1.00"), 1.5, 2.0, "fan", "happy"),
        ],
        TRAITS_SCHEMA,
    )
    passed, summary = validate(with_untagged_pii(bad, set()), customer_traits_expectations(bad), "traits")
    assert not passed
    assert sorted(summary["failed_expectations"]) == sorted(
        [
            "expect_column_values_to_be_between(recency_score)",
            "expect_column_values_to_be_between(frequency_score)",
            "expect_column_values_to_be_between(purchase_count)",
            "expect_column_values_to_be_between(churn_risk)",
            "expect_column_values_to_be_between(average_social_sentiment)",
            "expect_column_values_to_be_in_set(latest_nps_category)",
            "expect_column_values_to_be_in_set(social_sentiment)",
        ]
    )


def test_pii_columns_come_from_the_dbt_docs(tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "nodes": {
                    "model.cdp.dim_customers": {
                        "resource_type": "model",
                        "name": "dim_customers",
                        "columns": {
                            "email": {"meta": {"pii": True}},
                            "city": {"meta": {}},
                            "phone": {"config": {"meta": {"pii": True}}},
                        },
                    }
                }
            }
        )
    )
    assert pii_columns("dim_customers", manifest) == {"email", "phone"}
    # what Dagster hands the job, which then needs no manifest
    assert pii_arguments(["dim_customers"], manifest) == ["--pii", "dim_customers=email,phone"]
    assert pii_by_table(["dim_customers=email,phone", "fct_orders="]) == {
        "dim_customers": {"email", "phone"},
        "fct_orders": set(),
    }
