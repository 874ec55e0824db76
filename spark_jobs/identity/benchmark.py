"""Identity-resolution benchmark: resolve the generator's data and score it against its truth.

Generates N customers, ingests the person-bearing sources and the web/email events with the
bronze job (in its own folder and in-memory catalog, so the main lakehouse is untouched),
runs the identity job (resolve.run: the code the pipeline runs) and scores the identity map
against the generator's hidden truth: pairwise precision/recall/F1, B-cubed and household
pairs merged; then the links by rule, wall time per stage and peak memory. A second run on
the same data measures a re-run (persistent ids: no id may change).

    .venv/bin/python -m spark_jobs.identity.benchmark --customers 10000
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from pyspark.sql import functions as F

from spark_jobs.benchmarking import bench_main
from spark_jobs.identity import resolve
from spark_jobs.identity.persons import SOURCES
from spark_jobs.identity.scoring import score
from spark_jobs.ingest.bronze import ingest_contract, processed_index
from spark_jobs.ingest.contracts import get_contract
from spark_jobs.landing.generate import generate
from spark_jobs.settings import Settings

EVENT_SOURCES = ("web_events", "email_events")


def truth_of(spark, truth_dir: Path):
    return spark.read.option("header", True).csv(str(truth_dir / "source_records.csv")) \
        .select(F.concat_ws(":", "source_table", "source_record_id").alias("record_id"), "person_id") \
        .join(spark.read.option("header", True).csv(str(truth_dir / "people.csv"))
              .select("person_id", "household_id"), "person_id")


def run(customers: int, seed: int, days: int, home: Path) -> int:
    from dagster_project.local.memory import PeakMemorySampler
    from spark_jobs.spark import build_session

    folder = home / "bench" / f"identity-{customers}"
    shutil.rmtree(folder, ignore_errors=True)
    landing, truth_dir = folder / "landing", folder / "truth"
    timings: dict[str, float] = {}
    started = time.monotonic()
    generate(landing, truth_dir, customers, seed, days)
    timings["generate"] = time.monotonic() - started

    with PeakMemorySampler() as memory:
        spark = build_session(Settings.from_env({"CDP_HOME": str(home)}), "cdp-bench-identity", overrides={
            "spark.sql.catalogImplementation": "in-memory", "spark.ui.enabled": "false",
            "spark.sql.warehouse.dir": (folder / "warehouse").as_uri(),
        })
        spark.sparkContext.setLogLevel("ERROR")
        spark.sql("CREATE DATABASE IF NOT EXISTS bronze")
        t0 = time.monotonic()
        processed = processed_index(spark)
        for name in (*SOURCES, *EVENT_SOURCES):
            ingest_contract(spark, get_contract(name), landing.as_uri(), "bench", processed=processed)
        timings["ingest sources"] = time.monotonic() - t0

        t0 = time.monotonic()
        metrics = resolve.run(spark)
        timings["resolve (first run)"] = time.monotonic() - t0
        first = spark.table(resolve.IDENTITY_MAP_TABLE).select(
            F.concat_ws(":", "source_table", "source_record_id").alias("record_id"), "customer_id").localCheckpoint()
        truth = truth_of(spark, truth_dir).cache()
        scores = score(first, truth)
        # The vendor's address-keyed records are a household's, not a person's: scored apart.
        person_scores = score(first, truth.join(first.select("record_id"), "record_id", "left_semi"))

        t0 = time.monotonic()
        resolve.run(spark)
        timings["resolve (re-run, same data)"] = time.monotonic() - t0
        second = spark.table(resolve.IDENTITY_MAP_TABLE).select(
            F.concat_ws(":", "source_table", "source_record_id").alias("record_id"), "customer_id")
        changed_ids = first.join(second.withColumnRenamed("customer_id", "now"), "record_id") \
            .where("customer_id <> now").count()
        spark.stop()

    print(f"\nidentity benchmark: customers={customers} seed={seed} days={days}")
    print(f"  records {metrics['records']}, customers {metrics['customers']}, largest {metrics['largest_cluster']}, "
          f"flagged {metrics['flagged_clusters']}, anonymous ids stitched {metrics['anonymous_ids_stitched']}")
    print(f"  links by rule {json.dumps(metrics['links_by_rule'], sort_keys=True)}")
    print(f"  cluster sizes {json.dumps(metrics['cluster_sizes'])}")
    for title, result in (("all records the generator made", scores),
                          ("person records (without the vendor's address-keyed ones)", person_scores)):
        print(f"  scores on {title}:")
        for name, value in result.as_dict().items():
            print(f"    {name:<24}{value:.4f}" if isinstance(value, float) else f"    {name:<24}{value}")
    print(f"  records whose customer id changed on the re-run: {changed_ids}")
    for stage, seconds in timings.items():
        print(f"  {stage:<34}{seconds:7.1f} s")
    print(f"  peak resident memory (python + JVM): {memory.peak_bytes / 2**30:.2f} GiB")
    return 0


def main(argv: list[str] | None = None) -> int:
    return bench_main(run, __doc__.splitlines()[0], 10_000, argv)


if __name__ == "__main__":
    raise SystemExit(main())
