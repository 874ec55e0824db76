"""Retention: landing files and rows past their days go, files only old Delta versions use are
vacuumed, a dry run removes nothing, and every target is logged."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from spark_jobs.privacy.retention import LOG_TABLE, RULES_FILE, RetentionRulesError, RetentionRun, Rules, load_rules


def test_the_shipped_rules_load_and_bad_ones_are_refused_by_name(tmp_path):
    rules = load_rules(RULES_FILE)
    assert rules.tables["bronze._quarantine"] == ("quarantined_at", 30) and rules.vacuum_retention_hours == 168
    for text, message in [
        ("vacuum_retention_hours: 1", "vacuum_retention_hours must be at least 168"),
        ("landing_files_days: 0", "landing_files_days must be a whole number of days >= 1"),
        ("tables: {bronze._quarantine: {days: 3}}", "tables.bronze._quarantine needs a timestamp column"),
    ]:
        path = tmp_path / "rules.yml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(RetentionRulesError, match=message):
            load_rules(path)


@pytest.fixture
def old_and_new(fresh_database, tmp_path):
    """A landing zone with a file delivered 40 days ago and one today; a quarantine with a row
    from 40 days ago and one from today; a table overwritten once (its first files are only
    used by version 0)."""
    spark = fresh_database
    landing = tmp_path / "landing"
    today, old_day = datetime.now(UTC).date(), (datetime.now(UTC) - timedelta(days=40)).date()
    for day in (old_day, today):
        folder = landing / "crm" / "contacts" / day.isoformat()
        folder.mkdir(parents=True)
        (folder / "contacts.csv").write_text("id\n1\n", encoding="utf-8")
    undated = landing / "web" / "events" / "loose.jsonl"  # no day folder: its modification day counts
    undated.parent.mkdir(parents=True)
    undated.write_text("{}\n", encoding="utf-8")
    forty_days_ago = time.time() - 40 * 86400
    os.utime(undated, (forty_days_ago, forty_days_ago))
    now = datetime.now(UTC).replace(tzinfo=None)
    spark.createDataFrame(
        [("old.csv", "ann@x.com,bad", now - timedelta(days=40)), ("new.csv", "bob@y.com,bad", now)],
        "source_file string, raw_record string, quarantined_at timestamp",
    ).write.format("delta").saveAsTable("bronze._quarantine")
    spark.createDataFrame([(1,)], "n int").write.format("delta").saveAsTable("bronze.rewritten")
    spark.createDataFrame([(2,)], "n int").write.format("delta").mode("overwrite").saveAsTable("bronze.rewritten")
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")  # RETAIN 0 HOURS here
    yield spark, landing, today, old_day
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "true")
    spark.sql(f"DROP TABLE IF EXISTS {LOG_TABLE}")


def test_retention_removes_what_is_past_its_days_and_logs_every_target(old_and_new):
    spark, landing, today, _ = old_and_new
    rules = Rules(30, {"bronze._quarantine": ("quarantined_at", 30)}, 0, ("bronze",))

    dry = RetentionRun(spark, rules, landing.as_uri(), dry_run=True).run()
    removed = {(kind, target): n for _, kind, target, _, n, *_ in dry}
    assert removed[("landing", landing.as_uri())] == 2 and removed[("rows", "bronze._quarantine")] == 1
    assert removed[("vacuum", "bronze.rewritten")] >= 1
    assert len(list(landing.rglob("*.csv"))) == 2 and spark.table("bronze._quarantine").count() == 2  # nothing gone

    RetentionRun(spark, rules, landing.as_uri()).run()
    assert sorted(p.relative_to(landing).as_posix() for p in landing.rglob("*.*")) == [
        f"crm/contacts/{today.isoformat()}/contacts.csv"
    ]
    assert [r.source_file for r in spark.table("bronze._quarantine").collect()] == ["new.csv"]
    assert [r.n for r in spark.table("bronze.rewritten").collect()] == [2]
    with pytest.raises(Exception, match=r"FileNotFound|does not exist|FAILED_READ_FILE"):
        spark.read.format("delta").option("versionAsOf", 0).table("bronze.rewritten").collect()  # purged

    log = spark.table(LOG_TABLE).collect()
    assert {r.dry_run for r in log} == {True, False}
    real = {(r.kind, r.target): r.removed for r in log if not r.dry_run}
    assert real[("landing", landing.as_uri())] == 2 and real[("rows", "bronze._quarantine")] == 1
    assert real[("vacuum", "bronze.rewritten")] == removed[("vacuum", "bronze.rewritten")], (
        "the files the dry run named"
    )
    assert all("@" not in (r.detail or "") for r in log)  # what was removed is counted, never shown
