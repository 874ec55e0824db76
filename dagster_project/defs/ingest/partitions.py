"""Daily partitions of the event sources: one partition per landing delivery day.

A partition of ``bronze/web_events`` is "the files delivered on that day" (the ``YYYY-MM-DD``
landing folder, or the modification date of a file outside such a folder), not the events of
that day: the bronze table itself is partitioned by event date, and one delivery can carry
events of several days. Materializing a range of partitions is one Spark run
(``BackfillPolicy.single_run``) that reads the folders of the whole range at once.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

# The first delivery day. A partitions definition is part of the code location, so this is a
# constant, not a setting: change it here for deliveries older than 2025 (the sample data's
# earliest possible day is 2025-01-01, with --days 366).
EVENT_PARTITIONS_START = "2025-01-01"

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

# end_offset=1: today's partition exists, so files delivered today can be ingested today.
delivery_days = dg.DailyPartitionsDefinition(start_date=EVENT_PARTITIONS_START, end_offset=1, timezone="UTC")


def first_partition_day() -> date:
    return date.fromisoformat(EVENT_PARTITIONS_START)


def partition_range_tags(first: date, last: date) -> dict[str, str]:
    """Run tags that make one run cover the delivery days ``first``..``last`` (inclusive)."""
    if last < first:
        raise ValueError(f"empty partition range {first}..{last}")
    if first < first_partition_day():
        raise ValueError(
            f"{first} is before the first event partition {EVENT_PARTITIONS_START}; "
            "change EVENT_PARTITIONS_START in dagster_project/defs/ingest/partitions.py"
        )
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}


def recent_days_tags(today: date, days: int = 2) -> dict[str, str]:
    """The last ``days`` delivery days up to ``today``: what the daily schedule ingests, so a
    file that arrived after yesterday's run is still picked up."""
    return partition_range_tags(max(today - timedelta(days=days - 1), first_partition_day()), today)
