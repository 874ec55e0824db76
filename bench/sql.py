"""BI point queries on the Spark service's JDBC endpoint, alone or while a run writes.

    ./cdp bench-sql [--seconds 60] [--during-run]

Looks customers up by id in ``gold.dim_customers`` over HiveServer2 (pyhive, one connection as
a BI tool's pool keeps), one query after another, and prints the latency p50 / p95 / max and
the errors. With ``--during-run`` it starts ``./cdp run`` on the same CDP_HOME (whose steps are
clients of the same service) and measures until that run ends. The home needs gold tables
(a ``./cdp run`` before).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time

from devstack.runner import start_spark_service
from spark_jobs.settings import REPO_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="how long to query without --during-run")
    parser.add_argument("--during-run", action="store_true", help="query while ./cdp run writes, until it ends")
    args = parser.parse_args(argv)

    from pyhive import hive

    environ = dict(os.environ)
    service = start_spark_service(environ)
    if service is None:
        print("bench-sql needs the Spark service (unset CDP_SPARK_SERVICE=false)", file=sys.stderr)
        return 1
    connection = hive.connect(host=service.settings.service_host, port=service.settings.sql_port, username="bench")
    cursor = connection.cursor()
    cursor.execute("select customer_id from gold.dim_customers limit 500")
    ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        print("gold.dim_customers is empty: run ./cdp run first", file=sys.stderr)
        return 1

    run, run_started = None, time.monotonic()
    if args.during_run:
        run = subprocess.Popen(
            [sys.executable, "-m", "devstack.runner", "run"], cwd=REPO_ROOT, env=environ,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    rng = random.Random(7)
    latencies, errors = [], []
    deadline = time.monotonic() + args.seconds
    while (run.poll() is None) if run else time.monotonic() < deadline:
        customer = rng.choice(ids)
        started = time.monotonic()
        try:
            cursor.execute("select * from gold.dim_customers where customer_id = %(id)s", {"id": customer})
            rows = cursor.fetchall()
            if len(rows) > 1:
                errors.append(f"{customer}: {len(rows)} rows")
        except Exception as error:  # every failure is a finding
            errors.append(str(error)[:200])
        latencies.append(time.monotonic() - started)
    connection.close()

    latencies.sort()
    p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
    print(f"point queries on gold.dim_customers by customer_id over JDBC{' while ./cdp run writes' if run else ''}")
    print(f"  queries {len(latencies):>8}   errors {len(errors)}")
    print(f"  p50 {statistics.median(latencies):8.3f} s   p95 {p95:8.3f} s   max {latencies[-1]:8.3f} s")
    if run:
        print(f"  the run ended with exit code {run.returncode} after {time.monotonic() - run_started:.0f} s")
    for error in errors[:5]:
        print(f"  error: {error}")
    return 0 if not errors and (run is None or run.returncode == 0) else 1


if __name__ == "__main__":
    raise SystemExit(main())
