"""The landing sensor asks for exactly the bronze assets (and delivery days) that have new files."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.defs.ingest.assets import build_bronze_assets
from dagster_project.defs.ingest.sensors import build_landing_sensor, list_landing, new_files_request
from dagster_project.resources import CdpSettingsResource
from devstack.s3_server import LOCAL_CREDENTIALS, LocalS3Server
from spark_jobs.ingest.contracts import get_contract
from spark_jobs.ingest.landing import LandingFile
from spark_jobs.settings import Settings
from tests.conftest import write_lines

bronze_assets = build_bronze_assets()

sensor = build_landing_sensor(bronze_assets)


def _deliver(landing: Path, relative: str, modified: datetime) -> Path:
    path = write_lines(landing / relative, ["x"])
    os.utime(path, (modified.timestamp(), modified.timestamp()))
    return path


def _tick(landing: Path, cursor: str | None):
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            resources={"cdp_settings": CdpSettingsResource(home=str(landing.parent), landing_dir=str(landing))},
        )
        return sensor.evaluate_tick(context)


def _selected(request: dg.RunRequest) -> set[str]:
    return {key.to_user_string() for key in request.asset_selection}


def test_new_files_trigger_one_run_with_their_delivery_days_and_nothing_twice(tmp_path):
    landing = tmp_path / "landing"
    t0 = datetime(2026, 1, 1, 8, tzinfo=UTC)
    _deliver(landing, "crm/contacts/2025-12-30/contacts.csv", t0)
    _deliver(landing, "web/events/2025-12-30/events-1.jsonl", t0)
    _deliver(landing, "web/events/2025-12-31/events-2.jsonl.gz", t0)
    _deliver(landing, "web/events/2025-12-31/.events-3.jsonl.tmp", t0)  # still being written

    first = _tick(landing, None)
    [request] = first.run_requests
    assert _selected(request) == {"bronze/crm_contacts", "bronze/web_events"}
    assert request.tags["dagster/asset_partition_range_start"] == "2025-12-30"
    assert request.tags["dagster/asset_partition_range_end"] == "2025-12-31"

    again = _tick(landing, first.cursor)
    assert again.run_requests == [] and again.skip_message == "no new landing files"

    # A later delivery of one event source: only that table and only its day.
    _deliver(landing, "web/events/2026-01-02/events-4.jsonl", datetime(2026, 1, 2, 6, tzinfo=UTC))
    [request] = _tick(landing, first.cursor).run_requests
    assert _selected(request) == {"bronze/web_events"}
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == (
        "2026-01-02",
        "2026-01-02",
    )


def test_unpartitioned_sources_run_without_a_partition_and_files_outside_date_folders_use_their_mtime(tmp_path):
    landing = tmp_path / "landing"
    _deliver(landing, "shop/orders/orders.jsonl", datetime(2026, 1, 1, tzinfo=UTC))
    [request] = _tick(landing, None).run_requests
    assert _selected(request) == {"bronze/shop_orders"}
    assert "dagster/asset_partition_range_start" not in request.tags

    _deliver(landing, "email/events/dropped-by-hand.csv", datetime(2026, 3, 4, 10, tzinfo=UTC))
    [request] = _tick(landing, None).run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2026-03-04"


def test_event_files_before_the_first_partition_are_reported_not_requested():
    from datetime import date

    web_events = get_contract("web_events")
    old = LandingFile("file:/landing/web/events/2019-05-01/old.jsonl", 10, 1_700_000_000_000)
    request, cursor, warnings = new_files_request([web_events], {"web_events": [old]}, {}, date(2026, 1, 1))
    assert request is None
    assert cursor == {"web_events": 1_700_000_000_000}  # reported once, not on every tick
    assert warnings == [
        f"web_events: {old.path} has delivery day 2019-05-01, outside the event partitions "
        "(2025-01-01 to 2026-01-01; CDP_PARTITIONS_START, CDP_PARTITIONS_END); not ingested"
    ]


def test_partitions_span_the_configured_days_and_files_after_the_last_one_wait(monkeypatch):
    """CDP_PARTITIONS_START/END: the sample's week locally (7 partitions, not one per day since
    2025); a file delivered after the last day is reported, and the schedule stops at the end."""
    from datetime import date, datetime

    from dagster_project.defs.ingest.partitions import partitions_definition, recent_days_tags
    from spark_jobs.settings import Settings

    monkeypatch.setenv("CDP_PARTITIONS_START", "2025-12-25")
    monkeypatch.setenv("CDP_PARTITIONS_END", "2025-12-31")
    keys = partitions_definition(Settings.from_env()).get_partition_keys()
    assert (keys[0], keys[-1], len(keys)) == ("2025-12-25", "2025-12-31", 7)
    web_events = get_contract("web_events")
    inside = LandingFile("file:/landing/web/events/2025-12-30/a.jsonl", 10, 1_000)
    later = LandingFile("file:/landing/web/events/2026-02-01/b.jsonl", 10, 2_000)
    request, _, warnings = new_files_request([web_events], {"web_events": [inside, later]}, {}, date(2026, 3, 1))
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == (
        "2025-12-30",
        "2025-12-30",
    )
    assert warnings == [
        f"web_events: {later.path} has delivery day 2026-02-01, outside the event partitions "
        "(2025-12-25 to 2025-12-31; CDP_PARTITIONS_START, CDP_PARTITIONS_END); not ingested"
    ]
    assert recent_days_tags(date(2026, 3, 1)) == {
        "dagster/asset_partition_range_start": "2025-12-30",
        "dagster/asset_partition_range_end": "2025-12-31",
    }
    monkeypatch.setenv("CDP_PARTITIONS_END", "")  # open: up to today, as in production
    keys = partitions_definition(Settings.from_env()).get_partition_keys(current_time=datetime(2026, 1, 3))
    assert (keys[0], keys[-1]) == ("2025-12-25", "2026-01-03")


@pytest.mark.parametrize(
    ("start", "end", "error"),
    [
        ("25/12/2025", "", "CDP_PARTITIONS_START must be a day as YYYY-MM-DD, got '25/12/2025'"),
        ("2025-12-25", "2025-12-01", "CDP_PARTITIONS_END (2025-12-01) is before CDP_PARTITIONS_START (2025-12-25)"),
    ],
)
def test_partition_days_that_make_no_range_are_refused(start, end, error):
    from spark_jobs.settings import Settings

    with pytest.raises(ValueError) as raised:
        Settings.from_env({"CDP_PARTITIONS_START": start, "CDP_PARTITIONS_END": end})
    assert str(raised.value) == error


@pytest.fixture
def s3_landing(tmp_path, monkeypatch):
    for key, value in LOCAL_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    with LocalS3Server(tmp_path / "s3-data") as server:
        server.ensure_bucket("landing-bucket")
        yield server


def test_an_s3_landing_zone_is_listed_with_boto3(s3_landing):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_landing.endpoint_url)
    client.put_object(Bucket="landing-bucket", Key="zone/web/events/2025-12-31/e.jsonl", Body=b'{"a": 1}\n')
    client.put_object(Bucket="landing-bucket", Key="zone/web/events/2025-12-31/_SUCCESS", Body=b"")
    client.put_object(Bucket="landing-bucket", Key="zone/web/events_archive/old.jsonl", Body=b"{}\n")
    settings = Settings.from_env(
        {"CDP_LANDING_URL": "s3a://landing-bucket/zone", "CDP_S3_ENDPOINT_URL": s3_landing.endpoint_url}
    )
    [seen] = list_landing(settings, get_contract("web_events"))
    assert (seen.path, seen.size, seen.delivery_date.isoformat()) == (
        "s3a://landing-bucket/zone/web/events/2025-12-31/e.jsonl",
        9,
        "2025-12-31",
    )


def test_hidden_files_and_folders_are_not_deliveries():
    from spark_jobs.ingest.landing import is_hidden

    assert [
        is_hidden(p)
        for p in [
            "2025-12-31/a.jsonl",
            "2025-12-31/.a.jsonl.tmp",
            "_staging/2025-12-31/a.jsonl",
            "2025-12-31/_SUCCESS",
            "a_b/c.csv",
        ]
    ] == [False, True, True, True, False]


def test_ingestion_lists_an_s3_landing_zone_with_empty_deliveries_and_without_directory_markers(
    s3_landing, spark, monkeypatch
):
    """Spark's file sources leave empty files out; an empty delivery is still a delivery."""
    import boto3

    from spark_jobs.ingest.landing import list_landing_files

    client = boto3.client("s3", endpoint_url=s3_landing.endpoint_url)
    client.put_object(Bucket="landing-bucket", Key="zone/support/tickets/2025-12-30/", Body=b"")  # an s3a:// marker
    client.put_object(Bucket="landing-bucket", Key="zone/support/tickets/2025-12-30/t_001.jsonl", Body=b"")
    client.put_object(Bucket="landing-bucket", Key="zone/support/tickets/2025-12-31/t_002.jsonl", Body=b"{}\n")
    client.put_object(Bucket="landing-bucket", Key="zone/support/tickets/2025-12-31/.t_002.jsonl.crc", Body=b"x")
    monkeypatch.setenv("CDP_S3_ENDPOINT_URL", s3_landing.endpoint_url)
    files = list_landing_files(spark, "s3a://landing-bucket/zone", get_contract("support_tickets"))
    assert sorted((f.path, f.size, f.delivery_date.isoformat()) for f in files) == [
        ("s3a://landing-bucket/zone/support/tickets/2025-12-30/t_001.jsonl", 0, "2025-12-30"),
        ("s3a://landing-bucket/zone/support/tickets/2025-12-31/t_002.jsonl", 3, "2025-12-31"),
    ]
