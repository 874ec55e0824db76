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

from spark_jobs.settings import Settings

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def partitions_definition(settings: Settings) -> dg.DailyPartitionsDefinition:
    """One partition per delivery day from CDP_PARTITIONS_START to CDP_PARTITIONS_END, or to today
    when no end is set (end_offset=1: files delivered today can be ingested today)."""
    first, last = settings.partition_days()
    if last is None:
        return dg.DailyPartitionsDefinition(start_date=first.isoformat(), end_offset=1, timezone="UTC")
    end = (last + timedelta(days=1)).isoformat()  # Dagster's end date is exclusive
    return dg.DailyPartitionsDefinition(start_date=first.isoformat(), end_date=end, timezone="UTC")


# Read when the code location loads: a partitions definition is part of the definitions.
delivery_days = partitions_definition(Settings.from_env())


def first_partition_day() -> date:
    return Settings.from_env().partition_days()[0]


def last_partition_day(today: date) -> date:
    """The last delivery day a run may cover: today, or CDP_PARTITIONS_END when it is earlier."""
    last = Settings.from_env().partition_days()[1]
    return today if last is None else min(today, last)


def partition_range_tags(first: date, last: date) -> dict[str, str]:
    """Run tags that make one run cover the delivery days ``first``..``last`` (inclusive)."""
    if last < first:
        raise ValueError(f"empty partition range {first}..{last}")
    settings = Settings.from_env()
    start, end = settings.partition_days()
    if first < start:
        raise ValueError(f"{first} is before the first event partition {start}: set CDP_PARTITIONS_START earlier")
    if end is not None and last > end:
        raise ValueError(f"{last} is after the last event partition {end}: set CDP_PARTITIONS_END later (or empty)")
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}


def recent_days_tags(today: date, days: int = 2) -> dict[str, str]:
    """The last ``days`` delivery days up to ``today``: what the daily schedule ingests, so a
    file that arrived after yesterday's run is still picked up."""
    last = last_partition_day(today)
    return partition_range_tags(max(last - timedelta(days=days - 1), first_partition_day()), last)
