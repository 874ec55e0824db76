"""Benchmark of a sync: a full sync of a large audience, then a daily sync after a small change.

    ./cdp bench-activation [--members 1000000] [--change-percent 1] [--destination crm|webhook]

The audience is generated with Spark (gold.sync_bench__audience in a scratch warehouse under
CDP_HOME/bench-activation); the destination is the local stand-in of the API
(devstack/mock_apis.py) in its own process, so its memory is not counted. The change
is half updates, a quarter departures and a quarter arrivals (mirror mode sends all three).
Printed: rows planned and sent, seconds, rows/s, and the peak memory of this process and its
Spark JVM. Figures, not a test.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from devstack.memory import tree_rss_bytes
from devstack.mock_apis import LOCAL_API_CREDENTIALS
from devstack.s3_server import free_port
from spark_jobs.activation.definitions import parse_sync
from spark_jobs.activation.destinations import open_destination
from spark_jobs.activation.engine import SyncRun
from spark_jobs.reporting import configure_logging
from spark_jobs.settings import Settings

log = logging.getLogger(__name__)


def start_apis(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.mock_apis", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    process.stdout.readline()  # "mock APIs on ..." once it listens
    return process


class Peak:
    """Peak RSS of this process tree minus the stand-in server's process (``peak``), and of this
    Python process alone (``python``: what streams the rows; the JVM's heap is capped by the
    driver memory setting)."""

    def __init__(self, exclude: int) -> None:
        import threading

        self.exclude, self.peak, self.python, self._stop = exclude, 0, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes(os.getpid()) - tree_rss_bytes(self.exclude))
            self.python = max(self.python, int(Path("/proc/self/statm").read_text().split()[1]) * page)
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def generate(spark, members: int) -> None:
    spark.range(members).selectExpr(
        "concat('cus_', lpad(cast(id as string), 10, '0')) as customer_id",
        "concat('member', id, '@example.com') as email",
        "concat('Name', id % 997) as first_name",
        "cast(null as string) as suppression_reason",
    ).write.format("delta").mode("overwrite").saveAsTable("gold.sync_bench__audience")


def change(spark, members: int, percent: float) -> int:
    """Update, remove and add members: ``percent`` of the audience in all."""
    changed = int(members * percent / 100)
    updates, removals, arrivals = changed // 2, changed // 4, changed - changed // 2 - changed // 4
    step = max(members // max(updates + removals, 1), 1)
    spark.sql(f"""UPDATE gold.sync_bench__audience SET first_name = concat(first_name, '-renamed')
                  WHERE cast(substring(customer_id, 5) as bigint) % {step} = 0
                    AND cast(substring(customer_id, 5) as bigint) < {updates * step}""")
    spark.sql(f"""DELETE FROM gold.sync_bench__audience
                  WHERE cast(substring(customer_id, 5) as bigint) % {step} = 1
                    AND cast(substring(customer_id, 5) as bigint) < {removals * step}""")
    spark.range(members, members + arrivals).selectExpr(
        "concat('cus_', lpad(cast(id as string), 10, '0')) as customer_id",
        "concat('member', id, '@example.com') as email",
        "'Newcomer' as first_name",
        "cast(null as string) as suppression_reason",
    ).write.format("delta").mode("append").saveAsTable("gold.sync_bench__audience")
    return updates + removals + arrivals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark a full sync and a daily sync after a small change.")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--change-percent", type=float, default=1.0)
    parser.add_argument("--destination", choices=("crm", "webhook"), default="crm")
    args = parser.parse_args(argv)
    configure_logging()

    settings = Settings.from_env()
    scratch = settings.home / "bench-activation"
    shutil.rmtree(scratch, ignore_errors=True)
    port = free_port()
    os.environ.update(
        {
            "CDP_CRM_BASE_URL": f"http://127.0.0.1:{port}",
            "CDP_WEBHOOK_URL": f"http://127.0.0.1:{port}/hooks/bench",
            **LOCAL_API_CREDENTIALS,
        }
    )
    sync = parse_sync(
        {
            "name": "bench_audience",
            "model": "sync_bench__audience",
            "mode": "mirror",
            # CRM: a custom object (a Contact would need a last name, which the audience lacks).
            "destination": {"type": args.destination, "object": "CDP_Person__c"},
            "identifier": {"source": "customer_id", "destination": "CDP_Customer_Id__c"},
            "fields": {"email": "Email", "first_name": "FirstName"},
            "rate_limit_per_second": 10_000,
        },
        "benchmark",
    )
    from spark_jobs.spark import build_session, quiet

    spark = build_session(
        settings,
        "cdp-bench-activation",
        overrides={
            "spark.sql.catalogImplementation": "in-memory",
            "spark.ui.enabled": "false",
            "spark.sql.warehouse.dir": (scratch / "warehouse").as_uri(),
        },
    )
    quiet(spark)
    spark.sql("CREATE DATABASE IF NOT EXISTS gold")
    started = time.monotonic()
    generate(spark, args.members)
    print(f"generated {args.members:,} members in {time.monotonic() - started:.1f} s", flush=True)

    server = start_apis(port)
    rows = []
    try:

        def timed(label: str) -> None:
            with Peak(server.pid) as peak:
                clock = time.monotonic()
                metrics = SyncRun(spark, sync, lambda s, run_id: open_destination(s, run_id, settings)).run()
                seconds = time.monotonic() - clock
            rows.append(
                (
                    label,
                    metrics["planned"],
                    metrics["sent"],
                    metrics["failed"],
                    seconds,
                    metrics["sent"] / seconds if seconds else 0,
                    peak.peak / 2**30,
                    peak.python / 2**30,
                )
            )

        timed("full sync")
        changed = change(spark, args.members, args.change_percent)
        timed(f"after a {args.change_percent:g}% change ({changed:,} rows)")
        timed("no change")
    finally:
        server.terminate()
        server.wait(timeout=30)
        spark.stop()

    print(
        f"\nactivation benchmark: {args.members:,} members, destination {args.destination} "
        f"(local stand-in), spark_master={settings.spark_master}, {os.cpu_count()} cores"
    )
    print(
        f"{'run':38s} {'planned':>10s} {'sent':>10s} {'failed':>7s} {'seconds':>8s} {'rows/s':>9s} "
        f"{'peak GiB':>9s} {'python GiB':>10s}"
    )
    for label, planned, sent, failed, seconds, rate, peak, python in rows:
        print(
            f"{label:38s} {planned:>10,} {sent:>10,} {failed:>7,} {seconds:>8.1f} {rate:>9,.0f} "
            f"{peak:>9.2f} {python:>10.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
