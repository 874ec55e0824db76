"""The library alternative: Splink (Spark backend) on the same records, scored on the same truth.

Evaluation only (the platform does not depend on Splink). Run the identity benchmark first:
it leaves the bronze tables and the truth under ``$CDP_HOME/bench/identity-<N>/``. Then

    .venv/bin/pip install 'splink==5.0.0' 'sqlglot==26.33.0'   # sqlglot's compiled builds (28+) break Splink's dialect
    .venv/bin/python -m spark_jobs.identity.splink_comparison --customers 10000

Splink gets the platform's standardised records (persons.py) and a model built the way its
documentation recommends for person data: name, date-of-birth, email, phone, address and
strong-id comparisons; the same blocking keys plus one per strong identifier; the share of
matches from deterministic rules, u by random sampling, m by EM over two blocking rules;
clusters at match probability 0.99. It prints the same scores as the identity benchmark.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from pyspark.sql import functions as F

from spark_jobs.identity.benchmark import truth_of
from spark_jobs.identity.persons import SOURCES, person_records
from spark_jobs.identity.scoring import score
from spark_jobs.settings import Settings

THRESHOLD = 0.99


def splink_settings():
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        comparisons=[
            cl.NameComparison("first_name"),
            cl.NameComparison("last_name"),
            cl.DateOfBirthComparison("birth_date", input_is_string=False),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.ExactMatch("email_hash"),
            cl.ExactMatch("crm_contact_id"),
            cl.ExactMatch("loyalty_card_id"),
            cl.LevenshteinAtThresholds("address_line", [2]),
            cl.ExactMatch("postcode"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("email"), block_on("phone"), block_on("email_hash"), block_on("crm_contact_id"),
            block_on("loyalty_card_id"), block_on("last_name", "birth_date"), block_on("first_name", "birth_date"),
            block_on("first_name", "last_name", "postcode"), block_on("address_line", "postcode"),
        ],
        retain_matching_columns=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from splink import Linker, SparkAPI, block_on
    from splink.backends.spark import similarity_jar_location

    from dagster_project.local.memory import PeakMemorySampler
    from spark_jobs.spark import build_session

    home = Settings.from_env().home
    folder = home / "bench" / f"identity-{args.customers}"
    warehouse = folder / "warehouse" / "bronze.db"
    if not warehouse.is_dir():
        raise SystemExit(f"{warehouse} not found: run ./cdp bench-identity --customers {args.customers} first")
    with PeakMemorySampler() as memory:
        spark = build_session(Settings.from_env(), "cdp-splink-comparison", overrides={
            "spark.sql.catalogImplementation": "in-memory", "spark.ui.enabled": "false",
            "spark.jars": similarity_jar_location(),
            "spark.sql.warehouse.dir": (folder / "splink-warehouse").as_uri()})
        spark.sparkContext.setLogLevel("ERROR")
        spark.sparkContext.setCheckpointDir(str(folder / "splink-checkpoints"))
        started = time.monotonic()
        tables = {name: spark.read.format("delta").load(str(warehouse / name))
                  for name in SOURCES if (warehouse / name).is_dir()}
        records = person_records(tables).select(
            "record_id", "first_name", "last_name", "birth_date", "email", "phone", "address_line", "postcode",
            F.coalesce("email_sha256", F.sha2("email", 256)).alias("email_hash"), "crm_contact_id",
            "loyalty_card_id").cache()
        n_records = records.count()
        db_api = SparkAPI(spark_session=spark, break_lineage_method="checkpoint")
        linker = Linker(db_api.register(records), splink_settings())
        linker.training.estimate_probability_two_random_records_match(
            [block_on("email"), block_on("crm_contact_id")], recall=0.7)
        linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=7)
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "last_name"))
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
        trained = time.monotonic() - started
        predictions = linker.inference.predict(threshold_match_probability=0.5)
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, THRESHOLD)
        predicted = clusters.as_spark_dataframe().select("record_id", F.col("cluster_id").cast("string")
                                                         .alias("customer_id")).cache()
        predicted.count()
        elapsed = time.monotonic() - started
        scores = score(predicted, truth_of(spark, folder / "truth"))
        spark.stop()

    print(f"\nSplink {__import__('splink').__version__} (Spark backend): customers={args.customers}, "
          f"records {n_records}, threshold {THRESHOLD}")
    for name, value in scores.as_dict().items():
        print(f"    {name:<24}{value:.4f}" if isinstance(value, float) else f"    {name:<24}{value}")
    print(f"  training {trained:.1f} s, total {elapsed:.1f} s, peak memory {memory.peak_bytes / 2**30:.2f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
