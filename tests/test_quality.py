import json
from decimal import Decimal

from spark_jobs.quality.gold import (IN_IDENTITY_MAP, dim_customers_expectations, fct_customer_touchpoints_expectations,
                                     pii_columns, validate)

SCHEMA = f"customer_id string, email string, order_count bigint, total_spend decimal(14,2), {IN_IDENTITY_MAP} boolean"
PII = {"email"}


def check(df, identity_customers=None):
    return validate(df, dim_customers_expectations(df, PII, identity_customers), "dim_customers")


def test_clean_customers_pass(spark):
    df = spark.createDataFrame([
        ("cus_1", "ann@x.com", 2, Decimal("10.00"), True),
        ("cus_2", "o'brien.bob+news@mail.example.co.uk", 0, Decimal("0.00"), True),
        ("cus_3", None, 1, Decimal("5.00"), True),  # no email is allowed; a malformed one is not
    ], SCHEMA)
    passed, summary = check(df, identity_customers=3)
    assert passed, summary
    assert summary["failed_expectations"] == []


def test_duplicate_ids_bad_emails_and_negative_spend_fail(spark):
    df = spark.createDataFrame([
        ("cus_1", "ann@x.com", 2, Decimal("10.00"), True),
        ("cus_1", "not-an-email", 1, Decimal("-3.00"), True),
        (None, "bob@x.com", 1, Decimal("1.00"), True),
    ], SCHEMA)
    passed, summary = check(df)
    assert not passed
    assert sorted(summary["failed_expectations"]) == sorted([
        "expect_column_values_to_not_be_null(customer_id)",
        "expect_column_values_to_be_unique(customer_id)",
        "expect_column_values_to_match_regex(email)",
        "expect_column_values_to_be_between(total_spend)",
    ])
    assert summary["expect_column_values_to_match_regex(email)"]["partial_unexpected_list"] == ["not-an-email"]


def test_customers_missing_from_or_unknown_to_the_identity_map_fail_reconciliation(spark):
    df = spark.createDataFrame([
        ("cus_1", "ann@x.com", 2, Decimal("10.00"), True),
        ("cus_9", "zed@x.com", 0, Decimal("0.00"), False),   # not in the identity map
    ], SCHEMA)
    passed, summary = check(df, identity_customers=3)        # and two of the map's three are missing
    assert not passed
    assert sorted(summary["failed_expectations"]) == [
        f"expect_column_values_to_be_in_set({IN_IDENTITY_MAP})", "expect_table_row_count_to_equal()"]


def test_emails_and_phones_in_columns_not_tagged_pii_fail(spark):
    df = spark.createDataFrame([
        ("tp_1", "cus_1", "web", "https://shop.example.com/product/123456789", "EV0000000001"),
        ("tp_2", "cus_1", "email", "https://shop.example.com/?ref=ann.lee@example.com", "EV0000000002"),
        ("tp_3", "cus_2", "support", "call me on +44 7700 900123", "TK00000003"),
    ], "touchpoint_id string, customer_id string, channel string, touchpoint_detail string, source_record_id string")
    passed, summary = validate(df, fct_customer_touchpoints_expectations(df, set()), "touchpoints")
    assert not passed
    assert summary["failed_expectations"] == ["expect_column_values_to_not_match_regex(touchpoint_detail)"] * 2
    # The summary keeps the last of the two (the phone pattern): the URL's digits are not a phone.
    assert summary["expect_column_values_to_not_match_regex(touchpoint_detail)"]["partial_unexpected_list"] == [
        "call me on +44 7700 900123"]
    # Tagged as PII, the same values pass.
    passed, _ = validate(df, fct_customer_touchpoints_expectations(df, {"touchpoint_detail"}), "touchpoints")
    assert passed


def test_pii_columns_come_from_the_dbt_docs(tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"nodes": {"model.cdp.dim_customers": {
        "resource_type": "model", "name": "dim_customers",
        "columns": {"email": {"meta": {"pii": True}}, "city": {"meta": {}},
                    "phone": {"config": {"meta": {"pii": True}}}}}}}))
    assert pii_columns("dim_customers", manifest) == {"email", "phone"}
