"""What real deliveries contain, inline: other encodings, RFC 4180 CSV, repeated JSON keys,
re-delivered events, runaway rows and columns, a landing zone that moves."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from datetime import date

from conftest import write_lines

from spark_jobs.ingest.bronze import PROCESSED_FILES_TABLE, QUARANTINE_TABLE, ingest_contract, ingest_sources
from spark_jobs.ingest.contracts import get_contract
from spark_jobs.ingest.parse import NOT_UTF8_CSV, NOT_UTF8_JSON, REPEATED_KEYS

POSTAL_HEADER = "country,postcode,city,region,latitude,longitude"


def web_event(event_id, ts="2026-01-02T10:00:00Z", **extra):
    return json.dumps(
        {
            "event_id": event_id,
            "anonymous_id": "a1",
            "event_type": "page_view",
            "platform": "web",
            "event_ts": ts,
            **extra,
        },
        ensure_ascii=False,
    )


def quarantine(spark) -> dict[str, str]:
    return {r.raw_record: r.reason for r in spark.table(QUARANTINE_TABLE).collect()}


def test_text_that_is_not_utf8_is_quarantined_unless_the_contract_declares_its_encoding(fresh_database, tmp_path):
    spark, landing = fresh_database, tmp_path / "landing"
    latin1 = (POSTAL_HEADER + "\nFR,75001,Paris,Île-de-France,48.86,2.34\nFR,13001,Marseille,PACA,43.3,5.37\n").encode(
        "latin-1"
    )
    for folder in ("reference/postal_codes", "reference/latin1"):
        (landing / folder / "2026-01-02").mkdir(parents=True)
        (landing / folder / "2026-01-02" / "codes.csv").write_bytes(latin1)
    # a JSON line with a Latin-1 byte in it
    events = landing / "web" / "events" / "2026-01-02"
    events.mkdir(parents=True)
    (events / "e.jsonl").write_bytes((web_event("E1") + "\n" + web_event("E2", page_url="/café")).encode("latin-1"))

    undeclared = ingest_contract(spark, get_contract("postal_codes"), landing.as_uri(), "b1")
    assert (undeclared.received, undeclared.accepted, undeclared.quarantined) == (2, 1, 1)
    reasons = [r for raw, r in quarantine(spark).items() if "75001" in raw]
    assert reasons == [NOT_UTF8_CSV]
    assert [r.city for r in spark.table("bronze.postal_codes").collect()] == ["Marseille"]

    declared = replace(
        get_contract("postal_codes"), name="postal_codes_latin1", landing="reference/latin1", encoding="ISO-8859-1"
    )
    stats = ingest_contract(spark, declared, landing.as_uri(), "b1")
    assert (stats.received, stats.accepted) == (2, 2)
    assert {r.region for r in spark.table("bronze.postal_codes_latin1").collect()} == {"Île-de-France", "PACA"}

    ingest_contract(spark, get_contract("web_events"), landing.as_uri(), "b1")
    assert [r.event_id for r in spark.table("bronze.web_events").collect()] == ["E1"]
    assert [r for raw, r in quarantine(spark).items() if "E2" in raw] == [NOT_UTF8_JSON]
    assert not [raw for raw in quarantine(spark) if "\ufffd" not in raw and "E2" in raw]


def test_csv_is_read_per_rfc_4180(fresh_database, tmp_path):
    """Quoted commas, doubled quotes and quoted newlines; a backslash is an ordinary character."""
    spark, landing = fresh_database, tmp_path / "landing"
    write_lines(
        landing / "reference" / "postal_codes" / "2026-01-02" / "codes.csv",
        [
            POSTAL_HEADER,
            'GB,N1 1AA,London,"Greater London, ""Inner""",51.5,-0.1',
            'GB,M1 1AA,Manchester,"North\nWest",53.5,-2.2',
            "GB,B1 1AA,Birmingham,West \\Midlands,52.5,-1.9",
            'GB,"L1 1AA,Liverpool,unclosed quote,53.4,-3.0',
        ],
    )
    stats = ingest_contract(spark, get_contract("postal_codes"), landing.as_uri(), "b1")
    assert (stats.received, stats.accepted, stats.quarantined) == (4, 3, 1)
    regions = {r.city: r.region for r in spark.table("bronze.postal_codes").collect()}
    assert regions == {
        "London": 'Greater London, "Inner"',
        "Manchester": "North\nWest",
        "Birmingham": "West \\Midlands",
    }
    assert list(quarantine(spark).values()) == ["unparseable csv record"]


def test_a_repeated_json_key_is_quarantined_not_resolved_silently(fresh_database, tmp_path):
    spark, landing = fresh_database, tmp_path / "landing"
    twice = web_event("E2")[:-1] + ', "platform": "ios", "event_ts": "2026-01-03T00:00:00Z"}'
    write_lines(landing / "web" / "events" / "2026-01-02" / "e.jsonl", [web_event("E1"), twice])
    stats = ingest_contract(spark, get_contract("web_events"), landing.as_uri(), "b1")
    assert (stats.received, stats.accepted, stats.quarantined) == (2, 1, 1)
    assert quarantine(spark) == {twice: REPEATED_KEYS}
    assert REPEATED_KEYS == "repeated key(s) in the JSON record: which value holds is unknown"


def test_an_event_redelivered_on_another_day_replaces_the_stored_one(fresh_database, tmp_path):
    spark, landing = fresh_database, tmp_path / "landing"
    events = landing / "web" / "events"
    write_lines(events / "2026-01-02" / "e.jsonl", [web_event("E1"), web_event("E2")])
    ingest_contract(spark, get_contract("web_events"), landing.as_uri(), "b1")
    # E1 again, corrected to the next day, and E2 re-sent unchanged
    write_lines(events / "2026-01-04" / "e.jsonl", [web_event("E1", "2026-01-03T00:30:00Z"), web_event("E2")])
    stats = ingest_contract(spark, get_contract("web_events"), landing.as_uri(), "b2")
    assert (stats.inserted, stats.updated) == (0, 1)
    rows = sorted((r.event_id, r.event_date, r._batch_id) for r in spark.table("bronze.web_events").collect())
    assert rows == [("E1", date(2026, 1, 3), "b2"), ("E2", date(2026, 1, 2), "b1")]


def test_new_columns_beyond_the_cap_are_kept_in_one_map_column(fresh_database, tmp_path):
    spark, landing = fresh_database, tmp_path / "landing"
    write_lines(
        landing / "web" / "events" / "2026-01-02" / "e.jsonl",
        [web_event("E1", colour="red", size=3, weight="2kg"), web_event("E2")],
    )
    capped = replace(get_contract("web_events"), max_new_columns=1)
    stats = ingest_contract(spark, capped, landing.as_uri(), "b1")
    assert stats.new_columns == "colour,_extra_fields"
    rows = {r.event_id: (r.colour, r._extra_fields) for r in spark.table("bronze.web_events").collect()}
    assert rows == {"E1": ("red", {"size": "3", "weight": "2kg"}), "E2": (None, None)}

    # CSV: the same rule, by header name
    write_lines(
        landing / "reference" / "postal_codes" / "2026-01-02" / "codes.csv",
        [POSTAL_HEADER + ",b_extra,a_extra,c_extra", "GB,N1 1AA,London,,51.5,-0.1,2,1,"],
    )
    stats = ingest_contract(spark, replace(get_contract("postal_codes"), max_new_columns=1), landing.as_uri(), "b1")
    assert stats.new_columns == "a_extra,_extra_fields"
    row = spark.table("bronze.postal_codes").first()
    assert (row.a_extra, row._extra_fields) == ("1", {"b_extra": "2"})


def test_a_runaway_record_is_quarantined_with_its_text_capped(fresh_database, tmp_path):
    spark, landing = fresh_database, tmp_path / "landing"
    huge = '{"event_id": "E9", "page_url": "' + "x" * 100_000
    write_lines(landing / "web" / "events" / "2026-01-02" / "e.jsonl", [web_event("E1"), huge])
    ingest_contract(spark, get_contract("web_events"), landing.as_uri(), "b1")
    stored = spark.table(QUARANTINE_TABLE).first()
    assert (len(stored.raw_record), stored.raw_record_chars) == (32_768, len(huge))
    assert stored.raw_record == huge[:32_768]


def test_moving_the_landing_zone_neither_rereads_nor_duplicates(fresh_database, tmp_path):
    spark = fresh_database
    first = tmp_path / "mount-a" / "landing"
    write_lines(first / "web" / "events" / "2026-01-02" / "e.jsonl", [web_event("E1"), "{oops"])
    contracts = [get_contract("web_events")]
    ingest_sources(spark, contracts, first.as_uri(), "b1")

    # the same files under another mount, times kept (rsync -a, a bucket copy that keeps them)
    moved = tmp_path / "mount-b" / "landing"
    shutil.copytree(first, moved)
    assert ingest_sources(spark, contracts, moved.as_uri(), "b2")["web_events"].files == 0

    # and copied without their times: read again, yet nothing is doubled
    again = tmp_path / "mount-c" / "landing"
    shutil.copytree(first, again, copy_function=shutil.copy)
    for path in again.rglob("*.jsonl"):
        os.utime(path, (1_800_000_000, 1_800_000_000))
    stats = ingest_sources(spark, contracts, again.as_uri(), "b3")["web_events"]
    assert (stats.files, stats.received, stats.inserted) == (1, 2, 0)
    assert spark.table("bronze.web_events").count() == 1
    assert [(r.landing_path, r.raw_record) for r in spark.table(QUARANTINE_TABLE).collect()] == [
        ("web/events/2026-01-02/e.jsonl", "{oops")
    ]
    paths = {r.landing_path for r in spark.table(PROCESSED_FILES_TABLE).collect()}
    assert paths == {"web/events/2026-01-02/e.jsonl"}
