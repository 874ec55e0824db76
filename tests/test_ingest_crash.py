"""A job that dies between two of a batch's commits: the next run completes it, and the tables
then hold what a run that never crashed holds, every file and row counted once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_lines

from spark_jobs.ingest import bronze
from spark_jobs.ingest.contracts import get_contract
from spark_jobs.spark import table_names

HEADER = (
    "op,change_ts,contact_id,first_name,last_name,email,phone,birth_date,street,city,postcode,country,"
    "loyalty_card_id,created_at"
)
ROWS = [
    "I,2026-01-01T01:00:00Z,C1,Ann,Lee,ann@x.com,,1990-01-02,1 High St,London,N1 1AA,GB,,2024-01-01T00:00:00Z",
    "U,2026-01-02T01:00:00Z,C1,Ann,Lee,ann@y.com,,1990-01-02,1 High St,Leeds,LS1 1AA,GB,,2024-01-01T00:00:00Z",
    "I,2026-01-01T01:00:00Z,C2,Bo,Ng,bo@x.com,,1985-05-06,2 Low Rd,York,YO1 1AA,GB,,2024-01-01T00:00:00Z",
    "X,not-a-time,C3,,,,,,,,,,,",
]
# Every commit of a batch, in order (history only for cdc sources).
COMMITS = ["record_history", "apply_to_bronze", "record_quarantine", "record_files", "record_batch"]


class Crash(BaseException):
    """The process dying right after a commit (no ``except Exception`` handler catches it)."""


def deliver(landing: Path) -> None:
    contacts = landing / "crm" / "contacts"
    write_lines(contacts / "2026-01-02" / "a.csv", [HEADER, *ROWS[:2], ROWS[3]])
    write_lines(contacts / "2026-01-03" / "b.csv", [HEADER, ROWS[2]])


def snapshot(spark) -> dict:
    """What a run leaves, without batch ids and times (which differ from run to run)."""
    log = spark.table(bronze.INGESTION_LOG_TABLE).where("entity = 'crm_contacts' AND files > 0").collect()
    return {
        "bronze": sorted(
            (r.contact_id, str(r.change_ts), r.city, r._is_deleted)
            for r in spark.table("bronze.crm_contacts").collect()
        ),
        "history": sorted((r.contact_id, r._row_hash) for r in spark.table("bronze.crm_contacts_history").collect()),
        "quarantine": sorted(
            (r.landing_path, r.raw_record, r.reason, r.quarantine_id)
            for r in spark.table(bronze.QUARANTINE_TABLE).collect()
        ),
        "files": sorted(
            (r.landing_path, r.status, r.received, r.accepted, r.quarantined)
            for r in spark.table(bronze.PROCESSED_FILES_TABLE).collect()
        ),
        "log": [sum(r[c] for r in log) for c in ("files", "received", "accepted", "quarantined")],
    }


def drop_bronze(spark) -> None:
    for table in table_names(spark, "bronze"):
        spark.sql(f"DROP TABLE IF EXISTS bronze.{table}")


@pytest.fixture(scope="module")
def delivered_and_clean(spark, tmp_path_factory) -> tuple[Path, dict]:
    """The delivery (one landing folder, only read) and what a run that never crashed leaves
    from it: the reference of every crash case, ingested once."""
    landing = tmp_path_factory.mktemp("crash") / "landing"
    deliver(landing)
    drop_bronze(spark)
    bronze.ingest_sources(spark, [get_contract("crm_contacts")], landing.as_uri(), "clean")
    clean = snapshot(spark)
    drop_bronze(spark)
    return landing, clean


@pytest.mark.parametrize("commit", COMMITS)
def test_a_crash_after_any_commit_is_completed_by_the_next_run(
    fresh_database, delivered_and_clean, monkeypatch, commit
):
    spark = fresh_database
    landing, clean = delivered_and_clean
    contracts = [get_contract("crm_contacts")]
    assert clean["log"] == [2, 4, 3, 1] and len(clean["bronze"]) == 2
    assert table_names(spark, "bronze") == [], "each case starts from empty bronze tables"

    original = getattr(bronze, commit)

    def commit_then_die(*args, **kwargs):
        original(*args, **kwargs)
        raise Crash(commit)

    monkeypatch.setattr(bronze, commit, commit_then_die)
    with pytest.raises(Crash):
        bronze.ingest_sources(spark, contracts, landing.as_uri(), "crashed")
    monkeypatch.setattr(bronze, commit, original)
    rerun = bronze.ingest_sources(spark, contracts, landing.as_uri(), "rerun")["crm_contacts"]
    assert snapshot(spark) == clean
    assert bronze.reconciliation(spark, rerun)[0], bronze.reconciliation(spark, rerun)[1]
    # and one more run reads nothing
    assert bronze.ingest_sources(spark, contracts, landing.as_uri(), "again")["crm_contacts"].files == 0


KILL_AFTER = """
import os, signal, sys
from spark_jobs.ingest import bronze
original = getattr(bronze, sys.argv[1])
def commit_then_die(*args, **kwargs):
    original(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
setattr(bronze, sys.argv[1], commit_then_die)
bronze.main(["--entities", "crm_contacts"])
"""

RERUN_AND_SHOW = """
import json, sys
sys.path.insert(0, sys.argv[1])
from pyspark.sql import SparkSession
from spark_jobs.ingest import bronze
from test_ingest_crash import snapshot
bronze.main(["--entities", "crm_contacts"])
print("SNAPSHOT " + json.dumps(snapshot(SparkSession.getActiveSession())))
"""


def test_sigkill_between_the_files_and_the_log_commit_loses_no_batch(tmp_path):
    """The real thing, once: SIGKILL after ``_processed_files`` and before ``_ingestion_log``
    (the batch used to vanish from the log), then a new process."""
    env = {**os.environ, "CDP_HOME": str(tmp_path / "home")}
    deliver(tmp_path / "home" / "landing")
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER, "record_files"], env=env, capture_output=True, text=True, timeout=600
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    rerun = subprocess.run(
        [sys.executable, "-c", RERUN_AND_SHOW, str(Path(__file__).parent)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    shown = json.loads(next(line for line in rerun.stdout.splitlines() if line.startswith("SNAPSHOT "))[9:])
    assert shown["log"] == [2, 4, 3, 1]
    assert [f[1:] for f in shown["files"]] == [["loaded", 3, 2, 1], ["loaded", 1, 1, 0]]
    assert [(b[0], b[2]) for b in shown["bronze"]] == [("C1", "Leeds"), ("C2", "York")]
    assert len(shown["quarantine"]) == 1 and len(shown["history"]) == 3
    assert "recovering the ingestion log of 1 batch" in rerun.stderr
