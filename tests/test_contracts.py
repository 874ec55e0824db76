"""Contract rules, one by one, on inline data: every reason a row can be quarantined for."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from spark_jobs.ingest.contracts import ContractError, load_contracts, parse_contract
from spark_jobs.ingest.parse import validate

CONTRACT = """
name: things
landing: test/things
format: jsonl
kind: event
primary_key: [thing_id]
event_time: seen_at
columns:
  - {name: thing_id, type: string, required: true}
  - {name: colour, type: string, allowed: [red, blue]}
  - {name: size, source_name: SIZE_CM, type: int}
  - {name: price, type: double}
  - {name: made_on, type: date, format: yyyyMMdd}
  - {name: seen_at, type: timestamp, required: true}
checks:
  - {name: cheap_if_small, expression: "size IS NULL OR size > 10 OR price < 5", reason: "small things cost under 5"}
"""


@pytest.fixture
def contract(tmp_path):
    path = tmp_path / "things.yml"
    path.write_text(CONTRACT)
    return parse_contract(path)


def _raw(spark, rows):
    """Rows of text as read from files: the reader's output shape."""
    columns = ["thing_id", "colour", "size", "price", "made_on", "seen_at"]
    data = [(*r, "raw", False, "file:/x.jsonl") for r in rows]
    return spark.createDataFrame(data, [*columns, "_raw", "_corrupt", "_source_file"])


def test_each_rule_gives_a_readable_reason(spark, contract):
    ts = "2026-01-01T10:00:00Z"
    raw = _raw(
        spark,
        [
            ("T1", "red", "20", "9.5", "20251231", ts),  # fine
            (None, "red", "20", "9.5", "20251231", ts),  # required missing
            ("  ", "red", "20", "9.5", "20251231", ts),  # required blank
            ("T4", "green", "20", "9.5", "20251231", ts),  # not allowed
            ("T5", "red", "big", "9.5", "20251231", ts),  # not an int
            ("T6", "red", "20", "9.5", "2025-12-31", ts),  # wrong date format
            ("T7", "red", "20", "9.5", "20251231", "yesterday"),  # bad timestamp
            ("T8", "red", "3", "9.5", "20251231", ts),  # row check
            ("T9", "pink", "x", "9.5", "20251231", None),  # several at once
        ],
    )
    out = validate(raw, contract, []).select("thing_id", "_reason")
    assertDataFrameEqual(
        out,
        [
            Row(thing_id="T1", _reason=None),
            Row(thing_id=None, _reason="required column thing_id is missing or empty"),
            Row(thing_id="  ", _reason="required column thing_id is missing or empty"),
            Row(thing_id="T4", _reason="column colour: 'green' is not one of ['red', 'blue']"),
            Row(thing_id="T5", _reason="column SIZE_CM: 'big' is not a valid int"),
            Row(thing_id="T6", _reason="column made_on: '2025-12-31' is not a valid date (yyyyMMdd)"),
            Row(thing_id="T7", _reason="column seen_at: 'yesterday' is not a valid timestamp"),
            Row(thing_id="T8", _reason="small things cost under 5"),
            Row(
                thing_id="T9",
                _reason="column colour: 'pink' is not one of ['red', 'blue']; "
                "column SIZE_CM: 'x' is not a valid int; "
                "required column seen_at is missing or empty",
            ),
        ],
    )


def test_accepted_rows_are_typed_and_get_their_event_date(spark, contract):
    from datetime import date, datetime

    raw = _raw(spark, [("T1", "blue", "12", "3.25", "20251231", "2026-01-02T23:30:00Z")])
    row = validate(raw, contract, []).first()
    assert (row.size, row.price, row.made_on, row.seen_at, row.event_date) == (
        12,
        3.25,
        date(2025, 12, 31),
        datetime(2026, 1, 2, 23, 30),
        date(2026, 1, 2),
    )


def test_corrupt_records_get_one_reason_not_a_cascade(spark, contract):
    raw = spark.createDataFrame(
        [(None, None, None, None, None, None, "{not json", True, "file:/x.jsonl")],
        "thing_id string, colour string, size string, price string, made_on string, seen_at string, "
        "_raw string, _corrupt boolean, _source_file string",
    )
    assert validate(raw, contract, []).first()._reason == "unparseable jsonl record"


def test_a_column_range_replaces_the_default_one(spark, tmp_path):
    path = tmp_path / "things.yml"
    path.write_text(
        CONTRACT.replace(
            "{name: made_on, type: date, format: yyyyMMdd}",
            "{name: made_on, type: date, format: yyyyMMdd, range: [2020-01-01, 2026-12-31]}",
        )
    )
    ts = "2026-01-01T10:00:00Z"
    raw = _raw(
        spark,
        [
            ("T1", "red", "20", "9.5", "20251231", ts),
            ("T2", "red", "20", "9.5", "19991231", ts),
            ("T3", "red", "20", "9.5", "20251231", "1899-12-31T23:59:59Z"),
        ],
    )
    assertDataFrameEqual(
        validate(raw, parse_contract(path), []).select("thing_id", "_reason"),
        [
            Row(thing_id="T1", _reason=None),
            Row(thing_id="T2", _reason="column made_on: '19991231' is outside 2020-01-01 to 2026-12-31"),
            Row(thing_id="T3", _reason="column seen_at: '1899-12-31T23:59:59Z' is outside 1900-01-01 to 2100-12-31"),
        ],
    )


def test_every_shipped_contract_loads():
    contracts = load_contracts()
    assert {
        "crm_contacts",
        "shop_orders",
        "shop_order_lines",
        "pos_transactions",
        "support_tickets",
        "web_events",
        "email_events",
        "survey_responses",
        "consent_events",
        "enrichment_demographics",
        "social_mentions",
        "postal_codes",
        "exchange_rates",
    } <= set(contracts)
    assert contracts["crm_contacts"].kind == "cdc"
    assert contracts["enrichment_demographics"].column("email_sha256").file_name == "EMAIL_SHA256"


@pytest.mark.parametrize(
    "edit, message",
    [
        (("kind: event", "kind: stream"), "kind must be one of"),
        (("type: int", "type: integer"), "unknown type 'integer'"),
        (("primary_key: [thing_id]", "primary_key: [nope]"), "primary key column 'nope' is not a declared column"),
        (("event_time: seen_at", "event_time: colour_x"), "kind event needs event_time"),
        (("thing_id, type: string, required: true", "thing_id, type: string"), "must be required"),
        (("kind: event", "kind: event\nencoding: ISO-8859-1"), "JSON lines are UTF-8"),
        (("kind: event", "kind: event\nencoding: klingon-8"), "unknown encoding 'klingon-8'"),
        (("kind: event", "kind: event\nmax_new_columns: -1"), "max_new_columns must be a whole number"),
        (
            ("type: string, allowed", "type: string, range: [2020-01-01, 2021-01-01], allowed"),
            "range applies to date and timestamp columns only",
        ),
        (("format: yyyyMMdd}", "format: yyyyMMdd, range: [2026-01-01, 2020-01-01]}"), "starts after it ends"),
        (("format: yyyyMMdd}", "format: yyyyMMdd, range: [someday, 2020-01-01]}"), "two YYYY-MM-DD dates"),
    ],
)
def test_an_invalid_contract_is_refused_with_a_clear_error(tmp_path: Path, edit, message):
    path = tmp_path / "things.yml"
    path.write_text(CONTRACT.replace(*edit))
    with pytest.raises(ContractError, match=message):
        parse_contract(path)
