"""Identity-resolution benchmark: scores on public data sets and on the platform's sample.

    ./cdp bench-identity --dataset febrl3            # febrl1..febrl4: public, nobody here made them
    ./cdp bench-identity --dataset sample --customers 100000
    ./cdp bench-identity --dataset febrl4 --no-splink

``febrl1``-``febrl4`` (datasets.py) are resolved with the standalone CLI's code path
(resolve_file) and the same defaults as every other set; FEBRL4 is a link between two files,
so only pairs across them count. ``sample`` generates N customers, ingests the person-bearing
sources and the web/email events with the bronze job (in its own folder and in-memory
catalog, so the main lakehouse is untouched), runs the identity job twice (resolve.run: the
code the pipeline runs; the re-run must change no id) and scores the identity map against
the generator's hidden truth.

For each set it prints the candidate pairs and the blocking completeness per rule (the share
of true pairs of comparable records that the rule proposes), pairwise precision/recall/F1,
B-cubed, household false merges where the truth has households, wall time and peak memory;
then the same scores for a well-configured Splink (splink_comparison.py) on the same records,
run in its own process (``--no-splink`` skips it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pyspark.sql import functions as F

from devstack.sample.generate import generate
from spark_jobs.identity import resolve
from spark_jobs.identity.datasets import FEBRL, truth_frame, write_febrl
from spark_jobs.identity.persons import SOURCES, person_records
from spark_jobs.identity.probabilistic import comparable, pairs_by_rule
from spark_jobs.identity.scoring import Scores, identifier_bound, score
from spark_jobs.ingest.bronze import ingest_contract, pending_files
from spark_jobs.ingest.contracts import get_contract
from spark_jobs.reporting import configure_logging
from spark_jobs.settings import Settings

EVENT_SOURCES = ("web_events", "email_events")
IDENTIFIERS_TABLE = "silver._identity_identifiers"  # the identity job's state: (record_id, kind, value)


def truth_of(spark, truth_dir: Path):
    return (
        spark.read.option("header", True)
        .csv(str(truth_dir / "source_records.csv"))
        .select(F.concat_ws(":", "source_table", "source_record_id").alias("record_id"), "person_id")
        .join(
            spark.read.option("header", True).csv(str(truth_dir / "people.csv")).select("person_id", "household_id"),
            "person_id",
        )
    )


def blocking_report(records, truth) -> list[tuple[str, int, float]]:
    """``(rule, candidate pairs, completeness)`` per blocking rule and for their union ('all
    rules'): completeness is the share of true pairs between comparable records proposed."""
    records = comparable(records).localCheckpoint(
        eager=True
    )  # a leaf plan: 26 unioned keys on a deep one stall the optimiser
    named = records.select("record_id").join(truth.select("record_id", "person_id"), "record_id")
    true_pairs = (
        named.alias("l")
        .join(named.alias("r"), "person_id")
        .where(F.col("l.record_id") < F.col("r.record_id"))
        .select(F.col("l.record_id").alias("id_l"), F.col("r.record_id").alias("id_r"))
        .localCheckpoint(eager=True)
    )
    n_true = true_pairs.count()
    by_rule = pairs_by_rule(records).localCheckpoint(eager=True)
    found = by_rule.join(true_pairs.withColumn("true", F.lit(1)), ["id_l", "id_r"], "left")
    rows = [
        (r.rule, r.pairs, (r.true or 0) / n_true if n_true else 1.0)
        for r in found.groupBy("rule")
        .agg(F.count(F.lit(1)).alias("pairs"), F.sum("true").alias("true"))
        .orderBy(F.desc("true"))
        .collect()
    ]
    union = found.select("id_l", "id_r", "true").distinct()
    totals = union.agg(F.count(F.lit(1)).alias("pairs"), F.sum("true").alias("true")).first()
    return [*rows, ("all rules", totals.pairs, (totals.true or 0) / n_true if n_true else 1.0)]


def print_report(title: str, blocking, scores: Scores, timings: dict[str, float], peak_bytes: int) -> None:
    print(f"\n{title}")
    print(f"  {'blocking rule':<24}{'pairs':>10}{'completeness':>14}")
    for rule, pairs, completeness in blocking:
        print(f"  {rule:<24}{pairs:>10}{completeness:>14.4f}")
    for name, value in scores.as_dict().items():
        print(f"    {name:<28}{value:.4f}" if isinstance(value, float) else f"    {name:<28}{value}")
    for stage, seconds in timings.items():
        print(f"  {stage:<34}{seconds:7.1f} s")
    print(f"  peak resident memory (python + JVM): {peak_bytes / 2**30:.2f} GiB")


def run_public(name: str, home: Path) -> int:
    """Resolve a public data set the way a user of the CLI would, and score it."""
    from devstack.memory import PeakMemorySampler
    from spark_jobs.identity.__main__ import read_people, resolve_file
    from spark_jobs.identity.records import load_mapping, standard_records
    from spark_jobs.spark import build_session, quiet

    dataset = write_febrl(name, home / "bench" / name)
    with PeakMemorySampler() as memory:
        spark = build_session(
            Settings.from_env({"CDP_HOME": str(home)}),
            f"cdp-bench-{name}",
            overrides={"spark.sql.catalogImplementation": "in-memory", "spark.ui.enabled": "false"},
        )
        quiet(spark)
        started = time.monotonic()
        counts = resolve_file(spark, dataset.people, dataset.mapping, dataset.people.with_name("clusters.csv"))
        timings = {"resolve (CLI code path)": time.monotonic() - started}
        predicted = spark.read.option("header", True).csv(str(dataset.people.with_name("clusters.csv")))
        truth = truth_frame(spark, dataset).cache()
        scores = score(predicted, truth)
        records = standard_records(read_people(spark, dataset.people), load_mapping(dataset.mapping))
        blocking = blocking_report(records, truth)
        spark.stop()
    print_report(
        f"identity benchmark: {name}, {counts['records']} records -> {counts['customers']} customers, "
        f"{counts['links']} links",
        blocking,
        scores,
        timings,
        memory.peak_bytes,
    )
    return 0


def run(customers: int, seed: int, days: int, home: Path) -> int:
    from devstack.memory import PeakMemorySampler
    from spark_jobs.spark import build_session, quiet

    folder = home / "bench" / f"identity-{customers}"
    shutil.rmtree(folder, ignore_errors=True)
    landing, truth_dir = folder / "landing", folder / "truth"
    timings: dict[str, float] = {}
    started = time.monotonic()
    generate(landing, truth_dir, customers, seed, days)
    timings["generate"] = time.monotonic() - started

    with PeakMemorySampler() as memory:
        spark = build_session(
            Settings.from_env({"CDP_HOME": str(home)}),
            "cdp-bench-identity",
            overrides={
                "spark.sql.catalogImplementation": "in-memory",
                "spark.ui.enabled": "false",
                "spark.sql.warehouse.dir": (folder / "warehouse").as_uri(),
            },
        )
        quiet(spark)
        spark.sql("CREATE DATABASE IF NOT EXISTS bronze")
        t0 = time.monotonic()
        contracts = [get_contract(name) for name in (*SOURCES, *EVENT_SOURCES)]
        pending = pending_files(spark, landing.as_uri(), contracts)
        for contract in contracts:
            ingest_contract(spark, contract, landing.as_uri(), "bench", pending=pending[contract.name])
        timings["ingest sources"] = time.monotonic() - t0

        t0 = time.monotonic()
        metrics = resolve.run(spark)
        timings["resolve (first run)"] = time.monotonic() - t0
        first = (
            spark.table(resolve.IDENTITY_MAP_TABLE)
            .select(F.concat_ws(":", "source_table", "source_record_id").alias("record_id"), "customer_id")
            .localCheckpoint()
        )
        truth = truth_of(spark, truth_dir).cache()
        scores = score(first, truth)
        # The vendor's address-keyed records are a household's, not a person's: scored apart.
        person_truth = truth.join(first.select("record_id"), "record_id", "left_semi")
        person_scores = score(first, person_truth)
        t0 = time.monotonic()
        bound = score(identifier_bound(spark.table(IDENTIFIERS_TABLE), person_truth), person_truth)
        timings["identifier bound (not part of a run)"] = time.monotonic() - t0
        t0 = time.monotonic()
        tables = {
            name: spark.table(f"bronze.{name}") for name in SOURCES if spark.catalog.tableExists(f"bronze.{name}")
        }
        blocking = blocking_report(person_records(tables), truth)
        timings["blocking report (not part of a run)"] = time.monotonic() - t0

        t0 = time.monotonic()
        resolve.run(spark)
        timings["resolve (re-run, same data)"] = time.monotonic() - t0
        second = spark.table(resolve.IDENTITY_MAP_TABLE).select(
            F.concat_ws(":", "source_table", "source_record_id").alias("record_id"), "customer_id"
        )
        changed_ids = (
            first.join(second.withColumnRenamed("customer_id", "now"), "record_id").where("customer_id <> now").count()
        )
        spark.stop()

    print(f"\nidentity benchmark: customers={customers} seed={seed} days={days}")
    print(
        f"  records {metrics['records']}, customers {metrics['customers']}, largest {metrics['largest_cluster']}, "
        f"flagged {metrics['flagged_clusters']}, anonymous ids stitched {metrics['anonymous_ids_stitched']}"
    )
    print(f"  links by rule {json.dumps(metrics['links_by_rule'], sort_keys=True)}")
    print(f"  cluster sizes {json.dumps(metrics['cluster_sizes'])}")
    print(f"  {'blocking rule':<24}{'pairs':>10}{'completeness':>14}")
    for rule, pairs, completeness in blocking:
        print(f"  {rule:<24}{pairs:>10}{completeness:>14.4f}")
    for title, result in (
        ("all records the generator made", scores),
        ("person records (without the vendor's address-keyed ones)", person_scores),
    ):
        print(f"  scores on {title}:")
        for name, value in result.as_dict().items():
            print(f"    {name:<28}{value:.4f}" if isinstance(value, float) else f"    {name:<28}{value}")
    print(
        f"  identifier bound on person records: recall {bound.pairwise_recall:.4f} (every two records of one "
        "person that share an identifier value, linked: what identifiers alone allow)"
    )
    print(f"  records whose customer id changed on the re-run: {changed_ids}")
    for stage, seconds in timings.items():
        print(f"  {stage:<34}{seconds:7.1f} s")
    print(f"  peak resident memory (python + JVM): {memory.peak_bytes / 2**30:.2f} GiB")
    return 0


SPLINK_TOOLS = ("splink==5.0.0", "sqlglot==26.33.0", "duckdb==2.0.1")  # sqlglot 28+ breaks Splink's dialect


def splink_path(home: Path) -> Path:
    """Splink and the sqlglot it needs, installed once into their own folder (the project pins
    a newer sqlglot for dbt, so Splink cannot share the environment) and put first on the path
    of the comparison's own process."""
    target = home / "tools" / "splink-5.0.0"
    if not (target / "splink").is_dir():
        print(f"installing {' '.join(SPLINK_TOOLS)} into {target} (once)", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--target",
                str(target),
                *SPLINK_TOOLS,
            ],
            check=True,
        )
    return target


def run_splink(home: Path, argv: list[str]) -> int:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(splink_path(home)), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "bench.splink_comparison", *argv], env=env).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=[*FEBRL, "sample"], default="sample")
    parser.add_argument("--customers", type=int, default=10_000, help="sample only (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="sample only")
    parser.add_argument("--days", type=int, default=7, help="sample only")
    parser.add_argument("--no-splink", action="store_true", help="skip the Splink comparison")
    args = parser.parse_args(argv)
    configure_logging()
    home = Settings.from_env().home
    if args.dataset == "sample":
        code = run(args.customers, args.seed, args.days, home)
        splink_args = ["--customers", str(args.customers)]
    else:
        code = run_public(args.dataset, home)
        splink_args = ["--dataset", args.dataset]
    if code == 0 and not args.no_splink:
        code = run_splink(home, splink_args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
