"""Run activation syncs (definitions in spark_jobs/activation/syncs/*.yml).

    python -m spark_jobs.activation.sync --sync crm_customers [--sync ...] [--all] [--dry-run]

The syncs run ``CDP_TABLE_PARALLELISM`` at a time. Each reports its metrics to Dagster (asset
``activation/<name>``) or to the log. A sync whose records the destination refused still
completes (they are in activation.sync_errors and are retried next run); the process fails if a
sync could not run at all.
"""

from __future__ import annotations

import argparse
import logging

from spark_jobs.activation.definitions import load_syncs
from spark_jobs.activation.destinations import open_destination
from spark_jobs.activation.engine import SyncRun, ensure_tables
from spark_jobs.parallel import completed
from spark_jobs.reporting import spark_job

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sync", action="append", default=[], help="sync name (repeatable)")
    parser.add_argument("--all", action="store_true", help="every defined sync")
    parser.add_argument("--dry-run", action="store_true", help="plan and log only; send nothing, keep the state")
    args = parser.parse_args(argv)
    syncs = {s.name: s for s in load_syncs()}
    names = sorted(syncs) if args.all else args.sync
    unknown = sorted(set(names) - set(syncs))
    if unknown or not names:
        parser.error(f"unknown sync(s) {unknown}; defined: {sorted(syncs)}" if unknown else "name a --sync or --all")
    with spark_job("cdp-activation") as (spark, settings, reporter):
        # Created before the syncs start side by side, so that no two threads race to create
        # them. Each sync writes its own partition of the state and plan tables (the MERGE and
        # the overwrite name it) and appends to the log and errors: the syncs never conflict.
        ensure_tables(spark)

        def run(name: str) -> dict | str:
            sync = syncs[name]
            try:
                return SyncRun(
                    spark, sync, lambda s, run_id: open_destination(s, run_id, settings), dry_run=args.dry_run
                ).run()
            except Exception as error:  # one sync that cannot run does not hold back the others
                log.exception("sync %s could not run", name)
                return f"{type(error).__name__}: {error}"

        failed = {}
        for name, outcome in completed(run, names, settings.table_parallelism):
            if isinstance(outcome, str):
                failed[name] = outcome
                continue
            sync = syncs[name]
            reporter.materialized(
                "/".join(sync.asset_key), {"model": sync.table, "destination": sync.destination_type, **outcome}
            )
        if failed:
            raise RuntimeError(f"{len(failed)} sync(s) could not run: {failed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
