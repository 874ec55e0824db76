"""Erasing many people at once, end to end including the purge.

    ./cdp bench-erasure [--people 100] [--customers N]

Needs a home with a pipeline run (``./cdp run --customers N`` on the same CDP_HOME; with
``--customers`` this runs it first). Picks ``--people`` customers (those sent to the most
destinations first), delivers their erasure requests as a file of the ``erasure_requests``
source, then times: ingesting the requests, the erasure run (resolve, tombstones, destination
deletes, quarantine / landing / export scrubbing, deletes in every table) and the purge
(``--purge-after-hours 0``). Prints the times with the lakehouse's size and rows, so runs at
several sizes show how the time grows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime

from spark_jobs.settings import REPO_ROOT


def _folder_bytes(path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--customers", type=int, help="run the pipeline on this many customers first")
    args = parser.parse_args(argv)

    from devstack.runner import local_stack, run_main_job

    if args.customers:
        with local_stack():
            started = time.monotonic()
            result = run_main_job(args.customers, 7)
            print(f"pipeline run ({args.customers} customers): {time.monotonic() - started:.1f} s, ok={result.success}")

    with local_stack() as settings:
        from pyspark.sql import SparkSession
        from pyspark.sql import functions as F

        spark = SparkSession.builder.remote(settings.spark_remote).getOrCreate()
        synced = (
            spark.table("activation.sync_state")
            .where(F.col("status") == "synced")
            .groupBy(F.col("record_key").alias("customer_id"))
            .agg(F.countDistinct("sync_name").alias("syncs"))
        )
        chosen = (
            spark.table("gold.dim_customers")
            .where(F.col("email").isNotNull())
            .join(synced, "customer_id", "left")
            .orderBy(F.desc_nulls_last("syncs"), "customer_id")
            .select("customer_id", "email", "syncs")
            .limit(args.people)
            .collect()
        )
        customers = spark.table("gold.dim_customers").count()
        records = spark.table("silver.identity_map").count()
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        folder = settings.landing_dir / "privacy" / "erasure_requests" / datetime.now(UTC).date().isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"bench_{int(time.time())}.jsonl"
        lines = [
            json.dumps({"request_id": f"BENCH-{i:04d}-{int(time.time())}", "email": r.email, "requested_at": now})
            for i, r in enumerate(chosen)
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        lakehouse_bytes = _folder_bytes(settings.lakehouse_dir)

        def timed(module: str, *job_args: str) -> float:
            started = time.monotonic()
            subprocess.run([sys.executable, "-m", module, *job_args], cwd=REPO_ROOT, check=True)
            return time.monotonic() - started

        ingest_s = timed("spark_jobs.ingest.bronze", "--entities", "erasure_requests")
        erase_s = timed("spark_jobs.privacy.erasure", "--purge-after-hours", "0")
        log_rows = spark.table("privacy.erasure_log").where(F.col("request_id").startswith("BENCH-")).collect()
        done = [r for r in log_rows if r.request_id in {json.loads(line)["request_id"] for line in lines}]
        print(
            f"customers in gold: {customers}, identity records: {records}, lakehouse: {lakehouse_bytes / 2**20:.0f} MiB"
        )
        print(f"people erased: {len(chosen)} (sent to destinations: {sum(1 for r in chosen if r.syncs)})")
        print(f"  ingest the requests          {ingest_s:8.1f} s")
        print(f"  erasure run incl. the purge  {erase_s:8.1f} s")
        print(f"  total                        {ingest_s + erase_s:8.1f} s")
        statuses = sorted({r.status for r in done})
        rows = sum(sum(r.rows_deleted.values()) for r in done[:1])
        print(f"  requests logged: {len(done)}, statuses: {statuses}, rows deleted: {rows}, purged: "
              f"{all(r.purged_at for r in done)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
