from decimal import Decimal

from spark_jobs.quality.dim_customers import validate

SCHEMA = "customer_id string, email string, order_count bigint, total_spend decimal(14,2)"


def test_clean_customers_pass(spark):
    df = spark.createDataFrame([
        ("cus_1", "ann@x.com", 2, Decimal("10.00")),
        ("cus_2", "o'brien.bob+news@mail.example.co.uk", 0, Decimal("0.00")),
        ("cus_3", None, 1, Decimal("5.00")),  # no email is allowed; a malformed one is not
    ], SCHEMA)
    passed, summary = validate(df)
    assert passed, summary
    assert summary["failed_expectations"] == []


def test_duplicate_ids_bad_emails_and_negative_spend_fail(spark):
    df = spark.createDataFrame([
        ("cus_1", "ann@x.com", 2, Decimal("10.00")),
        ("cus_1", "not-an-email", 1, Decimal("-3.00")),
        (None, "bob@x.com", 1, Decimal("1.00")),
    ], SCHEMA)
    passed, summary = validate(df)
    assert not passed
    assert sorted(summary["failed_expectations"]) == sorted([
        "expect_column_values_to_not_be_null(customer_id)",
        "expect_column_values_to_be_unique(customer_id)",
        "expect_column_values_to_match_regex(email)",
        "expect_column_values_to_be_between(total_spend)",
    ])
    assert summary["expect_column_values_to_match_regex(email)"]["partial_unexpected_list"] == ["not-an-email"]
