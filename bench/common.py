"""The command line shared by the benchmark scripts (they print figures; they are not tests)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from spark_jobs.reporting import configure_logging
from spark_jobs.settings import Settings


def bench_main(
    run: Callable[[int, int, int, Path], int], description: str, default_customers: int, argv: list[str] | None = None
) -> int:
    """Parse ``--customers --seed --days`` and call ``run(customers, seed, days, CDP_HOME)``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--customers", type=int, default=default_customers)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args(argv)
    configure_logging()
    return run(args.customers, args.seed, args.days, Settings.from_env().home)
