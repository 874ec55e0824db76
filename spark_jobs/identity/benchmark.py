"""Identity-resolution benchmark: resolve the generator's data and score it against its truth.

Generates N customers, ingests every source with the bronze job (in its own folder and
in-memory catalog, so the main lakehouse is untouched), then runs the resolution stages
that exist so far (standardise, deterministic links, Fellegi-Sunter links, connected
components) and prints, for deterministic links alone and with the probabilistic ones, the
pairwise precision/recall/F1, B-cubed and household pairs merged; then wall time per stage
and peak memory.

    .venv/bin/python -m spark_jobs.identity.benchmark --customers 10000
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from pyspark.sql import functions as F

from spark_jobs.benchmarking import bench_main
from spark_jobs.identity.clusters import component_sizes, connected_components
from spark_jobs.identity.links import deterministic_links
from spark_jobs.identity.persons import SOURCES, identifiers, person_records
from spark_jobs.identity.probabilistic import probabilistic_links
from spark_jobs.identity.scoring import score
from spark_jobs.ingest.bronze import ingest_contract, processed_index
from spark_jobs.ingest.contracts import get_contract
from spark_jobs.landing.generate import generate
from spark_jobs.settings import Settings


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
        for name in SOURCES:
            ingest_contract(spark, get_contract(name), landing.as_uri(), "bench", processed=processed)
        timings["ingest person sources"] = time.monotonic() - t0

        t0 = time.monotonic()
        records = person_records({name: spark.table(f"bronze.{name}") for name in SOURCES}).cache()
        ids = identifiers(records).cache()
        n_records, n_ids = records.count(), ids.count()
        timings["standardise"] = time.monotonic() - t0

        t0 = time.monotonic()
        deterministic = deterministic_links(ids, records).select("record_id", "linked_to", "rule").cache()
        deterministic.count()
        timings["deterministic links"] = time.monotonic() - t0

        t0 = time.monotonic()
        named = records.where("first_name IS NOT NULL AND last_name IS NOT NULL")
        fuzzy, model = probabilistic_links(named)
        fuzzy = fuzzy.select("record_id", "linked_to", "rule").cache()
        fuzzy.count()
        timings["probabilistic links"] = time.monotonic() - t0

        truth = spark.read.option("header", True).csv(str(truth_dir / "source_records.csv")) \
            .select(F.concat_ws(":", "source_table", "source_record_id").alias("record_id"), "person_id") \
            .join(spark.read.option("header", True).csv(str(truth_dir / "people.csv"))
                  .select("person_id", "household_id"), "person_id").cache()
        results = {}
        for stage, links in (("deterministic", deterministic), ("deterministic + probabilistic",
                                                                 deterministic.unionByName(fuzzy))):
            t0 = time.monotonic()
            components = connected_components(
                records.select(F.col("record_id").alias("id")),
                links.select(F.col("record_id").alias("src"), F.col("linked_to").alias("dst"))).cache()
            sizes = component_sizes(components)
            clusters, largest = sizes.count(), sizes.first()["size"]
            timings[f"components ({stage})"] = time.monotonic() - t0
            predicted = components.select(F.col("id").alias("record_id"), F.col("component").alias("customer_id"))
            by_rule = {r.rule: r["count"] for r in links.groupBy("rule").count().collect()}
            results[stage] = (score(predicted, truth), clusters, largest, by_rule)
        spark.stop()

    print(f"\nidentity benchmark: customers={customers} seed={seed} days={days}")
    print(f"  records {n_records}, identifiers {n_ids}; Fellegi-Sunter: match share {model.match_share:.4f} "
          f"after {model.iterations} EM iterations")
    for stage, (scores, clusters, largest, by_rule) in results.items():
        print(f"  {stage}: clusters {clusters}, largest {largest}, links {dict(sorted(by_rule.items()))}")
        for name, value in scores.as_dict().items():
            print(f"    {name:<24}{value:.4f}" if isinstance(value, float) else f"    {name:<24}{value}")
    for stage, seconds in timings.items():
        print(f"  {stage:<34}{seconds:7.1f} s")
    print(f"  peak resident memory (python + JVM): {memory.peak_bytes / 2**30:.2f} GiB")
    return 0


def main(argv: list[str] | None = None) -> int:
    return bench_main(run, __doc__.splitlines()[0], 10_000, argv)


if __name__ == "__main__":
    raise SystemExit(main())
